"""The Dream-MPC planning objective (paper eq. 5 and 6), for any world model of the planning protocol.

    J = sum_{h<H} w_h R_h - lambda sum_{h<=H} u_h + w_H V_term(z_H, a_H)         (objective="return")
    J = V_lambda(z_0) - lambda sum_{h<=H} u_h                                      (objective="lambda")
    u_h = |mean_m q_m(z_h, a_h)| * std_m q_m(z_h, a_h)        (m over the value ensemble)

w_h = gamma^h (times the continuation of episodic models, dream_mpc/rollout.py), R_h the reward of step h as the
model's `reward_timing` reads it. V_lambda is the lambda-return of the paper's eq. 12-14 (Dreamer's value target):
`rollout.lambda_return` over the rewards and the values of z_1..z_H; with lambda = 1 it is the "return" objective.
It is meant for V-models (values V(z_h)); on a Q-model the value of z_h is Q(z_h, a_h), the candidate's own action.

The value ensemble is evaluated once, batched over all H+1 steps and all candidates, and gives both the
uncertainties and, through the model's `terminal_value(..., values=...)`, the values of the horizon (and of the
intermediate latents for the lambda-return): a model that values its latents differently overrides that method.
For a V-model (BMPC) q_m = V_m(z_h). A single-member ensemble has no spread: u = 0, and the penalty is reported
off (`penalty_active`, with one warning).

Candidates are batch-major (R, S, A), as the optimiser holds them. A stochastic model imagines with `noise`, the
plan's dream_mpc.noise.ImaginationNoise: pass the same one to every evaluation of a plan (gradient passes and the
final scoring), so that all of them see the same draws.
"""

import warnings
from dataclasses import dataclass

from dream_mpc.rollout import continuations, lambda_return, latent_rollout, predicted_return, step_rewards
from dream_mpc.world_model import ensemble_std

OBJECTIVES = ("return", "lambda")


@dataclass
class Objective:
    horizon: int
    uncertainty_coef: float = 0.01
    uncertainty_sign: str = "abs"  # abs: |mean| x std (the paper's "magnitude"); signed: mean x std (official code)
    uncertainty_grad: bool = True  # official code: False (the penalty only changes the pick)
    kind: str = "return"  # "lambda": the lambda-return of eq. 12-14
    td_lambda: float = 0.95  # lambda of the lambda-return (Dreamer: 0.95)
    noise: object = None  # the current plan's ImaginationNoise (None: a stochastic model samples on its own)

    def __post_init__(self):
        if self.uncertainty_sign not in ("abs", "signed"):
            raise ValueError(f"uncertainty_sign must be 'abs' or 'signed', got {self.uncertainty_sign!r}")
        if self.kind not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.kind!r}")
        self.ensemble_size = None  # members of the value ensemble, seen at the first evaluation

    @property
    def penalty_active(self):
        """Whether the uncertainty penalty can act: a positive coefficient and more than one value member (None:
        not known before the first evaluation of a model that does not declare `ensemble_size`)."""
        if not self.uncertainty_coef:
            return False
        return None if self.ensemble_size is None else self.ensemble_size > 1

    def note_ensemble_size(self, size):
        """Record the value ensemble's size; warn once when a single member leaves the penalty without effect."""
        if size is None or self.ensemble_size == size:
            return
        self.ensemble_size = size
        if size == 1 and self.uncertainty_coef:
            warnings.warn(
                f"the world model has a single value member: uncertainty_coef={self.uncertainty_coef:g} has no "
                "effect (no ensemble spread), the uncertainty penalty is off",
                stacklevel=3,
            )

    def uncertainty(self, values):
        """values (M, ..., 1) of the M ensemble members -> u (..., 1) = mean x std (unbiased std)."""
        mean = values.mean(0)
        u = (mean.abs() if self.uncertainty_sign == "abs" else mean) * ensemble_std(values)
        return u if self.uncertainty_grad else u.detach()

    def __call__(self, model, z, actions, task=None, discount=0.99, noise=None):
        """z (R, ...), actions (R, S, A) with S = H+1 (Q-models: a_H is the terminal action) or H -> J (R, 1)."""
        H = self.horizon
        noise = self.noise if noise is None else noise
        actions = actions.to(model.dtype)  # a lower-precision planning model (planning_dtype) gets its own dtype
        steps = actions[:, :H].transpose(0, 1)  # time-major (H, R, A)
        zs = latent_rollout(model, z, steps, task, noise)  # (H+1, R, L)
        acts = actions[:, : H + 1].transpose(0, 1) if actions.shape[1] > H else None
        values = model.values(zs, acts, task)  # (M, H+1, R, 1), one batched call
        self.note_ensemble_size(values.shape[0])
        if self.kind == "lambda":  # values of z_1..z_H through the model's terminal_value, from the one ensemble call
            v = model.terminal_value(zs[1:], task, action=None if acts is None else acts[1:], values=values[:, 1:])
            rewards = step_rewards(model, zs, steps, task)
            J = lambda_return(rewards, v, discount, self.td_lambda, continuations(model, zs, task))
        else:
            ret, disc = predicted_return(model, zs, steps, task, discount)
            terminal = model.terminal_value(zs[H], task, action=None if acts is None else acts[H], values=values[:, H])
            J = ret + disc * terminal
        if self.uncertainty_coef and values.shape[0] > 1:
            J = J - self.uncertainty_coef * self.uncertainty(values).sum(0)
        return J
