"""Probabilistic ensemble (PETS): E MLPs, each a Gaussian over (next state - state, reward)."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class EnsembleLinear(nn.Module):
    def __init__(self, members, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(members, 1, n_out))
        bound = 1 / math.sqrt(n_in)
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x):  # (E, N, n_in) -> (E, N, n_out)
        return torch.baddbmm(self.bias, x, self.weight)


class ProbabilisticEnsemble(nn.Module):
    def __init__(self, obs_dim, action_dim, members=5, hidden=200, layers=3):
        super().__init__()
        self.obs_dim, self.action_dim, self.members = obs_dim, action_dim, members
        n_in, n_out = obs_dim + action_dim, obs_dim + 1
        dims = [n_in] + [hidden] * layers
        self.hidden = nn.ModuleList(EnsembleLinear(members, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.head = EnsembleLinear(members, hidden, 2 * n_out)
        self.max_logvar = nn.Parameter(torch.full((n_out,), 0.5))
        self.min_logvar = nn.Parameter(torch.full((n_out,), -10.0))
        # input and target normalisation, learned from the data seen (kept in the weights)
        self.register_buffer("count", torch.zeros(()))
        self.register_buffer("in_mean", torch.zeros(n_in))
        self.register_buffer("in_m2", torch.ones(n_in))
        self.register_buffer("out_mean", torch.zeros(n_out))
        self.register_buffer("out_m2", torch.ones(n_out))

    @torch.no_grad()
    def observe(self, x, y):
        """Chan's parallel update of the running mean and variance of inputs x and targets y."""
        n = x.shape[0]
        tot = self.count + n
        for mean, m2, v in ((self.in_mean, self.in_m2, x), (self.out_mean, self.out_m2, y)):
            bm, bv = v.mean(0), v.var(0, unbiased=False)
            delta = bm - mean
            m2.copy_(m2 + bv * n + delta.pow(2) * self.count * n / tot if self.count > 0 else bv * n)
            mean.add_(delta * n / tot)
        self.count.copy_(tot)

    def _std(self, m2):
        return (m2 / self.count.clamp(min=1)).sqrt().clamp(min=1e-4) if self.count > 0 else torch.ones_like(m2)

    def _net(self, x):
        """x (E, N, D + A), normalised -> mean and bounded log-variance (E, N, D + 1), normalised."""
        h = x
        for layer in self.hidden:
            h = F.silu(layer(h))
        mean, logvar = self.head(h).chunk(2, -1)
        logvar = self.max_logvar - F.softplus(self.max_logvar - logvar)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return mean, logvar

    def _inputs(self, obs, action):
        x = torch.cat([obs, action], -1).reshape(-1, self.obs_dim + self.action_dim)
        return (x - self.in_mean) / self._std(self.in_m2)

    def forward(self, obs, action):
        """obs (..., D), action (..., A) -> normalised mean and log-variance (E, ..., D + 1)."""
        lead = obs.shape[:-1]
        mean, logvar = self._net(self._inputs(obs, action).unsqueeze(0).expand(self.members, -1, -1))
        return mean.reshape(self.members, *lead, -1), logvar.reshape(self.members, *lead, -1)

    def predict(self, obs, action):
        """Denormalised per-member mean and variance of (delta state, reward): (E, ..., D + 1)."""
        mean, logvar = self(obs, action)
        std = self._std(self.out_m2)
        return mean * std + self.out_mean, logvar.exp() * std.pow(2)

    def loss(self, obs, action, target):
        """Gaussian NLL of each member on its own bootstrap resample of the batch."""
        n = obs.shape[0]
        idx = torch.randint(n, (self.members, n), device=obs.device)
        mean, logvar = self._net(self._inputs(obs, action)[idx])
        y = ((target - self.out_mean) / self._std(self.out_m2))[idx]
        nll = ((mean - y).pow(2) * (-logvar).exp() + logvar).mean()
        reg = 0.01 * (self.max_logvar.sum() - self.min_logvar.sum())
        mse = (mean - y).pow(2).mean(dim=(0, 1))
        mse = mse.detach()
        return nll + reg, {"nll": nll.item(), "dyn_mse": mse[:-1].mean().item(), "reward_mse": mse[-1].item()}
