"""Analytic world models with the planning interface, where planners have exact answers.

    encode(s) = s,  next(z, a) = z + B a,  reward(z, a) = -k |a - c|^2 - |z|^2 / 2,
    value member m: q_m(z, a) = s_m (sum(z) + sum(a)),  policy: a = tanh(W z) (+ sigma * noise)
Values are plain scalars (num_bins = 0, so decoding is the identity).
"""
import torch

from tdmpc2.config import Config
from tdmpc2.math import TwoHot


class LinearQuadraticModel(torch.nn.Module):
    def __init__(self, latent_dim=3, action_dim=2, scales=(0.5, 1.0, 1.5), k=1.0, target=0.3, policy_std=0.0,
                 nan_reward=False):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.B = torch.nn.Parameter(0.3 * torch.randn(latent_dim, action_dim, generator=g))
        self.W = torch.nn.Parameter(0.5 * torch.randn(action_dim, latent_dim, generator=g))
        self.scales = torch.nn.Parameter(torch.tensor(scales))
        self.k, self.c, self.policy_std, self.nan_reward = k, target, policy_std, nan_reward
        self.bmpc = False
        self.twohot = TwoHot(0)
        self.cfg = Config(action_dim=action_dim, latent_dim=latent_dim, multitask=False, episodic=False,
                          min_std=0.05, max_std=2.0)
        self.eval()

    def encode(self, obs, task=None):
        return obs

    def next(self, z, a, task=None):
        return z + a @ self.B.T

    def reward(self, z, a, task=None):
        r = -self.k * (a - self.c).pow(2).sum(-1, keepdim=True) - 0.5 * z.pow(2).sum(-1, keepdim=True)
        return r * float("nan") if self.nan_reward else r

    def next_and_reward_shared(self, z, a, task=None):
        z, a = z.repeat_interleave(a.shape[1], 0), a.reshape(-1, a.shape[-1])
        return self.next(z, a), self.reward(z, a)

    def pi(self, z, task=None, expl=False):
        mean = torch.tanh(z @ self.W.T)
        action = mean + self.policy_std * torch.randn_like(mean)
        return action.clamp(-1, 1), {"mean": mean, "log_std": torch.full_like(mean, -5.0)}

    def sample_action(self, z, task=None, expl=False):
        return self.pi(z, task, expl)[0]

    def value_ensemble(self, z, a, task=None):
        x = z.sum(-1, keepdim=True) + a.sum(-1, keepdim=True)
        return self.scales.view(-1, *([1] * x.ndim)) * x

    def terminal_value(self, z, task=None):
        return self.value_ensemble(z, self.pi(z)[0]).mean(0)
