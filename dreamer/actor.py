"""Dreamer's actor: a tanh-transformed Gaussian on [h, s] (4 ELU hidden layers).

    mean = scale * tanh(raw_mean / scale)                  (keeps the pre-tanh mean in [-scale, scale])
    std  = softplus(raw_std + softplus^-1(init_std)) + min_std   (init_std at a zero raw output)
    a    = tanh(mean + std * eps)                          (reparameterised; gradients reach the state)
The deterministic action is tanh(mean) (dreamer-pytorch instead takes the most likely of 100 samples).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from dreamer.encoders import mlp


class TanhGaussianActor(nn.Module):
    def __init__(self, feature_size, action_dim, hidden_size, init_std=5.0, min_std=1e-4, mean_scale=5.0):
        super().__init__()
        self.net = mlp(feature_size, hidden_size, 2 * action_dim, 4)
        self.raw_init_std = math.log(math.expm1(init_std))
        self.min_std, self.mean_scale = min_std, mean_scale

    def distribution(self, h, s):
        """(mean, std) of the pre-tanh Gaussian."""
        mean, std = self.net(torch.cat([h, s], -1)).chunk(2, -1)
        mean = self.mean_scale * torch.tanh(mean / self.mean_scale)
        return mean, F.softplus(std + self.raw_init_std) + self.min_std

    def forward(self, h, s, deterministic=False, generator=None):
        """(action, tanh(mean), pre-tanh std); the action is tanh(mean) if deterministic, else a sample."""
        mean, std = self.distribution(h, s)
        if deterministic:
            return torch.tanh(mean), torch.tanh(mean), std
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return torch.tanh(mean + std * eps), torch.tanh(mean), std
