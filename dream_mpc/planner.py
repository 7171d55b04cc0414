"""The planner interface every planner implements, the policy-only planner, and the `planner=` registry.

A planner gets the world model and reads it, never changes it: `reset()` at an episode's start, then
`plan(z, t0, eval_mode, task) -> (action (B, A), info)` for a batch of latents z (B, latent_dim).
`info` holds at least `value` (B, 1), and `mean`, `std` (B, A) of the first action (what BMPC imitates).

What a planner may call on the model (the planning interface): `bmpc` (V-heads or Q-heads), `twohot.decode`,
`next(z, a, task)`, `reward(z, a, task)`, `next_and_reward_shared(z, a, task)` (both, for N actions per latent),
`pi(z, task)`, `sample_action(z, task, expl)`, `value_ensemble(z, a, task)` (decoded values of every member,
(M, ..., 1)), `terminal_value(z, task)`, and `cfg.episodic`/`termination` for episodic tasks.
"""
import importlib

import torch

from tdmpc2.errors import unknown

# names resolve to classes only when an agent is built, so tdmpc2/ never imports dream_mpc/ at import time
REGISTRY = {
    "mppi": "tdmpc2.mppi:MPPIPlanner",
    "policy": "tdmpc2.planner:PolicyPlanner",
    "dream": "dream_mpc.dream:DreamMPCPlanner",
    "grad": "dream_mpc.grad:GradMPCPlanner",
    "hybrid": "dream_mpc.grad:HybridGradMPCPlanner",
}


class Planner:
    """Base class: holds the model, the config and the discount(s); subclasses implement `plan`."""

    def __init__(self, model, cfg, discount):
        self.model, self.cfg, self.discount = model, cfg, discount
        self.nonfinite_count = 0  # plans that produced a non-finite value or action and fell back to the policy mean

    def reset(self):
        """Forget anything carried over from the previous step (called at an episode's start)."""

    def plan(self, z, t0=False, eval_mode=False, task=None):
        raise NotImplementedError

    def discount_for(self, task, rows_per_task=1):
        """The discount as a float (single-task) or a (rows, 1) tensor of per-task discounts (multi-task)."""
        if not torch.is_tensor(self.discount):
            return self.discount
        return self.discount[task.long()].repeat_interleave(rows_per_task).unsqueeze(-1)

    def action_mask(self, task):
        return self.model._action_masks[task.long()] if self.cfg.multitask else None

    def policy_fallback(self, z, task, action, info, bad):
        """Replace the plans of rows flagged `bad` by the policy mean, and count them."""
        n_bad = int(bad.sum())
        if n_bad:
            self.nonfinite_count += n_bad
            with torch.no_grad():
                mean = self.model.pi(z, task)[1]["mean"]
            rows = bad.unsqueeze(-1)
            action = torch.where(rows, mean, action)
            info["mean"] = torch.where(rows, mean, info["mean"])
            info["value"] = torch.where(rows, torch.zeros_like(info["value"]), info["value"])
        return action, info


class PolicyPlanner(Planner):
    """Acts with the policy prior alone: its mean in eval mode, a sample otherwise. The value estimate (what BMPC
    stores during training) is skipped in eval mode, where it would double the cost of acting: it is NaN there."""

    @torch.no_grad()
    def plan(self, z, t0=False, eval_mode=False, task=None):
        action, pi_info = self.model.pi(z, task)
        mean = pi_info["mean"]
        if eval_mode:
            return mean, {"value": torch.full_like(mean[:, :1], float("nan")), "mean": mean,
                          "std": pi_info["log_std"].exp()}
        return action, {"value": self.model.terminal_value(z, task), "mean": mean, "std": pi_info["log_std"].exp()}


def make_planner(name, model, cfg, discount):
    if name not in REGISTRY:
        raise unknown("planner", name, list(REGISTRY))
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)(model, cfg, discount)
