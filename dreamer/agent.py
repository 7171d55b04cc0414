"""`Dreamer`: the networks of the Dreamer agent, their three optimisers, one training update and acting.

update(batch), the inner loop of the paper's algorithm 2:
 1. world model: filter each chunk with the posterior, minimise reconstruction + reward + KL (free nats);
 2. actor: imagine `imagination_horizon` prior steps from every (detached) posterior state with the actor's
    reparameterised actions, maximise the mean lambda-return (world model and value model frozen, gradients
    flow through them into the actions);
 3. value: regress V(s_t) of the (detached) imagined states to the (detached) lambda-returns.
Each with its own Adam (eps 1e-7) and gradient-norm clip. Batches are time-major (T, B, ...): row t holds o_t,
the action a_t taken there, the reward r_t that followed, and c_t = 0 where row t+1 starts a new episode.

act(obs, state) filters one observation per row into the recurrent state (h, s, previous action), a
TensorDict that the caller carries between calls and resets with `initial_state` at an episode's start.
"""

import contextlib

import torch
from tensordict import TensorDict

from dreamer import losses, pixels
from dreamer.actor import TanhGaussianActor
from dreamer.encoders import observation_networks
from dreamer.heads import reward_model, value_model
from dreamer.options import DreamerOptions
from dreamer.rssm import RSSM
from dreamer.world_model import DreamerWorldModel, latent


