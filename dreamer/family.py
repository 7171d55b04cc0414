"""`agent=dreamer`: the Dreamer networks (dreamer/agent.py) as an agent of the command line (dream_mpc/agent.py).

What this adds to `Dreamer`:
- options from the config block `dreamer.*` (`DreamerOptions`, validated when the config is built);
- the training schedule of the paper's algorithm 2: `dreamer.seed_episodes` random episodes, then
  `dreamer.collect_interval` updates after each collected episode (`EpisodeSchedule`); each update samples
  `dreamer.batch_size` chunks of `dreamer.chunk_length` consecutive rows from the trainer's buffer;
- acting through the planner chosen by `planner=` on the filtered latent {h, s} (`planner=policy`: the actor),
  with the recurrent state (h, s, previous action) carried between `act` calls, reset at an episode's start and
  saved with the planner's state in `acting_state()` for exact resumes;
- exploration noise `dreamer.expl_noise` outside eval mode, added after the planner, unless the planner adds its
  own (a planner option `expl_noise` above 0, as `cem`'s): one exploration noise, never two;
- checkpoints: the networks under dreamer-pytorch's names (`transition_model.*`, `observation_model.*` ...) as
  the file's weights, the three optimisers as its training state, the run's config to rebuild it from.
"""

import torch
from tensordict import TensorDict

from dream_mpc.agent import Agent, EpisodeSchedule
from dream_mpc.errors import UserError
from dream_mpc.planner import make_planner
from dream_mpc.registry import agents
from dream_mpc.runtime import resolve_device
from dreamer.agent import Dreamer
from dreamer.options import DreamerOptions
from dreamer.world_model import latent


def _options(cfg):
    block = cfg.dreamer
    return DreamerOptions(**{k: getattr(block, k) for k in DreamerOptions.__dataclass_fields__})


# The Dream-MPC paper's appendix D (table 16) for each planner on Dreamer. Table 16 gives no rate for Grad-MPC
# itself: it keeps the planner's 0.1; its clip is the family's 100, as hybrid Grad-MPC's.
APPENDIX_D = {
    "dream": dict(
        num_candidates=5,
        iterations=1,
        lr=0.1,
        reuse=0.1,
        horizon=15,
        objective="lambda",
        td_lambda=0.95,
        action_noise=0.2,
        proposal="shared",
        uncertainty_coef=0.0,  # one value model: no ensemble to disagree
        grad_clip_norm=100.0,
        imagination="independent",
    ),
    "hybrid": dict(num_candidates=1, iterations=10, lr=0.05, horizon=1, grad_clip_norm=100.0),
    "grad": dict(num_candidates=1000, iterations=10, horizon=12, grad_clip_norm=100.0),
    "cem": dict(
        num_candidates=1000, iterations=10, top_k=100, horizon=12, terminal_value=False, discounted=False
    ),  # PlaNet: the plain sum of predicted rewards
}


