"""Imagination noise of one plan: the planner decides whether a stochastic model's steps are sampled or take the
mean, and every pass over the plan's candidates sees the same draws.

A stochastic world model (`stochastic = True`, e.g. an RSSM with a Gaussian state) receives `noise=` in `step`, a
`StepNoise` for that step of the rollout, and writes its sample as `mean + std * noise.normal_like(mean)`. The
planner makes one `ImaginationNoise` per plan; the rollout helpers hand it to the model step by step. Draws are
made on first use and kept for the rest of the plan, so that:
- the gradient passes, the final scoring and the policy's candidate rollout of one plan see the same noise
  (Dream-MPC ranks candidates under the noise its gradient saw);
- `mode="independent"` (the paper's eq. 16, the default of the planners that take the option): every row (candidate)
  has its own draws, kept across the passes over the same rows;
- `mode="sample"`: every candidate of one start latent sees the same noise (common random numbers: candidates
  differ by their actions only), since draws are made per start latent and repeated over its rows (rows grouped by
  latent, as `repeat_interleave` groups them).
`mode="mean"` gives zeros: the model's mean prediction. Deterministic models never see the noise.

Draws come from `generator` when one is given (a `torch.Generator` the planner owns), else from torch's global
generator, which the trainer seeds and saves, so a resumed run draws the same imagination noise.
"""

import torch

from dream_mpc.options import option

MODES = ("independent", "sample", "mean")


def imagination_option(default="independent"):
    """The `imagination` option of a planner that rolls out many candidates through a stochastic model."""
    return option(
        default,
        "a stochastic model imagines with independent draws per candidate (eq. 16), one draw shared by the candidates "
        "of a start latent (sample: common random numbers), or its mean",
        choices=MODES,
    )


class ImaginationNoise:
    """The noise of one plan: `latents` start latents (B); rows of every step are grouped by latent."""

    def __init__(self, mode="sample", latents=None, generator=None):
        if mode not in MODES:
            raise ValueError(f"imagination noise mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode, self.latents, self.generator = mode, latents, generator
        self._draws = {}  # (step, name, feature shape) -> (B, *feature) float32 standard normals

    def at(self, t):
        """The noise of rollout step t (what `step(z, a, task, noise=...)` receives)."""
        return StepNoise(self, t)

    def normal(self, t, shape, device=None, dtype=torch.float32, name=""):
        """Standard normals of `shape` (rows first) for step t: zeros in mean mode, else the plan's draws."""
        shape = tuple(shape)
        if self.mode == "mean":
            return torch.zeros(shape, device=device, dtype=dtype)
        rows, feature = shape[0], shape[1:]
        latents = rows if self.mode == "independent" else self.latents or rows
        if rows % latents:
            raise ValueError(f"{rows} rows are not grouped by the plan's {latents} start latents")
        key = (t, name, feature, latents)
        eps = self._draws.get(key)
        if eps is None:
            where = self.generator.device if self.generator is not None else device
            eps = torch.randn((latents, *feature), generator=self.generator, device=where)
            self._draws[key] = eps
        return eps.to(device=device, dtype=dtype).repeat_interleave(rows // latents, 0)


class StepNoise:
    """The plan's noise at one rollout step, as a stochastic model's `step` reads it."""

    def __init__(self, noise, t):
        self.noise, self.t = noise, t

    @property
    def mean(self):
        """True: the planner asks for the mean prediction (a model may skip its sampling)."""
        return self.noise.mode == "mean"

    def normal_like(self, x, name=""):
        """Standard normals shaped like x (rows first); `name` tells apart several noise sources of one step."""
        return self.noise.normal(self.t, x.shape, x.device, x.dtype, name)