@contextlib.contextmanager
def frozen(*modules):
    """Parameters of `modules` get no gradient inside (gradients still flow through them to their inputs)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _adam(modules, lr, eps):
    return torch.optim.Adam([p for m in modules for p in m.parameters()], lr=lr, eps=eps)


class Dreamer:
    def __init__(self, obs_shape, action_dim, options=None, device="cpu"):
        self.opt = o = options or DreamerOptions()
        self.obs_shape, self.action_dim, self.device = tuple(obs_shape), action_dim, torch.device(device)
        self.pixels = len(self.obs_shape) == 3
        feature = o.belief_size + o.state_size
        self.encoder, self.decoder = observation_networks(self.obs_shape, feature, o)
        self.rssm = RSSM(o.belief_size, o.state_size, action_dim, o.hidden_size, o.embedding_size, o.min_std)
        self.reward_model = reward_model(feature, o.hidden_size)
        self.value_model = value_model(feature, o.hidden_size)
        self.actor = TanhGaussianActor(
            feature, action_dim, o.hidden_size, o.actor_init_std, o.actor_min_std, o.actor_mean_scale
        )
        self.model_modules = (self.encoder, self.decoder, self.rssm, self.reward_model)
        for m in (*self.model_modules, self.value_model, self.actor):
            m.to(self.device)
        self.model_optim = _adam(self.model_modules, o.model_lr, o.adam_eps)
        self.actor_optim = _adam((self.actor,), o.actor_lr, o.adam_eps)
        self.value_optim = _adam((self.value_model,), o.value_lr, o.adam_eps)
        self.world_model = DreamerWorldModel(self.rssm, self.reward_model, self.value_model, self.actor, o.eval_action)

    # ------------------------------------------------------------------ observations
    def preprocess(self, obs):
        """uint8 pixels -> bit-depth-reduced, centred, dequantised floats; state vectors -> float32."""
        obs = torch.as_tensor(obs, device=self.device)
        if obs.dtype == torch.uint8:
            return pixels.preprocess(obs, self.opt.bit_depth)
        return obs.float()

    # ------------------------------------------------------------------ training
    def _step(self, optim, loss, modules):
        optim.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for m in modules for p in m.parameters()]
        norm = torch.nn.utils.clip_grad_norm_(params, self.opt.grad_clip_norm)
        optim.step()
        return float(norm)

    def world_model_loss(self, obs, actions, rewards, continuations=None):
        """The ELBO terms on a batch; returns (loss, posterior dict of (T, B, .), metrics)."""
        o = self.opt
        x = self.preprocess(obs)
        post = self.rssm.observe(self.encoder(x), actions, continuations)
        recon = self.decoder(torch.cat([post["h"], post["s"]], -1))
        obs_loss = losses.reconstruction_loss(recon, x, 3 if self.pixels else 1)
        predicted = self.reward_model(post["h"][1:], post["s"][1:]).squeeze(-1)  # r_t from the state reached
        mask = None if continuations is None else continuations[:-1].float()
        rew_loss = losses.reward_loss(predicted, rewards[:-1], mask)
        kl = losses.gaussian_kl(post["post_mean"], post["post_std"], post["prior_mean"], post["prior_std"])
        kl_term = losses.kl_loss(kl, o.free_nats, o.free_nats_mode)
        loss = obs_loss + rew_loss + o.kl_scale * kl_term
        metrics = {"obs_loss": obs_loss, "reward_loss": rew_loss, "kl": kl.mean(), "kl_loss": kl_term}
        return loss, post, metrics

    def imagine(self, h, s, horizon):
        """Prior rollouts with the actor's sampled actions: (hs, ss) of (horizon + 1, N, .), start included. The
        actor reads detached states (as both Dreamer implementations): returns reach an action through the
        dynamics that follow it, not through later actions' inputs."""
        hs, ss = [h], [s]
        for _ in range(horizon):
            a = self.actor(h.detach(), s.detach())[0]
            h, s = self.rssm.imagine_step(h, s, a)
            hs.append(h)
            ss.append(s)
        return torch.stack(hs), torch.stack(ss)

    def update(self, batch):
        """One world-model, actor and value update on a batch {"obs": (T, B, ...) uint8 or float, "action":
        (T, B, A), "reward": (T, B), optional "continuation": (T, B)}; returns float metrics."""
        o = self.opt
        dev = self.device
        obs = torch.as_tensor(batch["obs"], device=dev)
        actions = torch.as_tensor(batch["action"], device=dev, dtype=torch.float32)
        rewards = torch.as_tensor(batch["reward"], device=dev, dtype=torch.float32)
        cont = batch["continuation"] if "continuation" in batch.keys() else None  # a dict or a TensorDict
        cont = None if cont is None else torch.as_tensor(cont, device=dev, dtype=torch.float32)
        if rewards.dim() == 3:
            rewards = rewards.squeeze(-1)
        if cont is not None and cont.dim() == 3:
            cont = cont.squeeze(-1)

        model_loss, post, metrics = self.world_model_loss(obs, actions, rewards, cont)
        metrics["model_grad_norm"] = self._step(self.model_optim, model_loss, self.model_modules)
        metrics["model_loss"] = model_loss

        h0 = post["h"].detach().reshape(-1, o.belief_size)
        s0 = post["s"].detach().reshape(-1, o.state_size)
        with frozen(*self.model_modules, self.value_model):
            hs, ss = self.imagine(h0, s0, o.imagination_horizon)
            rew = self.reward_model(hs[1:], ss[1:]).squeeze(-1)  # (H, N): r_t of s_t -> s_{t+1}
            nxt = self.value_model(hs[1:], ss[1:]).squeeze(-1)
            returns = losses.lambda_return(rew, nxt, o.discount, o.return_lambda)
            act_loss = losses.actor_loss(returns)
        metrics["actor_grad_norm"] = self._step(self.actor_optim, act_loss, (self.actor,))
        values = self.value_model(hs[:-1].detach(), ss[:-1].detach()).squeeze(-1)
        val_loss = losses.value_loss(values, returns)
        metrics["value_grad_norm"] = self._step(self.value_optim, val_loss, (self.value_model,))
        metrics.update(actor_loss=act_loss, value_loss=val_loss, imagined_return=returns.mean())
        return {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in metrics.items()}

    # ------------------------------------------------------------------ acting
    def initial_state(self, batch=1):
        """The recurrent state before an episode's first observation: h, s and the previous action, all zero."""
        o, dev = self.opt, self.device
        return TensorDict(
            h=torch.zeros(batch, o.belief_size, device=dev),
            s=torch.zeros(batch, o.state_size, device=dev),
            action=torch.zeros(batch, self.action_dim, device=dev),
            batch_size=(batch,),
            device=dev,
        )

    @torch.no_grad()
    def act(self, obs, state, explore=False, planner=None):
        """Filter obs (B, ...) into `state` with the posterior and choose actions (B, A) in [-1, 1]: the actor's
        deterministic action (`eval_action`), or its sample plus Gaussian noise `expl_noise` when exploring; with a
        planner of dream_mpc, its plan on the latent {h, s} (the caller resets the planner at an episode's start),
        plus this agent's noise when exploring (a planner's own `expl_noise` would add more: set one of them to 0).
        Returns (action, new state)."""
        e = self.encoder(self.preprocess(obs))
        h = self.rssm.belief(state["h"], state["s"], state["action"])
        s = self.rssm.sample(*self.rssm.posterior(h, e))
        if planner is None and explore:
            action = self.actor(h, s)[0]
        elif planner is None:
            action = self.actor.deterministic(*self.actor.distribution(h, s), self.opt.eval_action)
        else:
            action = planner.plan(latent(h, s), eval_mode=not explore)[0]
        if explore and self.opt.expl_noise:
            action = action + self.opt.expl_noise * torch.randn_like(action)
        action = action.clamp(-1, 1)
        return action, TensorDict(h=h, s=s, action=action, batch_size=h.shape[:1], device=h.device)

    # ------------------------------------------------------------------ checkpoints
    def modules(self):
        """Networks under dreamer-pytorch's checkpoint names."""
        return {
            "transition_model": self.rssm,
            "observation_model": self.decoder,
            "reward_model": self.reward_model,
            "encoder": self.encoder,
            "actor_model": self.actor,
            "value_model": self.value_model,
        }

    def state_dict(self):
        out = {k: m.state_dict() for k, m in self.modules().items()}
        out.update(
            model_optimizer=self.model_optim.state_dict(),
            actor_optimizer=self.actor_optim.state_dict(),
            value_optimizer=self.value_optim.state_dict(),
        )
        return out

    def load_state_dict(self, state):
        for k, m in self.modules().items():
            m.load_state_dict(state[k])
        self.model_optim.load_state_dict(state["model_optimizer"])
        self.actor_optim.load_state_dict(state["actor_optimizer"])
        self.value_optim.load_state_dict(state["value_optimizer"])
