"""Dreamer's networks as the planning protocol sees them (dream_mpc/world_model.py).

A latent is a TensorDict {"h": belief, "s": stochastic state} with batch size (B,) (planners stack it to
(H, B)). `step` is the prior transition; `reward` reads the state a transition reaches (`reward_timing =
"next_state"`: r_t = reward(z_{t+1}), the action is ignored); `values` is the single value model V(z) as a
one-member ensemble (M = 1, `value_kind = "V"`: no uncertainty penalty); `policy` is the tanh-Gaussian actor.

Imagination noise: `step(..., sample=None, generator=None)` samples s' from the prior with `generator` (common
noise when the planner reuses one) or returns its mean with sample=False; sample=None takes `self.sample`.
"""

from tensordict import TensorDict

from dream_mpc.world_model import WorldModel


def latent(h, s):
    """The planning latent of (h, s) with the batch shape of their leading dims."""
    return TensorDict(h=h, s=s, batch_size=h.shape[:-1], device=h.device)


class DreamerWorldModel(WorldModel):
    value_kind = "V"
    #: r_t is predicted from the state reached, z_{t+1} (TD-MPC2's reads (z_t, a_t))
    reward_timing = "next_state"
    episodic = False

    def __init__(self, rssm, reward_model, value_model, actor, sample=True):
        self.rssm, self.reward_model, self.value_model, self.actor = rssm, reward_model, value_model, actor
        self.action_dim = rssm.action_dim
        self.sample = sample  # imagination draws s' ~ p(s' | h') (Dreamer) unless told to take the mean
        self.dtype = next(rssm.parameters()).dtype

    def step(self, z, a, task=None, sample=None, generator=None):
        h, s = self.rssm.imagine_step(z["h"], z["s"], a, self.sample if sample is None else sample, generator)
        return latent(h, s)

    def reward(self, z, a=None, task=None):
        return self.reward_model(z["h"], z["s"])

    def values(self, z, a=None, task=None):
        return self.value_model(z["h"], z["s"]).unsqueeze(0)  # (M=1, ..., 1)

    def policy(self, z, task=None, explore=False, generator=None):
        """(tanh-Gaussian sample, tanh(mean), pre-tanh std)."""
        return self.actor(z["h"], z["s"], generator=generator)

    def terminal_value(self, z, task=None):
        return self.value_model(z["h"], z["s"])
