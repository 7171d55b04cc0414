"""Gymnasium's Pendulum-v1 in torch, as a world model of the planning protocol: the ground truth that the
gradient analysis (scripts/analyze_gradients.py, the paper's appendix D.2) compares learned models with.

Latent = the true state (theta, theta_dot), shape (..., 2). `step` and `reward` are gymnasium's (1.x) formulas
with its constants (g = 10, m = l = 1, dt = 0.05, max speed 8, max torque 2); an action a in [-1, 1] is the torque
2a, as the `gym-pendulum` task scales it. `encode` recovers the state from an observation (cos, sin, theta_dot)
up to a multiple of 2 pi, which changes neither the next observation nor the reward.

Clipping: gymnasium clips the torque to [-2, 2] and the new speed to [-8, 8]. Where a clip is active, the exact
derivative is zero (`clip_grad="zero"`, the default: the gradient of gymnasium's function as it is). With
`clip_grad="straight_through"` the forward values are the same but the backward pass treats each clip as the
identity, so a sequence that saturates the speed still gets a direction. Planners keep actions in [-1, 1], so the
torque clip only matters for that case; the speed clip matters during fast swings.

Action repeat (`action_repeat`, default 1, as the `gym-pendulum` suite's env): one model step is that many
simulator steps with the same torque and its reward the sum of their rewards, each read before its simulator step
(gymnasium computes a step's reward from the state it starts in), so the reward still reads (z_t, a_t).

Values: one member, zero (no terminal value: the planning objective is the sum of the H rewards), or
`value_fn(z) -> (..., 1)` when given. Policy: a Gaussian prior N(prior_mean, prior_std^2) clamped to [-1, 1],
the same for every state, or `policy_fn(z) -> (action, mean, std)` (e.g. a trained agent's policy on the
observations) so that policy-seeded planners (Dream-MPC, MPPI) can run through the true dynamics.
"""

import math
from dataclasses import dataclass

import torch

from dream_mpc.options import option, validate
from dream_mpc.world_model import WorldModel

GRAVITY, MASS, LENGTH, DT = 10.0, 1.0, 1.0, 0.05
MAX_SPEED, MAX_TORQUE = 8.0, 2.0


@dataclass
class PendulumOptions:
    prior_mean: float = option(0.0, "mean of the Gaussian policy prior (an action in [-1, 1])", low=-1, high=1)
    prior_std: float = option(0.5, "std of the Gaussian policy prior", low=0)
    clip_grad: str = option(
        "zero",
        "gradient through the speed and torque clips: zero (exact) or straight_through (identity)",
        choices=("zero", "straight_through"),
    )
    action_repeat: int = option(1, "simulator steps per model step (the same torque; rewards summed)", low=1)


def angle_normalize(x):
    """An angle mapped to [-pi, pi), as gymnasium's `angle_normalize` (its derivative is 1)."""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi


def clip(x, low, high, straight_through=False):
    """x clamped to [low, high]; straight-through: same value, gradient of the identity."""
    clipped = x.clamp(low, high)
    return x + (clipped - x).detach() if straight_through else clipped


class PendulumModel(WorldModel):
    """Pendulum-v1's dynamics and reward on the state (theta, theta_dot); see the module docstring."""

    action_dim = 1
    value_kind = "V"  # the terminal value reads the state alone

    def __init__(self, dtype=torch.float32, value_fn=None, policy_fn=None, **options):
        values = validate(PendulumOptions, {**vars(PendulumOptions()), **options}, prefix="pendulum.")
        self.opt = PendulumOptions(**values)
        self.dtype, self.value_fn, self.policy_fn = dtype, value_fn, policy_fn
        self._st = self.opt.clip_grad == "straight_through"

    # ------------------------------------------------------------------ observations <-> states
    @staticmethod
    def encode(obs):
        """(..., 3) observations (cos, sin, theta_dot) -> (..., 2) states (theta in (-pi, pi], theta_dot)."""
        return torch.stack([torch.atan2(obs[..., 1], obs[..., 0]), obs[..., 2]], -1)

    @staticmethod
    def observe(z):
        """(..., 2) states -> (..., 3) observations, as gymnasium's `_get_obs`."""
        return torch.stack([torch.cos(z[..., 0]), torch.sin(z[..., 0]), z[..., 1]], -1)

    def torque(self, a):
        return clip(MAX_TORQUE * a[..., 0], -MAX_TORQUE, MAX_TORQUE, self._st)

    # ------------------------------------------------------------------ the protocol
    def simulator_step(self, z, a):
        """One step of gymnasium's simulator (no action repeat)."""
        th, thdot = z[..., 0], z[..., 1]
        u = self.torque(a)
        accel = 3 * GRAVITY / (2 * LENGTH) * torch.sin(th) + 3.0 / (MASS * LENGTH**2) * u
        new_thdot = clip(thdot + accel * DT, -MAX_SPEED, MAX_SPEED, self._st)
        return torch.stack([th + new_thdot * DT, new_thdot], -1)

    def simulator_reward(self, z, a):
        """gymnasium's reward of one simulator step from z under a."""
        th, thdot, u = z[..., 0], z[..., 1], self.torque(a)
        return -(angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2).unsqueeze(-1)

    def step(self, z, a, task=None):
        for _ in range(self.opt.action_repeat):
            z = self.simulator_step(z, a)
        return z

    def reward(self, z, a, task=None):
        total = self.simulator_reward(z, a)
        for _ in range(self.opt.action_repeat - 1):
            z = self.simulator_step(z, a)
            total = total + self.simulator_reward(z, a)
        return total

    def values(self, z, a=None, task=None):
        if self.value_fn is not None:
            return self.value_fn(z).unsqueeze(0)
        return torch.zeros(1, *z.shape[:-1], 1, dtype=z.dtype, device=z.device)

    def policy(self, z, task=None, explore=False):
        if self.policy_fn is not None:
            return self.policy_fn(z)
        mean = torch.full((*z.shape[:-1], 1), self.opt.prior_mean, dtype=z.dtype, device=z.device)
        std = torch.full_like(mean, self.opt.prior_std)
        return (mean + std * torch.randn_like(mean)).clamp(-1, 1), mean, std
