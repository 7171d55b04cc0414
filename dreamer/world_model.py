"""Dreamer's networks as the planning protocol sees them (dream_mpc/world_model.py).

A latent is a TensorDict {"h": belief, "s": stochastic state} with batch size (B,) (planners stack it to
(H, B)). `step` is the prior transition, stochastic under the plan's noise (dream_mpc/noise.py: the plan's
common draws, or the prior's mean in mean mode; without noise it samples as imagination does in training);
`reward` reads the state a transition reaches (`reward_timing = "next_state"`, the action is ignored); `values`
is the single value model V(z) as a one-member ensemble (M = 1, `value_kind = "V"`: no uncertainty penalty);
`policy` is the tanh-Gaussian actor (a sample, the deterministic action of the rule `eval_action`, pre-tanh std).
"""

import torch
from tensordict import TensorDict

from dream_mpc.world_model import WorldModel


def latent(h, s):
    """The planning latent of (h, s) with the batch shape of their leading dims."""
    return TensorDict(h=h, s=s, batch_size=h.shape[:-1], device=h.device)


class DreamerWorldModel(WorldModel):
    value_kind = "V"
    stochastic = True
    reward_timing = "next_state"  # r_t = reward(z_{t+1}) (TD-MPC2's reads (z_t, a_t))
    episodic = False
    ensemble_size = 1

    def __init__(self, rssm, reward_model, value_model, actor, eval_action="mode"):
        self.rssm, self.reward_model, self.value_model, self.actor = rssm, reward_model, value_model, actor
        self.eval_action = eval_action  # the deterministic action's rule (dreamer/actor.py)
        self.action_dim = rssm.action_dim
        self.dtype = next(rssm.parameters()).dtype

    def step(self, z, a, task=None, noise=None):
        h = self.rssm.belief(z["h"], z["s"], a)
        mean, std = self.rssm.prior(h)
        if noise is not None and noise.mean:
            return latent(h, mean)
        eps = None if noise is None else noise.normal_like(mean, "s")
        return latent(h, self.rssm.sample(mean, std, eps))

    def reward(self, z, a=None, task=None):
        return self.reward_model(z["h"], z["s"])

    def values(self, z, a=None, task=None):
        return self.value_model(z["h"], z["s"]).unsqueeze(0)  # (M=1, ..., 1)

    def policy(self, z, task=None, explore=False):
        mean, std = self.actor.distribution(z["h"], z["s"])
        action = self.actor.deterministic(mean, std, self.eval_action)  # first: its draws as Dreamer.act's
        return torch.tanh(mean + std * torch.randn_like(mean)), action, std

    def sample_action(self, z, task=None, explore=False):
        return self.actor(z["h"], z["s"])[0]  # rollouts need no deterministic action
