"""The world model as planners see it. Planners call nothing else (no model family, no private attribute).

A latent state is a tensor (B, L) or a `tensordict.TensorDict` with batch size (B,) (e.g. a recurrent (h, s)
state); planners only index, stack, and `repeat_interleave` latents along their first dimension (see `repeat`).
Values and rewards are decoded scalars (..., 1). `task` is None (single-task) or a LongTensor of task ids per row.

Implement the abstract methods (`step`, `reward`) and, unless the model declares it has none, `values` and `policy`;
the others have defaults that are correct for any model and may be overridden for speed (as TD-MPC2's adapter
does for `step_and_reward_shared`).

The class attributes declare how planners read the model:
- `stochastic`: a stochastic model's `step(z, a, task, noise=...)` samples its next latent with the plan's noise
  (dream_mpc/noise.py: mean or sampled, the same draws for every candidate and every pass of one plan). Helpers
  call a deterministic model's `step(z, a, task)` without it.
- `reward_timing`: "transition", the reward of step t reads (z_t, a_t) (TD-MPC2, BMPC); "next_state", it reads
  z_{t+1} (Dreamer's r(s_{t+1})): helpers call `reward(z_{t+1}, a_t)`, and the model may ignore the action.
- `continuation_weighting` (episodic models): "soft", the reward of step t is weighted by
  gamma^t * c_1 * ... * c_t with c_k = `continuation(z_k)`, differentiable, so a gradient planner feels the risk of
  ending; "hard", the official TD-MPC2 planner's rule: weight 0 from the first c_k < 0.5 on (TD-MPC2's adapter
  keeps it, so its plans stay equal to the official code).
- `ensemble_size`: the number of value members when known (None: seen at the first plan); a single member has no
  spread, so planners report their uncertainty penalty as off (`penalty_active`).
- `has_policy`, `has_value`: whether `policy` and `values` mean anything (a PETS-like model has neither); a planner
  that needs what a model lacks (`Planner.needs`) is refused by `make_planner` with the planners that fit.
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
    #: True: step() takes `noise=` (a dream_mpc.noise.StepNoise) and samples with it
    stochastic: bool = False
    #: "transition": reward(z_t, a_t); "next_state": reward(z_{t+1}, a_t)
    reward_timing: str = "transition"
    #: "soft": returns weighted by gamma^t * prod c_k (differentiable); "hard": cut at the first c_k < 0.5
    continuation_weighting: str = "soft"
    #: members of the value ensemble, when known without a latent (None: unknown until the first plan)
    ensemble_size: int = None
    #: capabilities: a policy prior (`policy`), a value (`values`, the horizon's `terminal_value`)
    has_policy: bool = True
    has_value: bool = True

    @property
    def terminal_needs_action(self):
        return self.value_kind == "Q"

    # ------------------------------------------------------------------ required
    @abstractmethod
    def step(self, z, a, task=None):
        """One latent step: z_{t+1} from (z_t, a_t). A `stochastic` model also takes `noise=None` (a StepNoise
        from the planner; None: the model samples as it does in training)."""

    @abstractmethod
    def reward(self, z, a, task=None):
        """The decoded predicted reward r(z, a), (..., 1); z is z_{t+1} for `reward_timing = "next_state"`."""

    def values(self, z, a=None, task=None):
        """Decoded values of every ensemble member, (M, ..., 1): Q_m(z, a), or V_m(z) (a is ignored). Required
        unless `has_value = False`."""
        raise NotImplementedError(f"{type(self).__name__} has no value (has_value = False): no planner calls values")

    def policy(self, z, task=None, explore=False):
        """The policy prior: (sampled action, mean, std), each (..., A). `explore`: the wider exploration
        bounds of models that have them (BMPC's reanalysis); others ignore it. Required unless `has_policy = False`."""
        raise NotImplementedError(f"{type(self).__name__} has no policy (has_policy = False): no planner calls policy")

    # ------------------------------------------------------------------ optional, with general defaults
    def sample_action(self, z, task=None, explore=False):
        """A policy sample alone (rollouts need no mean or std)."""
        return self.policy(z, task, explore)[0]

    def terminal_value(self, z, task=None, action=None, values=None):
        """The value of a latent at the horizon (..., 1), what every planner adds after its last step. A Q-model
        reads `action` (a planner that optimises a_H passes it), else a policy sample. `values`: the ensemble's
        values at (z, action) when the caller has them already (Dream-MPC evaluates the ensemble once for its
        penalty). Default: the ensemble mean. Override it to value the horizon differently."""
        if values is None:
            if action is None and self.terminal_needs_action:
                action = self.sample_action(z, task)
            values = self.values(z, action, task)
        return values.mean(0)

    def continuation(self, z, task=None):
        """Probability (..., 1) that the episode goes on after reaching z; only called when `episodic`."""
        raise NotImplementedError(f"{type(self).__name__} is episodic but defines no continuation()")

    def action_mask(self, task):
        """(B, A) of 0/1 for the valid action dims of each row's task (multi-task models), or None."""
        return None

    def step_and_reward_shared(self, z, a, task=None, noise=None):
        """step() and reward() for N actions per latent: z (B, ...) and a (B, N, A) -> (B*N, ...), (B*N, 1), the
        reward read as `reward_timing` says. `task` is per latent (B,); `noise`: the StepNoise of this step."""
        N = a.shape[1]
        z = repeat(z, N)
        task = None if task is None else task.repeat_interleave(N)
        a = a.reshape(-1, a.shape[-1])
        nxt = imagine_step(self, z, a, task, noise)
        return nxt, self.reward(nxt if self.reward_timing == "next_state" else z, a, task)

    def cast(self, z):
        """A latent from the agent's encoder in the dtype this model plans in (identity by default)."""
        return z

    def prepare(self):
        """Called before each plan: a model that keeps a planning copy refreshes it here. Returns self."""
        return self


def imagine_step(model, z, a, task=None, noise=None):
    """model.step with the plan's noise (a StepNoise) for a stochastic model; a deterministic one never sees it."""
    if noise is not None and model.stochastic:
        return model.step(z, a, task, noise=noise)
    return model.step(z, a, task)


def repeat(z, n):
    """Each latent row repeated n times in place: (B, ...) -> (B*n, ...), for a tensor or a TensorDict."""
    return z.repeat_interleave(n, dim=0)


def ensemble_std(values):
    """Standard deviation over the ensemble (dim 0), zero for a single member (never NaN)."""
    return values.std(0) if values.shape[0] > 1 else torch.zeros_like(values[0])
