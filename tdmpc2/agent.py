"""The TD-MPC2 agent: acts through a planner (chosen by `planner=`) and learns the world model and policy."""

import contextlib

import torch
import torch.nn.functional as F

from dream_mpc.agent import Agent
from dream_mpc.planner import make_planner
from dream_mpc.registry import agents
from dream_mpc.runtime import resolve_device
from dream_mpc.threads import AdaptiveThreads, fixed_threads
from tdmpc2 import layers
from tdmpc2.options import TDMPC2RootOptions, complete, discount
from tdmpc2.planning import TDMPC2Planning, as_float32
from tdmpc2.scale import RunningScale
from tdmpc2.world_model import WorldModel


@agents.register("tdmpc2")
class TDMPC2(Agent):
    value_heads = "Q"  # the world model's value heads: Q(z, a); BMPC's are V(z)
    default_family = True  # agent= left out: TD-MPC2, as the official config
    multitask = True  # mt30 / mt80: task embeddings, trained offline from the official dataset (tdmpc2/offline.py)
    # Dream-MPC on TD-MPC2 and BMPC as the paper runs it (section 5; MPPI's are TD-MPC2's own keys, table 5)
    RootOptions = TDMPC2RootOptions  # the official config's keys, read at the root (tdmpc2/options.py)
    root_keys = ("horizon", "min_std", "max_std")  # MPPI's, which its training reads too
    planner_defaults = {
        "dream": dict(num_candidates=5, iterations=1, lr=0.1, reuse=0.1, uncertainty_coef=0.01, horizon=3),
    }

    @classmethod
    def complete_config(cls, raw, overridden):
        complete(raw, overridden)

    @classmethod
    def train_task_set(cls, cfg):
        from tdmpc2 import offline

        return offline.train(cfg)

    @classmethod
    def sequence_length(cls, cfg):
        """TD-MPC2 learns from (horizon + 1)-row sub-trajectories: its latent rollout is `horizon` steps."""
        return cfg.horizon + 1

    def __init__(self, cfg):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        layers.set_fused_activation(cfg.get("fused", True))  # process-wide, as the official kernels are
        self.model = WorldModel(cfg, self.value_heads).to(self.device)
        m = self.model
        self.optim = torch.optim.Adam(
            [
                {"params": m._encoder.parameters(), "lr": cfg.lr * cfg.enc_lr_scale},
                {"params": m._dynamics.parameters()},
                {"params": m._reward.parameters()},
                {"params": m._termination.parameters() if cfg.episodic else []},
                {"params": m._Qs.parameters()},
                {"params": m._task_emb.parameters() if cfg.multitask else []},
            ],
            lr=cfg.lr,
            **self._adam_options(),
        )
        self.pi_optim = torch.optim.Adam(m._pi.parameters(), lr=cfg.lr, eps=1e-5, **self._adam_options())
        self.model.eval()
        self.scale = RunningScale(cfg, self.device)
        if cfg.multitask:
            self.discount = torch.tensor([discount(L, cfg) for L in cfg.episode_lengths], device=self.device)
        else:
            self.discount = discount(cfg.episode_length, cfg)
        self.rho_weights = cfg.rho ** torch.arange(cfg.horizon + 1, device=self.device, dtype=torch.float32)
        self.planning = TDMPC2Planning(self.model, cfg.get("planning_dtype", "float32"))
        self.planner = make_planner(cfg.planner, self.planning, cfg, self.discount)
        self.act_threads = AdaptiveThreads()  # plan_threads=0: each acting step at the fastest thread count
        self.nonfinite_actions = 0  # actions that came out non-finite and were replaced before reaching the env
        self.last_plan_info = None
        if cfg.compile:
            self._compile()

    def _adam_options(self):
        """Eager: one fused kernel per step instead of a loop over parameters (same update). Compiled: a step that
        torch.compile can trace (the fused one is opaque to it), capturable in CUDA graphs as in TD-MPC2."""
        if self.cfg.compile:
            return {"capturable": self.device.type == "cuda"}
        return {"fused": True}

    def _compile(self, what=("update", "plan")):
        """compile=true: capture the update and the planning step (CUDA graphs through Inductor on a GPU)."""
        mode = "reduce-overhead" if self.device.type == "cuda" else None
        if "update" in what:
            self._update_step = torch.compile(self._update_step, mode=mode)
        if "plan" in what:
            self.planner.plan = torch.compile(self.planner.plan, mode=mode)

    # ------------------------------------------------------------------ acting
    def set_planner(self, name):
        """Swap the planner (any registered name) without touching the model."""
        self.cfg.planner = name
        self.planner = make_planner(name, self.planning, self.cfg, self.discount)
        self.act_threads.reset()
        if self.cfg.compile:
            self._compile(what=("plan",))

    def reset(self):
        self.planner.reset()

    def plan(self, z, reanalysis_horizon=None, **kwargs):
        """The planner on float32 latents z, through the planning model (refreshed if the model changed);
        `reanalysis_horizon` given: the planner's reanalysis of stored latents (BMPC)."""
        z = self.planning.prepare().cast(z)
        if reanalysis_horizon is not None:
            out = self.planner.reanalyze(z, kwargs.get("task"), reanalysis_horizon)
        else:
            out = self.planner.plan(z, **kwargs)
        return out if self.planning.dtype == torch.float32 else as_float32(*out)

    def _threads(self, batch):
        """CPU threads of an acting step: `plan_threads` if set, else the fastest count of the moment."""
        if self.device.type != "cpu":
            return contextlib.nullcontext()
        if self.cfg.get("plan_threads", 0):
            return fixed_threads(self.cfg.plan_threads)
        return self.act_threads(key=batch)

    @torch.no_grad()
    def act(self, obs, t0=False, eval_mode=False, task=None):
        """Action for one observation (or a batch with a leading dim), on the CPU, always finite and in [-1, 1]."""
        obs = torch.as_tensor(obs, device=self.device)
        single = obs.ndim == len(self.cfg.obs_shape[self.cfg.obs])
        if single:
            obs = obs.unsqueeze(0)
        if task is not None:
            task = torch.as_tensor(task, device=self.device).reshape(-1).expand(obs.shape[0])
        if t0:
            self.planner.reset()
        with self._threads(obs.shape[0]):
            z = self.model.encode(obs, task)
            action, info = self.plan(z, t0=t0, eval_mode=eval_mode, task=task)
        bad = ~torch.isfinite(action).all(-1)
        if bad.any():  # last line of defence: a NaN never reaches the simulator
            self.nonfinite_actions += int(bad.sum())
            mean = self.model.pi(z, task)[1]["mean"]
            action = torch.where(bad.unsqueeze(-1), torch.nan_to_num(mean), action)
        self.last_plan_info = info
        action = action.clamp(-1, 1).cpu()
        return action[0] if single else action

    # ------------------------------------------------------------------ learning
    @torch.no_grad()
    def _td_target(self, next_z, reward, terminated, task):
        action = self.model.sample_action(next_z, task)
        discount = self.discount[task.long()].view(1, -1, 1) if self.cfg.multitask else self.discount
        return reward + discount * (1 - terminated) * self.model.Q(next_z, action, task, "min", target=True)

    def update_pi(self, zs, task):
        action, info = self.model.pi(zs, task)
        q = self.model.Q(zs, action, task, "avg", detach=True)
        self.scale.update(q[0])
        q = self.scale(q)
        rho = self.rho_weights[: zs.shape[0]]
        pi_loss = (-(self.cfg.entropy_coef * info["scaled_entropy"] + q).mean(dim=(1, 2)) * rho).mean()
        return self.policy_step(pi_loss, info)

    def policy_step(self, pi_loss, info):
        """Backward, clip and step the policy's optimizer; the metrics every agent of the family logs."""
        pi_loss.backward()
        pi_grad_norm = torch.nn.utils.clip_grad_norm_(self.model._pi.parameters(), self.cfg.grad_clip_norm)
        self.pi_optim.step()
        self.pi_optim.zero_grad(set_to_none=True)
        return {
            "pi_loss": pi_loss,
            "pi_grad_norm": pi_grad_norm,
            "pi_entropy": info["entropy"].mean(),
            "pi_scaled_entropy": info["scaled_entropy"].mean(),
            "pi_scale": self.scale.value.squeeze(),
        }

    def world_model_losses(self, obs, action, reward, terminated, task, next_z, td_targets):
        """Consistency, reward, value (and termination) losses of a latent rollout; returns (total, metrics, zs)."""
        cfg, H = self.cfg, action.shape[0]
        z = self.model.encode(obs[0], task)
        zs = [z]
        for t in range(H):
            z = self.model.next(z, action[t], task)
            zs.append(z)
        zs = torch.stack(zs)
        rho = self.rho_weights[:H]
        consistency = ((zs[1:] - next_z).pow(2).mean(dim=(1, 2)) * rho).sum() / H
        _zs = zs[:-1]
        qs = self.model.Q(_zs, action, task, "all") if not self.model.v_heads else self.model.V(_zs, task, "all")
        reward_preds = self.model.reward(_zs, action, task)
        tw = self.model.twohot
        reward_loss = (tw.soft_ce(reward_preds, reward).mean(dim=(1, 2)) * rho).sum() / H
        value_loss = (tw.soft_ce(qs, td_targets).mean(dim=(2, 3)) * rho).sum() / (H * qs.shape[0])
        total = cfg.consistency_coef * consistency + cfg.reward_coef * reward_loss + cfg.value_coef * value_loss
        metrics = {"consistency_loss": consistency, "reward_loss": reward_loss, "value_loss": value_loss}
        if cfg.episodic:
            term_pred = self.model.termination(zs[1:], task, unnormalized=True)
            termination_loss = F.binary_cross_entropy_with_logits(term_pred, terminated)
            total = total + cfg.termination_coef * termination_loss
            metrics["termination_loss"] = termination_loss
        metrics["total_loss"] = total
        return total, metrics, zs

    def _update(self, *batch, **kwargs):
        """One update on a batch; returns float metrics (the step itself returns tensors: no sync inside it)."""
        return {k: float(v) for k, v in self._update_step(*batch, **kwargs).items()}

    def _update_step(self, obs, action, reward, terminated, task=None):
        with torch.no_grad():
            next_z = self.model.encode(obs[1:], task)
            td_targets = self._td_target(next_z, reward, terminated, task)
        self.model.train()
        total, metrics, zs = self.world_model_losses(obs, action, reward, terminated, task, next_z, td_targets)
        total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip_norm)
        self.optim.step()
        self.optim.zero_grad(set_to_none=True)
        metrics["grad_norm"] = grad_norm
        pi_metrics = self.update_pi(zs.detach(), task)  # not metrics.update(f()): a bound method on the stack at a
        metrics.update(pi_metrics)  # graph break made torch.compile recompile on every call
        self.model.soft_update_target_Q()
        self.model.eval()
        return {k: v.detach() for k, v in metrics.items()}

    def update(self, buffer, pretrain=False):
        """One gradient step on a batch of (H+1)-step sub-trajectories from the buffer; returns float metrics.
        `pretrain`: an update of the seed pretraining (TD-MPC2's are ordinary updates; BMPC's skip the policy)."""
        batch = buffer.sample()
        return self._update(batch["obs"], batch["action"], batch["reward"], batch["terminated"], batch.get("task"))

    # ------------------------------------------------------------------ persistence
    def weights_state(self):
        """The weights as checkpoints hold them: the official TD-MPC2 layout, so the official code loads ours."""
        from tdmpc2.checkpoint import official_state_dict

        return official_state_dict(self.model)

    def load_weights_state(self, sd):
        from tdmpc2.checkpoint import load_weights

        load_weights(self.model, sd)

    @classmethod
    def from_checkpoint(cls, obj, path, **kwargs):
        """A ready agent from a read checkpoint (every official layout; see dream_mpc.checkpoint.load_agent)."""
        from tdmpc2.checkpoint.official import load_official

        return load_official(obj, path, **kwargs)

    @classmethod
    def file_globals(cls):
        from tdmpc2.checkpoint.metadata import omegaconf_globals

        return omegaconf_globals()

    @classmethod
    def recognizes(cls, obj):
        """Official files carry no config of ours: the TD-MPC2 class reads every official TD-MPC2 and BMPC layout
        (the value heads then decide which of the two agents is built), so BMPC leaves them to it."""
        from dream_mpc.errors import UserError
        from tdmpc2.checkpoint.layouts import detect_layout

        if cls is not TDMPC2 or not isinstance(obj, dict):
            return False
        try:
            detect_layout(obj)
        except (UserError, TypeError, AttributeError):
            return False
        return True

    def file_extras(self):
        """The input transform of a converted pre-release model: the official layout cannot say it, so a reload
        would silently lose it."""
        transform = getattr(self.model, "input_transform", None)
        return {} if transform is None else {"input_transform": transform}

    def state_dict(self):
        """Everything training needs to resume (the weights in the official layout come from tdmpc2/checkpoint/)."""
        return {
            "optim": self.optim.state_dict(),
            "pi_optim": self.pi_optim.state_dict(),
            "scale": self.scale.state_dict(),
        }

    def load_state_dict(self, state):
        self.optim.load_state_dict(state["optim"])
        self.pi_optim.load_state_dict(state["pi_optim"])
        self.scale.load_state_dict(state["scale"])
