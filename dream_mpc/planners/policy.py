"""The policy prior alone (`planner=policy`): no search."""

import torch

from dream_mpc.planner import Planner
from dream_mpc.registry import planners


@planners.register("policy")
class PolicyPlanner(Planner):
    """Acts with the policy prior: its mean in eval mode, a sample otherwise. The value estimate (what BMPC
    stores during training) is skipped in eval mode, where it would double the cost of acting: it is NaN there."""

    needs = frozenset({"policy"})

    @torch.no_grad()
    def plan(self, z, t0=False, eval_mode=False, task=None):
        action, mean, std = self.model.policy(z, task)
        if eval_mode:
            return mean, {"value": torch.full_like(mean[:, :1], float("nan")), "mean": mean, "std": std}
        return action, {"value": self.model.terminal_value(z, task), "mean": mean, "std": std}
