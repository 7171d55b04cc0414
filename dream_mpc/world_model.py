"""The world model as planners see it. Planners call nothing else (no model family, no private attribute).

A latent state is a tensor (B, L) or a `tensordict.TensorDict` with batch size (B,) (e.g. a recurrent (h, s)
state); planners only index, stack, and `repeat_interleave` latents along their first dimension (see `repeat`).
Values and rewards are decoded scalars (..., 1). `task` is None (single-task) or a LongTensor of task ids per row.

Implement the abstract methods; the others have defaults that are correct for any model and may be overridden
for speed (as TD-MPC2's adapter does for `step_and_reward_shared`).
"""

from abc import ABC, abstractmethod

import torch


class WorldModel(ABC):
    #: actions are in [-1, 1]^action_dim
    action_dim: int
    #: "Q": the value ensemble is Q(z, a); "V": V(z). A Q-model's terminal value needs an action at the horizon.
    value_kind: str = "Q"
    #: whether rollouts stop counting rewards after a predicted termination (`continuation`)
    episodic: bool = False
    #: the dtype the model computes in; sampling planners build their action tensors in it
    dtype: torch.dtype = torch.float32

    @property
    def terminal_needs_action(self):
        return self.value_kind == "Q"

    # ------------------------------------------------------------------ required
    @abstractmethod
    def step(self, z, a, task=None):
        """One latent step: z_{t+1} from (z_t, a_t)."""

    @abstractmethod
    def reward(self, z, a, task=None):
        """The decoded predicted reward r(z, a), (..., 1)."""

    @abstractmethod
    def values(self, z, a=None, task=None):
        """Decoded values of every ensemble member, (M, ..., 1): Q_m(z, a), or V_m(z) (a is ignored)."""

    @abstractmethod
    def policy(self, z, task=None, explore=False):
        """The policy prior: (sampled action, mean, std), each (..., A). `explore`: the wider exploration
        bounds of models that have them (BMPC's reanalysis); others ignore it."""

    # ------------------------------------------------------------------ optional, with general defaults
    def sample_action(self, z, task=None, explore=False):
        """A policy sample alone (rollouts need no mean or std)."""
        return self.policy(z, task, explore)[0]

    def terminal_value(self, z, task=None):
        """The value of a latent at the horizon: the ensemble mean of V(z), or of Q(z, a ~ pi(z))."""
        a = self.sample_action(z, task) if self.terminal_needs_action else None
        return self.values(z, a, task).mean(0)

    def continuation(self, z, task=None):
        """Probability (..., 1) that the episode goes on after reaching z; only called when `episodic`."""
        raise NotImplementedError(f"{type(self).__name__} is episodic but defines no continuation()")

    def action_mask(self, task):
        """(B, A) of 0/1 for the valid action dims of each row's task (multi-task models), or None."""
        return None

    def step_and_reward_shared(self, z, a, task=None):
        """step() and reward() for N actions per latent: z (B, ...) and a (B, N, A) -> (B*N, ...), (B*N, 1).
        `task` is per latent (B,)."""
        N = a.shape[1]
        z = repeat(z, N)
        task = None if task is None else task.repeat_interleave(N)
        a = a.reshape(-1, a.shape[-1])
        return self.step(z, a, task), self.reward(z, a, task)

    def cast(self, z):
        """A latent from the agent's encoder in the dtype this model plans in (identity by default)."""
        return z

    def prepare(self):
        """Called before each plan: a model that keeps a planning copy refreshes it here. Returns self."""
        return self


def repeat(z, n):
    """Each latent row repeated n times in place: (B, ...) -> (B*n, ...), for a tensor or a TensorDict."""
    return z.repeat_interleave(n, dim=0)


def ensemble_std(values):
    """Standard deviation over the ensemble (dim 0), zero for a single member (never NaN)."""
    return values.std(0) if values.shape[0] > 1 else torch.zeros_like(values[0])
