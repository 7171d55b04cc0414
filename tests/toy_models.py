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


class IntegratorModel(torch.nn.Module, WorldModel):
    """A V-model with a closed-form H-step optimum:

    step(z, a) = z + a (+ sigma * eps: stochastic when sigma > 0, eps from the planner's noise),
    reward(z, a) = -k |a|^2 + u sum(z),  V(z) = -w |z - goal|^2 (a single value member),  policy: tanh(goal - z).

    With u = 0, discount gamma and horizon H from z, the optimum of sum_t gamma^t r_t + gamma^H V(z_H) is
    a_t = gamma^(H-t) w (goal - z) / (k + w S),  S = sum_{t<H} gamma^(H-t)  (set the gradient of each a_t to zero).
    `record`: a list that collects the noise every step received (what a test checks for common noise)."""

    value_kind = "V"
    ensemble_size = 1

    def __init__(self, dim=2, k=1.0, w=4.0, goal=0.5, u=0.0, sigma=0.0, reward_timing="transition"):
        super().__init__()
        self.action_dim, self.k, self.w, self.goal, self.u, self.sigma = dim, k, w, goal, u, sigma
        self.stochastic = sigma > 0
        self.reward_timing = reward_timing
        self.record = None

    def step(self, z, a, task=None, noise=None):
        nxt = z + a
        if self.sigma:
            eps = torch.randn_like(nxt) if noise is None else noise.normal_like(nxt)
            if self.record is not None:
                self.record.append(eps.detach().clone())
            nxt = nxt + self.sigma * eps
        return nxt

    def reward(self, z, a, task=None):
        return -self.k * a.pow(2).sum(-1, keepdim=True) + self.u * z.sum(-1, keepdim=True)

    def values(self, z, a=None, task=None):
        return (-self.w * (z - self.goal).pow(2).sum(-1, keepdim=True)).unsqueeze(0)

    def policy(self, z, task=None, explore=False):
        mean = torch.tanh(self.goal - z)
        return mean, mean, torch.full_like(mean, 0.01)

    def optimum(self, z, horizon, discount):
        """The closed-form optimal sequence (H, ..., A) for u = 0."""
        S = sum(discount ** (horizon - t) for t in range(horizon))
        return torch.stack(
            [discount ** (horizon - t) * self.w * (self.goal - z) / (self.k + self.w * S) for t in range(horizon)]
        )
