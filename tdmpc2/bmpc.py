"""BMPC (Bootstrapped Model Predictive Control, Wang et al., ICLR 2025) on top of the TD-MPC2 agent.

What differs from TD-MPC2 (reference part A):
- the world model has V(z) heads and BMPC's policy head (`WorldModel(cfg, value_heads="V")`, from `value_heads`);
- V is learned by model-based TD with a policy rollout of td_horizon steps from the encoder latents:
  target = sum_k gamma^k r_hat(z_k, a_k) + gamma^N V_target(z_N, 'avg'), a_k ~ pi(z_k), model-predicted rewards;
- the policy imitates the planner: per step the buffer stores the plan's first-action distribution
  (`expert_action_dist`, mean || std, 2A) and its value (`expert_value`), and the policy minimises
  KL(N(mean_pi, std_pi) || N(expert)) averaged over action dims, scaled by a RunningScale of its t=0 slice,
  minus entropy_coef x the scaled entropy, weighted rho^t over the rolled-out latents;
- lazy reanalysis: every reanalyze_interval updates the first reanalyze_batch_size sequences of the batch are
  replanned (t0, no warm start, exploration log-std bounds for the policy prior) and their targets rewritten in
  the buffer and in the batch;
- the seed pretraining updates (`update(buffer, pretrain=True)`) train the world model and V only.

Buffer alignment (as BMPC's): row t+1 of an episode holds action_t, reward_t and the plan made at obs_t; the
reset row and the rows of seed (random) steps hold NaN targets, read as N(0, 1) when sampled.

Planners: any `planner=`. With MPPI the target is the Gumbel-selected elite's first action and MPPI's std[0]
(as BMPC); with planner=dream the mean/std of the optimised candidates' first actions (as Dream-MPC's BMPC
variant); with planner=policy the policy's own mean/std.
"""

from dataclasses import dataclass

import torch

from dream_mpc.errors import UserError
from dream_mpc.options import option
from dream_mpc.registry import agents
from tdmpc2.agent import TDMPC2

EXPERT_KEYS = ("expert_action_dist", "expert_value")


def gaussian_kl(mean1, std1, mean2, std2):
    """KL(N(mean1, std1^2) || N(mean2, std2^2)) per dimension (elementwise)."""
    return torch.log(std2 / std1) + (std1.pow(2) + (mean1 - mean2).pow(2)) / (2 * std2.pow(2)) - 0.5


def expert_targets(expert_action_dist):
    """Stored targets (..., 2A) -> (..., 2A) with NaN means read as 0 and NaN stds as 1 (BMPC: N(0, 1) where
    no plan was stored: reset rows, seed steps)."""
    mean, std = expert_action_dist.chunk(2, dim=-1)
    mean = torch.nan_to_num(mean, nan=0.0)
    std = torch.where(torch.isnan(std), torch.ones_like(std), std)
    return torch.cat([mean, std], dim=-1)


@dataclass
class BMPCOptions:
    """BMPC's values (the official BMPC config): they replace TD-MPC2's root keys of the same name when agent=bmpc,
    unless set on the command line; the others are BMPC's own and may be given at the top level too."""

    log_std_min: float = option(-3, "lower bound of the policy's log std")
    log_std_max: float = option(1, "upper bound of the policy's log std")
    num_q: int = option(2, "value-ensemble members (V(z) heads)", low=1)
    td_horizon: int = option(1, "steps of the model-based TD target of V", low=1)
    reanalyze_interval: int = option(10, "updates between reanalyses of stored states by the planner", low=1)
    reanalyze_batch_size: int = option(20, "stored sequences replanned per reanalysis", low=0)
    reanalyze_horizon: int = option(3, "planning horizon of the reanalysis", low=1)
    expl_log_std_min: float = option(-2, "lower bound of the exploration policy's log std (reanalysis)")
    expl_log_std_max: float = option(1, "upper bound of the exploration policy's log std (reanalysis)")

    def limits(self, prefix=""):
        """`log_std_min` <= `log_std_max` and `expl_log_std_min` <= `expl_log_std_max`."""
        for lo, hi in (("log_std_min", "log_std_max"), ("expl_log_std_min", "expl_log_std_max")):
            if getattr(self, lo) > getattr(self, hi):
                return f"{prefix}{lo}={getattr(self, lo)} is above {prefix}{hi}={getattr(self, hi)}: it must be <="
        return None


