"""Numerics shared by the world model, the planners and the losses (two-hot regression, policy log-probs)."""

import torch
import torch.nn.functional as F


def symlog(x):
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x):
    return torch.sign(x) * torch.expm1(torch.abs(x))


class TwoHot:
    """Discrete regression over `num_bins` bins in symlog space, as in TD-MPC2.

    num_bins == 0 means plain scalar regression and num_bins == 1 a symlog scalar, so analytic
    test models can return values directly.
    """

    def __init__(self, num_bins=101, vmin=-10.0, vmax=10.0):
        self.num_bins, self.vmin, self.vmax = int(num_bins), float(vmin), float(vmax)
        self.bin_size = (self.vmax - self.vmin) / (self.num_bins - 1) if self.num_bins > 1 else 0.0
        self._bins = {}

    def bins(self, like):
        key = (like.device, like.dtype)
        if key not in self._bins:
            self._bins[key] = torch.linspace(self.vmin, self.vmax, self.num_bins, device=like.device, dtype=like.dtype)
        return self._bins[key]

    def encode(self, x):
        """Scalar targets (..., 1) -> two-hot distributions (..., num_bins)."""
        if self.num_bins == 0:
            return x
        if self.num_bins == 1:
            return symlog(x)
        x = torch.clamp(symlog(x), self.vmin, self.vmax).squeeze(-1)
        pos = (x - self.vmin) / self.bin_size
        idx = torch.floor(pos)
        offset = (pos - idx).unsqueeze(-1)
        idx = idx.long().unsqueeze(-1)
        out = torch.zeros(*x.shape, self.num_bins, device=x.device, dtype=x.dtype)
        out.scatter_(-1, idx, 1 - offset)
        out.scatter_add_(-1, (idx + 1) % self.num_bins, offset)
        return out

    def decode(self, logits):
        """Logits (..., num_bins) -> scalar values (..., 1): the one helper every planner decodes with."""
        if self.num_bins == 0:
            return logits
        if self.num_bins == 1:
            return symexp(logits)
        if logits.dtype in (torch.bfloat16, torch.float16):  # rank and sum values at full precision
            logits = logits.float()
        probs = torch.softmax(logits, dim=-1)
        return symexp(probs @ self.bins(logits).unsqueeze(-1))

    def soft_ce(self, logits, target):
        """Cross-entropy between predicted logits and the two-hot encoding of scalar targets, shape (..., 1)."""
        if self.num_bins == 0:
            return F.mse_loss(logits, target, reduction="none")
        if self.num_bins == 1:
            return F.mse_loss(logits, symlog(target), reduction="none")
        return -(self.encode(target) * F.log_softmax(logits, dim=-1)).sum(-1, keepdim=True)


def gaussian_logprob(eps, log_std):
    """Log-density of N(0, std) at eps*std, summed over the last dim (TD-MPC2's per-dimension constant)."""
    return (-0.5 * eps.pow(2) - log_std - 0.9189385332046727).sum(-1, keepdim=True)


def squash(mu, pi, log_pi):
    """tanh squashing with its log-det correction, SAC style."""
    mu, pi = torch.tanh(mu), torch.tanh(pi)
    log_pi = log_pi - torch.log(F.relu(1 - pi.pow(2)) + 1e-6).sum(-1, keepdim=True)
    return mu, pi, log_pi
