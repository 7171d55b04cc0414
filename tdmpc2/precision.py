"""Planning precision: planners may read a lower-precision copy of the world model.

`planning_dtype=bfloat16` runs every planner on a bfloat16 copy of the model (half the bytes per weight, and
twice the multiply rate on CPUs with AVX512-BF16/AMX and on GPUs). Learning always stays in float32. The copy is
refreshed before a plan whenever a parameter or buffer of the model changed in place since the last refresh (an
optimizer step, a checkpoint load): PyTorch bumps a tensor's version counter on every in-place write, so
comparing the counters is exact and costs microseconds. Predicted values are decoded in float32 (tdmpc2/math.py),
so elites and candidates are ranked at full precision; the agent returns float32 actions and plan infos.
"""
import copy

import torch


class PlanningModel:
    """The world model as planners see it: the model itself (float32), or a copy in `dtype` kept in sync.
    `dtype` is a name config.py has validated (config.PLANNING_DTYPES)."""

    def __init__(self, model, dtype="float32"):
        self.source, self.dtype = model, getattr(torch, dtype)
        if self.dtype == torch.float32:
            self.model = model
            return
        self.model = copy.deepcopy(model).to(self.dtype).eval().requires_grad_(False)
        self._pairs = list(zip(self._tensors(model), self._tensors(self.model)))
        self._versions = None

    @staticmethod
    def _tensors(m):
        return [*m.parameters(), *m.buffers()]

    def get(self):
        """The model to plan with, refreshed from the source if any of its tensors changed since last time."""
        if self.model is self.source:
            return self.model
        versions = [src._version for src, _ in self._pairs]
        if versions != self._versions:
            with torch.no_grad():
                for src, dst in self._pairs:
                    dst.copy_(src)
            self._versions = versions
        return self.model

    def cast(self, z):
        """A float32 latent from the encoder -> the planning dtype."""
        return z.to(self.dtype)


def as_float32(action, info):
    """A planner's outputs in float32, whatever it planned in (BMPC stores the infos in its buffer)."""
    return action.float(), {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v
                            for k, v in info.items()}
