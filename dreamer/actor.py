"""Dreamer's actor: a tanh-transformed Gaussian on [h, s] (4 ELU hidden layers).

    mean = scale * tanh(raw_mean / scale)                  (keeps the pre-tanh mean in [-scale, scale])
    std  = softplus(raw_std + softplus^-1(init_std)) + min_std   (init_std at a zero raw output)
    a    = tanh(mean + std * eps)                          (reparameterised; gradients reach the state)
The deterministic action (evaluation, `dreamer.eval_action`) is DreamerV1's by default: the most likely of 100
samples under the tanh-Gaussian's density (`mode`); `mean` is tanh(mean), `sample` one sample.
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

    def deterministic(self, mean, std, rule="mode", samples=100, generator=None):
        """The action an evaluation takes from the pre-tanh (mean, std): `rule` mode, mean or sample (see above)."""
        if rule == "mean":
            return torch.tanh(mean)
        n = samples if rule == "mode" else 1
        eps = torch.randn((n, *mean.shape), generator=generator, device=mean.device, dtype=mean.dtype)
        u = mean + std * eps
        if rule == "sample":
            return torch.tanh(u[0])
        # log density of a = tanh(u): log N(u; mean, std) - log(1 - tanh(u)^2), the latter in its stable form
        log_det = 2 * (math.log(2) - u - F.softplus(-2 * u))
        log_p = (-0.5 * eps.pow(2) - std.log() - log_det).sum(-1)  # constants dropped: only the argmax counts
        best = log_p.argmax(0)  # (...,) index of the most likely sample per row
        return torch.tanh(torch.gather(u, 0, best[None, ..., None].expand(1, *u.shape[1:]))[0])
