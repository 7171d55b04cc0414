"""The cross-entropy method of PlaNet (`planner=cem`) and CEM seeded by the policy (`planner=cem_policy`).

Per step, from the latent z of the current observation: a diagonal Gaussian over action sequences (H, A), mean 0
and std `init_std`; `iterations` times, N sequences are sampled (clamped to [-1, 1], the action box), scored by
the predicted return with the same helper as MPPI (`sequence_return`: discounted rewards, continuation, the
model's terminal value), and the Gaussian is refitted to the top K (mean and population std). The executed action
is the first step of the final mean. `cem_policy` starts the Gaussian at the policy's mean actions rolled out
through the model instead of 0 (the paper's "CEM seeded by the policy"); both read the `cem` block.

Where we differ from PlaNet's planner (reference: dreamer-pytorch's MPCPlanner) by default: the return is discounted
and bootstrapped with the model's terminal value (`cem.discounted=false cem.terminal_value=false`: the plain sum of
rewards, as PlaNet, and the Dreamer family's default), sequences are
clamped to [-1, 1] before they are scored (PlaNet clamps only in the environment), and exploration noise
(`cem.expl_noise`, PlaNet's action noise 0.3) is the planner's, outside eval mode. Like PlaNet, nothing is carried
from one step to the next.
"""

from dataclasses import dataclass

import torch

from dream_mpc.errors import UserError
from dream_mpc.noise import imagination_option
from dream_mpc.options import option
from dream_mpc.planner import Planner
from dream_mpc.registry import planners
from dream_mpc.rollout import policy_rollout, sequence_return


@dataclass
class CEMOptions:
    num_candidates: int = option(1000, "action sequences sampled per iteration (N; PlaNet: 1000)", low=2)
    iterations: int = option(10, "refits of the Gaussian per step (PlaNet: 10)", low=1)
    top_k: int = option(100, "best sequences the mean and std are refitted to (K; PlaNet: 100)", low=1)
    horizon: int = option(12, "planning horizon (PlaNet: 12)", low=1)
    init_std: float = option(1.0, "initial std of the Gaussian over actions (PlaNet: 1)", low=0, low_open=True)
    terminal_value: bool = option(True, "add the model's discounted terminal value (false: rewards only, as PlaNet)")
    discounted: bool = option(True, "discount the rewards by the agent's gamma (false: their plain sum, as PlaNet)")
    expl_noise: float = option(0.3, "std of Gaussian noise on the executed action outside eval mode (PlaNet)", low=0)
    imagination: str = imagination_option()

    def limits(self, prefix=""):
        """`cem.top_k` <= `cem.num_candidates`."""
        if self.top_k > self.num_candidates:
            return (
                f"CEM needs {prefix}top_k <= {prefix}num_candidates, got top_k={self.top_k}, "
                f"num_candidates={self.num_candidates}"
            )
        return None

    def work(self):
        """Model steps per plan."""
        return self.num_candidates * self.horizon * self.iterations


@planners.register("cem")
class CEMPlanner(Planner):
    """Reads the root keys `min_std`/`max_std` (bounds of the first-action std reported in `info`, which BMPC
    imitates) besides its options. A reanalysis horizon (BMPC's) replaces `cem.horizon`."""

    Options = CEMOptions
    option_block = "cem"
    root_keys = ("min_std", "max_std")
    seed_with_policy = False
    relief = {"value": "terminal_value=false"}  # PlaNet's plain reward sum needs no value

    @classmethod
    def requirements(cls, opt):
        """A value for the terminal value, a policy for the seed (cem_policy); PlaNet's CEM needs neither."""
        return ({"value"} if opt.terminal_value else set()) | ({"policy"} if cls.seed_with_policy else set())

    def __init__(self, model, cfg, discount):
        super().__init__(model, cfg, discount)
        problem = self.opt.limits(self.option_block + ".")  # checked with the config too; again for code
        if problem:
            raise UserError(problem)

    def initial_mean(self, z, task, horizon, reanalyze, noise):
        """(H, B, A): zeros (PlaNet), or the policy's mean actions rolled out through the model."""
        B, A = z.shape[0], self.model.action_dim
        if not self.seed_with_policy:
            return torch.zeros(horizon, B, A, device=z.device)
        return policy_rollout(self.model, z, task, 1, horizon, reanalyze, noise, mean=True).float()

    @torch.no_grad()
    def plan(self, z, t0=False, eval_mode=False, task=None):
        o, model = self.opt, self.model
        H = self.reanalysis_horizon or o.horizon
        B, A, N, K = z.shape[0], model.action_dim, o.num_candidates, o.top_k
        mask = model.action_mask(task)
        imagination = self.imagination_noise(B, o.imagination)  # one plan's draws, kept across the iterations
        mean = self.initial_mean(z, task, H, self.reanalyzing, imagination)
        std = torch.full_like(mean, o.init_std)
        discount = self.discount_for(task, N) if o.discounted else 1.0
        for _ in range(o.iterations):
            eps = torch.randn(H, B, N, A, device=z.device)
            actions = (mean.unsqueeze(2) + std.unsqueeze(2) * eps).clamp(-1, 1)
            if mask is not None:
                actions = actions * mask.view(1, B, 1, A)
            rows = actions.view(H, B * N, A).to(model.dtype)
            value = sequence_return(model, z, rows, task, discount, o.terminal_value, imagination).float()
            value = value.view(B, N).nan_to_num(nan=float("-inf"))  # a NaN score is never an elite
            elite_value, elite_idxs = torch.topk(value, K, dim=1)  # (B, K)
            elites = torch.gather(actions, 2, elite_idxs.view(1, B, K, 1).expand(H, B, K, A))
            mean, std = elites.mean(2), elites.std(2, correction=0)  # population std, as PlaNet
        action = mean[0]
        info = {
            "value": elite_value.mean(1, keepdim=True),
            "mean": action,
            "std": std[0].clamp(self.cfg.min_std, self.cfg.max_std),
            "plan": mean.transpose(0, 1),  # the final mean sequence (B, H, A)
        }
        if not eval_mode and o.expl_noise:
            action = (action + o.expl_noise * torch.randn_like(action)).clamp(-1, 1)
        bad = ~(torch.isfinite(action).all(-1) & torch.isfinite(info["value"]).squeeze(-1))
        return self.policy_fallback(z, task, action, info, bad)


@planners.register("cem_policy")
class PolicySeededCEMPlanner(CEMPlanner):
    """CEM whose Gaussian starts at the policy's mean actions rolled out through the model (`cem` block)."""

    seed_with_policy = True
