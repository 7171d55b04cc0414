"""Analytic world models on the planning protocol (dream_mpc/world_model.py), where planners have exact answers.

step(z, a) = z + B a,  reward(z, a) = -k |a - c|^2 - |z|^2 / 2,
value member m: q_m(z, a) = s_m (sum(z) + sum(a)),  policy: a = tanh(W z) (+ sigma * noise)
"""

import torch

from dream_mpc.world_model import WorldModel


class LinearQuadraticModel(torch.nn.Module, WorldModel):
    def __init__(
        self, latent_dim=3, action_dim=2, scales=(0.5, 1.0, 1.5), k=1.0, target=0.3, policy_std=0.0, nan_reward=False
    ):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.B = torch.nn.Parameter(0.3 * torch.randn(latent_dim, action_dim, generator=g))
        self.W = torch.nn.Parameter(0.5 * torch.randn(action_dim, latent_dim, generator=g))
        self.scales = torch.nn.Parameter(torch.tensor(scales))
        self.k, self.c, self.policy_std, self.nan_reward = k, target, policy_std, nan_reward
        self.action_dim = action_dim
        self.eval()

    def step(self, z, a, task=None):
        return z + a @ self.B.T

    def reward(self, z, a, task=None):
        r = -self.k * (a - self.c).pow(2).sum(-1, keepdim=True) - 0.5 * z.pow(2).sum(-1, keepdim=True)
        return r * float("nan") if self.nan_reward else r

    def policy(self, z, task=None, explore=False):
        mean = torch.tanh(z @ self.W.T)
        action = mean + self.policy_std * torch.randn_like(mean)
        return action.clamp(-1, 1), mean, torch.full_like(mean, float(torch.tensor(-5.0).exp()))

    def values(self, z, a=None, task=None):
        x = z.sum(-1, keepdim=True) + a.sum(-1, keepdim=True)
        return self.scales.view(-1, *([1] * x.ndim)) * x
