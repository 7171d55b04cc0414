"""The paper's gradient-based baselines on the same planner interface.

- GradMPCPlanner (`planner=grad`, Grad-MPC): many Gaussian candidates, many gradient-ascent iterations on the
  predicted return, the best one executed; no policy prior, no reuse, no uncertainty penalty.
- HybridGradMPCPlanner (`planner=hybrid`, hybrid Grad-MPC): one candidate from the policy, horizon 1, which the
  paper notes is Dream-MPC with a single candidate and a horizon of one.
"""
import torch

from dream_mpc.dream import DreamMPCPlanner


class GradMPCPlanner(DreamMPCPlanner):
    option_block = "grad"

    def __init__(self, model, cfg, discount):
        super().__init__(model, cfg, discount, reuse=0.0, uncertainty_coef=0.0)
        self.init_std = float(cfg.grad.init_std)

    def initial_candidates(self, z, task, t0, reanalyze):
        shape = (z.shape[0] * self.num_candidates, self.seq_len, self.cfg.action_dim)
        return (self.init_std * torch.randn(shape, device=z.device)).clamp(-1, 1)


class HybridGradMPCPlanner(DreamMPCPlanner):
    option_block = "hybrid"

    def __init__(self, model, cfg, discount):
        super().__init__(model, cfg, discount, reuse=0.0, uncertainty_coef=0.0)