@agents.register("dreamer")
class DreamerAgent(Agent):
    Options = DreamerOptions
    option_block = "dreamer"
    planner_defaults = APPENDIX_D
    default_planner = "dream"  # Dream-MPC (Dreamer), the paper's appendix D; planner=policy: Dreamer itself
    pixel_frames = 1  # the paper's Dreamer reads one 64x64 frame
    action_repeat = 2  # table 16, where a suite leaves it to the agent (DMControl's is 2 already)

    @classmethod
    def sequence_length(cls, cfg):
        """A training chunk: chunk_length consecutive rows (observations) of one episode."""
        return cfg.dreamer.chunk_length

    @classmethod
    def batch_size(cls, cfg):
        return cfg.dreamer.batch_size

    @classmethod
    def schedule(cls, cfg):
        return EpisodeSchedule(cfg.dreamer.seed_episodes, cfg.dreamer.collect_interval)

    def __init__(self, cfg):
        if cfg.episodic:
            raise UserError("agent=dreamer does not support episodic=true (it has no termination model)")
        rows = cfg.episode_length + 1
        if cfg.dreamer.chunk_length > rows:
            raise UserError(
                f"dreamer.chunk_length={cfg.dreamer.chunk_length} is longer than an episode of {cfg.task} "
                f"({cfg.episode_length} steps, {rows} observations): it must be <= {rows}"
            )
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.opt = _options(cfg)
        self.dreamer = Dreamer(cfg.obs_shape[cfg.obs], cfg.action_dim, self.opt, self.device)
        self.model = torch.nn.ModuleDict(self.dreamer.modules())  # every network, under its checkpoint name
        self.world_model = self.dreamer.world_model
        self.discount = self.opt.discount
        self.planner = make_planner(cfg.planner, self.world_model, cfg, self.discount)
        self.nonfinite_actions = 0
        self.last_plan_info = None
        self._filter = None  # (h, s, previous action) of the episode in progress; None: its start

    def acting_options(self):
        return {"dreamer.eval_action": self.opt.eval_action}

    # ------------------------------------------------------------------ acting
    def set_planner(self, name):
        self.cfg.planner = name
        self.planner = make_planner(name, self.world_model, self.cfg, self.discount)

    def _agent_noise(self):
        """The agent's exploration noise: none when the planner adds its own."""
        return 0.0 if getattr(self.planner.opt, "expl_noise", 0) else self.opt.expl_noise

    @torch.no_grad()
    def act(self, obs, t0=False, eval_mode=False, task=None):
        """Filter obs into the recurrent state with the posterior, plan on the latent {h, s}, add exploration noise
        outside eval mode; an action in [-1, 1] on the CPU (a batch with a leading dim, or one)."""
        obs = torch.as_tensor(obs, device=self.device)
        single = obs.ndim == len(self.dreamer.obs_shape)
        if single:
            obs = obs.unsqueeze(0)
        B = obs.shape[0]
        if t0 or self._filter is None or self._filter.batch_size[0] != B:
            self._filter = self.dreamer.initial_state(B)
            self.planner.reset()
        d, state = self.dreamer, self._filter
        h = d.rssm.belief(state["h"], state["s"], state["action"])
        s = d.rssm.sample(*d.rssm.posterior(h, d.encoder(d.preprocess(obs))))
        z = latent(h, s)
        action, info = self.planner.plan(z, t0=t0, eval_mode=eval_mode)
        bad = ~torch.isfinite(action).all(-1)
        if bad.any():  # a NaN never reaches the simulator: the actor's mode instead
            self.nonfinite_actions += int(bad.sum())
            mean = self.world_model.policy(z)[1]
            action = torch.where(bad.unsqueeze(-1), torch.nan_to_num(mean), action)
        noise = self._agent_noise()
        if not eval_mode and noise:
            action = action + noise * torch.randn_like(action)
        action = action.clamp(-1, 1)
        self._filter = TensorDict(h=h, s=s, action=action, batch_size=(B,), device=h.device)
        self.last_plan_info = info
        action = action.cpu()
        return action[0] if single else action

    def acting_state(self):
        f = self._filter
        carried = None if f is None else {k: f[k].clone() for k in ("h", "s", "action")}
        return {"planner": self.planner.state_dict(), "filter": carried}

    def load_acting_state(self, state):
        if state is None:
            self._filter = None
            self.planner.reset()
            return
        self.planner.load_state_dict(state["planner"])
        f = state.get("filter")
        self._filter = (
            None
            if f is None
            else TensorDict(
                {k: v.to(self.device) for k, v in f.items()}, batch_size=f["h"].shape[:1], device=self.device
            )
        )

    # ------------------------------------------------------------------ learning
    def update(self, buffer, pretrain=False):
        """One update of the world model, actor and value on a batch of chunks. The buffer's rows hold o_t with
        a_{t-1}, r_{t-1}: a chunk of L rows is L observations and the L - 1 transitions between them, as
        `Dreamer.update` reads them (row t: o_t, a_t, r_t) with a zero last action and reward, which it never
        uses (the filter reads a_t from row t + 1 on, the reward loss r_t from row t + 1's state)."""
        batch = buffer.sample()
        obs, action, reward = batch["obs"], batch["action"], batch["reward"]
        if reward.dim() == 3:
            reward = reward.squeeze(-1)
        action = torch.cat([action, action.new_zeros(1, *action.shape[1:])])
        reward = torch.cat([reward, reward.new_zeros(1, *reward.shape[1:])])
        return self.dreamer.update({"obs": obs, "action": action, "reward": reward})

    # ------------------------------------------------------------------ persistence
    def weights_state(self):
        return self.model.state_dict()

    def load_weights_state(self, state):
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise UserError(
                f"the weights do not fit this Dreamer: missing {sorted(missing)[:3]}, unexpected "
                f"{sorted(unexpected)[:3]} (different observations, or another agent's file)"
            )

    def state_dict(self):
        return {k: v for k, v in self.dreamer.state_dict().items() if k.endswith("_optimizer")}

    def load_state_dict(self, state):
        self.dreamer.model_optim.load_state_dict(state["model_optimizer"])
        self.dreamer.actor_optim.load_state_dict(state["actor_optimizer"])
        self.dreamer.value_optim.load_state_dict(state["value_optimizer"])

    @classmethod
    def from_checkpoint(cls, obj, path, task=None, device="auto", overrides=(), **_):
        """A ready agent from one of our files: built from the file's config (task, obs, dreamer.* sizes), with
        the caller's task, device and overrides (planner=, its options) on top; weights and optimisers loaded."""
        from dream_mpc.checkpoint import config_of_own_file

        cfg = config_of_own_file(obj.get("config"), path, task, device, overrides)
        agent = cls(cfg)
        try:
            agent.load_weights_state(obj["model"])
        except (RuntimeError, KeyError) as err:  # shapes of another size than the config says
            detail = "; ".join(line.strip() for line in str(err).splitlines()[1:3]) or str(err)
            raise UserError(f"{path}: the weights do not fit the model its config describes ({detail})") from None
        if isinstance(obj.get("agent"), dict):
            agent.load_state_dict(obj["agent"])
        agent.checkpoint_info = {"path": str(path), "task": cfg.task, "agent": "dreamer"}
        return agent
