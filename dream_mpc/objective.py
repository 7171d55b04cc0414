"""The Dream-MPC planning objective (paper eq. 5 and 6), for any world model of the planning protocol.

    J = sum_{h<H} (gamma^h R(z_h, a_h) - lambda u_h) + gamma^H V_term(z_H, a_H) - lambda u_H,
    u_h = |mean_m q_m(z_h, a_h)| * std_m q_m(z_h, a_h)        (m over the value ensemble)

The value ensemble is evaluated once, batched over all H+1 steps and all candidates, and gives both the
uncertainties and the terminal value (the ensemble mean). For a V-model (BMPC) q_m = V_m(z_h). A single-member
ensemble has no spread: u = 0.
"""

from dataclasses import dataclass

from dream_mpc.rollout import latent_rollout, predicted_return
from dream_mpc.world_model import ensemble_std


@dataclass
class Objective:
    horizon: int
    uncertainty_coef: float = 0.01
    uncertainty_sign: str = "abs"  # abs: |mean| x std (the paper's "magnitude"); signed: mean x std (official code)
    uncertainty_grad: bool = True  # official code: False (the penalty only changes the pick)

    def __post_init__(self):
        if self.uncertainty_sign not in ("abs", "signed"):
            raise ValueError(f"uncertainty_sign must be 'abs' or 'signed', got {self.uncertainty_sign!r}")

    def uncertainty(self, values):
        """values (M, ..., 1) of the M ensemble members -> u (..., 1) = mean x std (unbiased std)."""
        mean = values.mean(0)
        u = (mean.abs() if self.uncertainty_sign == "abs" else mean) * ensemble_std(values)
        return u if self.uncertainty_grad else u.detach()

    def __call__(self, model, z, actions, task=None, discount=0.99):
        """z (R, ...), actions (R, S, A) with S = H+1 (Q-models: a_H is the terminal action) or H -> J (R, 1)."""
        H = self.horizon
        actions = actions.to(model.dtype)  # a lower-precision planning model (planning_dtype) gets its own dtype
        steps = actions[:, :H].transpose(0, 1)  # time-major (H, R, A)
        zs = latent_rollout(model, z, steps, task)  # (H+1, R, L)
        ret, disc = predicted_return(model, zs, steps, task, discount)
        acts = actions[:, : H + 1].transpose(0, 1) if actions.shape[1] > H else None
        values = model.values(zs, acts, task)  # (M, H+1, R, 1), one batched call
        J = ret + disc * values[:, H].mean(0)
        if self.uncertainty_coef:
            J = J - self.uncertainty_coef * self.uncertainty(values).sum(0)
        return J
