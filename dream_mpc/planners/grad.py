"""The paper's gradient-based baselines, on Dream-MPC's optimiser:

- GradMPCPlanner (`planner=grad`, Grad-MPC): many Gaussian candidates, many gradient-ascent iterations on the
  predicted return, the best one executed; no policy prior, no reuse, no uncertainty penalty.
- HybridGradMPCPlanner (`planner=hybrid`, hybrid Grad-MPC): one candidate from the policy, horizon 1, which the
  paper notes is Dream-MPC with a single candidate and a horizon of one.
"""

from dataclasses import dataclass

import torch

from dream_mpc import adaptive
from dream_mpc.options import option
from dream_mpc.planners.dream import DreamMPCPlanner, DreamOptions
from dream_mpc.registry import planners


@dataclass
class GradOptions:
    num_candidates: int = option(64, "Gaussian candidate sequences", low=1)
    iterations: int = option(10, "gradient-ascent steps per plan", low=0)
    lr: float = option(0.1, "gradient-ascent step size", low=0, low_open=True)
    horizon: int = option(3, "planning horizon", low=1)
    init_std: float = option(0.5, "std of the zero-mean Gaussian candidates (clamped to [-1, 1])", low=0)
    grad_clip_norm: float = option(20.0, "norm each candidate's action gradient is clipped to", low=0, low_open=True)
    # adaptive planning (dream_mpc/adaptive.py), as Dream-MPC's: all off by default
    step_rule: str = adaptive.step_rule_option()
    armijo: float = adaptive.armijo_option()
    max_halvings: int = adaptive.max_halvings_option()
    step_grow: float = adaptive.step_grow_option()
    step_shrink: float = adaptive.step_shrink_option()
    tol: float = adaptive.tol_option()
    budget_ms: float = adaptive.budget_ms_option()
    budget_iterations: int = adaptive.budget_iterations_option()

    def work(self):
        """Model steps per plan: a forward (and backward) per iteration and the final scoring (no policy rollout)."""
        return self.num_candidates * self.horizon * (self.iterations + 1)


@dataclass
class HybridOptions:
    num_candidates: int = option(1, "candidates rolled out from the policy", low=1)
    iterations: int = option(1, "gradient-ascent steps per plan", low=0)
    lr: float = option(0.1, "gradient-ascent step size", low=0, low_open=True)
    horizon: int = option(1, "planning horizon", low=1)
    grad_clip_norm: float = option(20.0, "norm each candidate's action gradient is clipped to", low=0, low_open=True)

    def work(self):
        """Model steps per plan: the policy rollout, a forward (and backward) per iteration, the final scoring."""
        return self.num_candidates * self.horizon * (self.iterations + 2)


class _BaselineOnDream(DreamMPCPlanner):
    """Dream-MPC's optimiser with the baseline's options, no reuse and no uncertainty penalty."""

    @classmethod
    def read_options(cls, cfg):
        own = cls.declared_options(cfg)
        shared = {k: getattr(own, k) for k in ("num_candidates", "iterations", "lr", "horizon", "grad_clip_norm")}
        shared.update({k: getattr(own, k) for k in adaptive.OPTION_KEYS if hasattr(own, k)})  # Grad-MPC declares them
        return DreamOptions(**shared, reuse=0.0, uncertainty_coef=0.0)

    def __init__(self, model, cfg, discount):
        super().__init__(model, cfg, discount)
        self.declared = self.declared_options(cfg)  # the baseline's own options (Grad-MPC's init_std)


@planners.register("grad")
class GradMPCPlanner(_BaselineOnDream):
    """Grad-MPC (the paper's baseline): many zero-mean Gaussian candidates, many gradient-ascent iterations on the
    predicted return through the model, the best candidate's first action; no policy prior, no reuse, no
    uncertainty penalty. Reads the root keys of Dream-MPC's optimiser (`min_std`, `max_std`)."""

    Options = GradOptions
    option_block = "grad"
    needs = frozenset({"value"})  # Gaussian candidates, no policy prior

    def initial_candidates(self, z, task, t0, reanalyze):
        shape = (z.shape[0] * self.num_candidates, self.seq_len, self.model.action_dim)
        return (self.declared.init_std * torch.randn(shape, device=z.device)).clamp(-1, 1)


@planners.register("hybrid")
class HybridGradMPCPlanner(_BaselineOnDream):
    """Hybrid Grad-MPC (the paper's baseline): one candidate from the policy, refined by gradient ascent over a
    horizon of one: Dream-MPC with a single candidate, no reuse and no penalty."""

    Options = HybridOptions
    option_block = "hybrid"