@agents.register("bmpc")
class BMPC(TDMPC2):
    Options = BMPCOptions
    option_block = "bmpc"
    replaces_root_keys = True
    value_heads = "V"

    def __init__(self, cfg):
        if cfg.multitask:
            raise UserError("agent=bmpc is single-task only (as the official BMPC); pick one task")
        if cfg.episodic:
            raise UserError("agent=bmpc does not support episodic=true (the official BMPC has no termination)")
        super().__init__(cfg)
        self.update_count = 0  # non-pretrain updates, for the reanalysis schedule
        self.reanalyze_count = 0

    # ------------------------------------------------------------------ acting: the stored imitation targets
    def buffer_extras(self, planned=False):
        """Per-step buffer fields for the row that follows an env step: the plan made at the previous observation
        (from the last `act`) when the step was planned, NaN otherwise (reset row, seed steps)."""
        A = self.cfg.action_dim
        info = self.last_plan_info if planned else None
        if info is None:
            return {
                "expert_action_dist": torch.full((2 * A,), float("nan")),
                "expert_value": torch.full((1,), float("nan")),
            }
        dist = torch.cat([info["mean"][0].reshape(A), info["std"][0].reshape(A)])
        value = info["value"][0].reshape(1)
        return {"expert_action_dist": dist.detach().float().cpu(), "expert_value": value.detach().float().cpu()}

    # ------------------------------------------------------------------ lazy reanalysis
    def _replan(self, z, task):
        """One batched plan of latents z for new targets (the planner's reanalysis: the acting planner's state, its
        warm starts, is left as it was). Returns the planner's info."""
        return self.plan(z, task=task, reanalysis_horizon=self.cfg.reanalyze_horizon)[1]

    @torch.no_grad()
    def reanalyze(self, buffer, batch, index):
        """Replan the first reanalyze_batch_size sequences at their first H observations (as the official code:
        obs[:-1]) in one batched call and write the new targets into the buffer rows that hold the plans made at
        those observations (index[1:], see the alignment above) and into the batch."""
        cfg = self.cfg
        H, B = batch["action"].shape[:2]
        b = min(int(cfg.reanalyze_batch_size), B)
        obs = batch["obs"][:H, :b]
        task = batch.get("task")
        task = None if task is None else task[:b].repeat(H)
        self.model.eval()
        z = self.model.encode(obs.reshape(H * b, *obs.shape[2:]), task)
        info = self._replan(z, task)
        A = cfg.action_dim
        dist = torch.cat([info["mean"], info["std"]], dim=-1).view(H, b, 2 * A).float()
        value = info["value"].reshape(H, b, 1).float()
        rows = index[1:, :b]
        buffer.write(rows, "expert_action_dist", dist)
        buffer.write(rows, "expert_value", value)
        batch["expert_action_dist"][:, :b] = dist.to(batch["expert_action_dist"].device)
        batch["expert_value"][:, :b] = value.to(batch["expert_value"].device)
        self.reanalyze_count += 1

    # ------------------------------------------------------------------ learning
    @torch.no_grad()
    def td_target(self, zs, task=None):
        """Model-based TD target of V from latents zs (..., L): a td_horizon-step rollout of the current policy
        with predicted rewards, bootstrapped with the target heads' average."""
        G, disc, z = 0.0, 1.0, zs
        for _ in range(int(self.cfg.td_horizon)):
            a = self.model.pi(z, task)[0]
            r = self.model.twohot.decode(self.model.reward(z, a, task))
            z = self.model.next(z, a, task)
            G = G + disc * r
            disc = disc * self.discount
        return G + disc * self.model.V(z, task, "avg", target=True)

    def policy_loss(self, pi_info, expert_action_dist):
        """BMPC's imitation objective; updates the running scale on the t=0 slice. Returns (loss, kl (H, B, 1))."""
        mean, std = pi_info["mean"], pi_info["log_std"].exp()
        expert_mean, expert_std = expert_action_dist.chunk(2, dim=-1)
        kl = gaussian_kl(mean, std, expert_mean, expert_std).mean(dim=-1, keepdim=True)
        self.scale.update(kl[0])
        rho = self.rho_weights[: kl.shape[0]]
        per_step = (self.scale(kl) - self.cfg.entropy_coef * pi_info["scaled_entropy"]).mean(dim=(1, 2))
        return (per_step * rho).mean(), kl

    def update_pi(self, zs, task, expert_action_dist):
        _, info = self.model.pi(zs, task)
        pi_loss, _ = self.policy_loss(info, expert_action_dist)
        return {**self.policy_step(pi_loss, info), "pi_log_std": info["log_std"].mean()}

    def _update_step(self, obs, action, reward, terminated, task=None, expert_action_dist=None, pretrain=False):
        with torch.no_grad():
            true_zs = self.model.encode(obs, task)
            td_targets = self.td_target(true_zs[:-1], task)
        self.model.train()
        total, metrics, zs = self.world_model_losses(obs, action, reward, terminated, task, true_zs[1:], td_targets)
        total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip_norm)
        self.optim.step()
        self.optim.zero_grad(set_to_none=True)
        metrics["grad_norm"] = grad_norm
        if not pretrain:
            pi_metrics = self.update_pi(zs[:-1].detach(), task, expert_action_dist)
            metrics.update(pi_metrics)
        self.model.soft_update_target_Q()
        self.model.eval()
        return {k: v.detach() for k, v in metrics.items()}

    def update(self, buffer, pretrain=False):
        """One update on a sampled batch; pretrain=True (the seed updates) trains the world model and V only and
        neither counts towards nor runs reanalysis."""
        batch, index = buffer.sample(return_index=True)
        missing = [k for k in EXPERT_KEYS if k not in batch]
        if missing:
            raise RuntimeError(
                f"the buffer has no {', '.join(missing)}: fill it through a trainer that calls agent.buffer_extras"
            )
        if not pretrain:
            self.update_count += 1
            interval = int(self.cfg.reanalyze_interval or 0)
            if interval > 0 and self.update_count % interval == 0:
                self.reanalyze(buffer, batch, index)
        return self._update(
            batch["obs"],
            batch["action"],
            batch["reward"],
            batch["terminated"],
            batch.get("task"),
            expert_action_dist=expert_targets(batch["expert_action_dist"]),
            pretrain=pretrain,
        )

    # ------------------------------------------------------------------ persistence
    def state_dict(self):
        return {**super().state_dict(), "update_count": self.update_count, "reanalyze_count": self.reanalyze_count}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.update_count = int(state.get("update_count", 0))
        self.reanalyze_count = int(state.get("reanalyze_count", 0))
