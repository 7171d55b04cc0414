"""TD-MPC2's and BMPC's world model as planners see it: the adapter to dream_mpc's planning protocol.

Everything model-family-specific that planners must not know lives here: two-hot decoding of rewards and values,
Q(z, a) heads (TD-MPC2) or V(z) heads (BMPC) and BMPC's exploration bounds, the multi-task action masks, the
shared-first-step speed-up, and the lower-precision planning copy.

`planning_dtype=bfloat16` plans on a bfloat16 copy of the model (half the bytes per weight, and twice the multiply
rate on CPUs with AVX512-BF16/AMX and on GPUs); learning always stays in float32. The copy is refreshed before a
plan whenever a parameter or buffer of the model changed in place since the last refresh (an optimizer step, a
checkpoint load): PyTorch bumps a tensor's version counter on every in-place write, so comparing the counters is
exact and costs microseconds. Values are decoded in float32 (tdmpc2/math.py), so candidates are ranked at full
precision; the agent returns float32 actions and plan infos.
"""

import copy

import torch

from dream_mpc import world_model as protocol
from tdmpc2 import layers


class TDMPC2Planning(protocol.WorldModel):
    continuation_weighting = "hard"  # the official planner: rewards stop at the first predicted termination

    def __init__(self, model, dtype="float32"):
        self.source, self.dtype = model, getattr(torch, dtype)
        cfg = model.cfg
        self.action_dim, self.episodic, self.multitask = cfg.action_dim, bool(cfg.episodic), bool(cfg.multitask)
        self.value_kind = "V" if model.v_heads else "Q"
        self.explore_bounds = model.v_heads  # BMPC's policy has wider exploration bounds for reanalysis
        self.ensemble_size = cfg.num_q  # Q(z, a) or V(z) heads alike
        if self.dtype == torch.float32:
            self.model = model
            return
        self.model = copy.deepcopy(model).to(self.dtype).eval().requires_grad_(False)
        self._pairs = list(zip(self._tensors(model), self._tensors(self.model)))
        self._versions = None

    @staticmethod
    def _tensors(m):
        return [*m.parameters(), *m.buffers()]

    def prepare(self):
        """Refresh the planning copy from the source if any of its tensors changed since last time."""
        if self.model is not self.source:
            versions = [src._version for src, _ in self._pairs]
            if versions != self._versions:
                with torch.no_grad():
                    for src, dst in self._pairs:
                        dst.copy_(src)
                self._versions = versions
        return self

    def cast(self, z):
        return z.to(self.dtype)

    # ------------------------------------------------------------------ the protocol
    def step(self, z, a, task=None):
        return self.model.next(z, a, task)

    def reward(self, z, a, task=None):
        return self.model.twohot.decode(self.model.reward(z, a, task))

    def values(self, z, a=None, task=None):
        m = self.model
        return m.twohot.decode(m.V(z, task, "all") if m.v_heads else m.Q(z, a, task, "all"))

    def policy(self, z, task=None, explore=False):
        action, info = self.model.pi(z, task, expl=explore and self.explore_bounds)
        return action, info["mean"], info["log_std"].exp()

    def sample_action(self, z, task=None, explore=False):
        return self.model.sample_action(z, task, expl=explore and self.explore_bounds)

    def terminal_value(self, z, task=None, action=None, values=None):
        """TD-MPC2: Q(z, pi(z)) averaged over two random members; BMPC: V(z) likewise (the official MPPI's value).
        Given the planner's terminal action or the ensemble's values (Dream-MPC's objective): the ensemble mean."""
        if action is not None or values is not None:
            return super().terminal_value(z, task, action, values)
        m = self.model
        if m.v_heads:
            return m.V(z, task, "avg")
        return m.Q(z, m.sample_action(z, task), task, "avg")

    def continuation(self, z, task=None):
        return 1 - self.model.termination(z, task)

    def action_mask(self, task):
        return self.model._action_masks[task.long()] if self.multitask else None

    def step_and_reward_shared(self, z, a, task=None):
        """z (B, L), a (B, N, A): each first-layer product on z runs once per latent (-5 % of MPPI's FLOPs at
        model size 1, -9 % at size 5), the same numbers as on z repeated N times."""
        m = self.model
        if m.cfg.multitask:
            z = m.task_emb(z, task)
        nxt = layers.mlp_shared_first_input(m._dynamics, z, a)
        return nxt, m.twohot.decode(layers.mlp_shared_first_input(m._reward, z, a))


def as_float32(action, info):
    """A planner's outputs in float32, whatever it planned in (BMPC stores the infos in its buffer)."""
    return action.float(), {
        k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in info.items()
    }
