"""The planning protocol (dream_mpc.world_model.WorldModel) on the probabilistic ensemble."""

import torch

from dream_mpc.world_model import WorldModel


class PETSWorldModel(WorldModel):
    # capabilities: a dynamics + reward model only
    has_policy = False
    has_value = False
    # how planners read it
    stochastic = True  # step() samples from the moment-matched Gaussian of the ensemble
    reward_timing = "transition"  # r(z_t, a_t)
    ensemble_size = 1  # no value ensemble: the value-uncertainty penalty cannot act
    episodic = False

    def __init__(self, net, propagation="moment"):
        super().__init__()
        self.net = net
        self.propagation = propagation
        self.action_dim = net.action_dim
        self.dtype = torch.float32
        self._cache = None  # step() and reward() of the same (z, a) share one ensemble pass

    def _moments(self, z, a):
        key = (z, a, z._version, a._version, torch.is_grad_enabled())
        c = self._cache
        if c is not None and c[0] is z and c[1] is a and c[2:5] == key[2:]:
            return c[5]
        mean, var = self.net.predict(z, a)  # (E, ..., D + 1)
        mu = mean.mean(0)
        total = (var + mean.pow(2)).mean(0) - mu.pow(2)  # aleatoric + epistemic
        out = (mu, total.clamp(min=1e-12))
        self._cache = key + (out,)
        return out

    def step(self, z, a, task=None, noise=None):
        mu, var = self._moments(z, a)
        mean = z + mu[..., :-1]
        if self.propagation == "mean":
            return mean
        std = var[..., :-1].sqrt()
        eps = noise.normal_like(mean) if noise is not None else torch.randn_like(mean)
        return mean + std * eps

    def reward(self, z, a, task=None):
        mu, _ = self._moments(z, a)
        return mu[..., -1:]
