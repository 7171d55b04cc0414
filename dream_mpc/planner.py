"""The planner interface every planner implements, and how a planner is built from its registered name.

A planner reads a world model through the planning protocol (dream_mpc/world_model.py) and never changes it:
`reset()` at an episode's start, then `plan(z, t0, eval_mode, task) -> (action (B, A), info)` for a batch of latents
z. `info` holds at least `value` (B, 1), and `mean`, `std` (B, A) of the first action (what BMPC imitates).
`reanalyze(z, task, horizon)` plans for a batch of stored latents (BMPC's reanalysis) through `plan` with
`self.reanalyzing` set: the policy prior uses the model's exploration bounds, the planner's carried-over state (warm
starts) is left as it was, and `self.reanalysis_horizon` (if given) replaces a sampling planner's horizon.

A planner's options are a dataclass `Options` (dream_mpc/options.py) read from the config block `option_block`
(`dream.lr=0.5`); `option_block = None` reads them from the root (MPPI keeps TD-MPC2's key names).
"""

import dataclasses

import torch

from dream_mpc import options as options_
from dream_mpc.errors import UserError
from dream_mpc.noise import ImaginationNoise
from dream_mpc.registry import planners


@dataclasses.dataclass
class NoOptions:
    pass


class Planner:
    """Base class: holds the model, the config, its options and the discount(s); subclasses implement `plan`."""

    Options = NoOptions
    option_block = None
    #: whether an uncertainty penalty acts on the plans (planners with one override it; records read it)
    penalty_active = False
    #: root config keys the planner reads besides its options (part of its effective configuration)
    root_keys = ()
    #: the name it is registered under (set by `make_planner`)
    name = None
    #: what the planner needs of a world model: "policy" (a prior), "value" (the horizon's value)
    needs = frozenset({"policy", "value"})

    #: {need: "option=value"}: an option setting that removes a need (CEM's terminal value: "terminal_value=false")
    relief = {}

    @classmethod
    def requirements(cls, opt):
        """What the planner needs with these options (default: `needs`)."""
        return set(cls.needs)

    def __init__(self, model, cfg, discount):
        self.model, self.cfg, self.discount = model, cfg, discount
        self.opt = self.read_options(cfg)
        self.nonfinite_count = 0  # plans that produced a non-finite value or action and fell back to the policy mean

    @classmethod
    def declared_options(cls, cfg):
        """The options this planner declares (`Options`), as the config sets them (validated when it was built)."""
        block = cfg if cls.option_block is None else getattr(cfg, cls.option_block)
        return cls.Options(**{f.name: getattr(block, f.name) for f in dataclasses.fields(cls.Options)})

    @classmethod
    def read_options(cls, cfg):
        """The options the planner runs with; a planner built on another's optimiser may map them here."""
        return cls.declared_options(cfg)

    def effective_config(self):
        """Everything of the config that changes this planner's actions: its declared options, the root keys it
        reads (`root_keys`) and the discount it was given. An evaluation record identifies its job by it."""
        out = dataclasses.asdict(self.declared_options(self.cfg))
        out.update({k: _plain(getattr(self.cfg, k)) for k in self.root_keys})
        d = self.discount
        out["discount"] = [round(float(x), 10) for x in d.reshape(-1).tolist()] if torch.is_tensor(d) else float(d)
        return out

    def reset(self):
        """Forget anything carried over from the previous step (called at an episode's start)."""

    def state_dict(self):
        """What the planner carries from one step to the next (tensors or None), for exact resumes."""
        return {}

    def load_state_dict(self, state):
        """Restore what `state_dict` returned."""

    #: True while `reanalyze` plans (planners read it where reanalysis differs from acting)
    reanalyzing = False
    #: the horizon a reanalysis asks for (None: the planner's own)
    reanalysis_horizon = None

    def plan(self, z, t0=False, eval_mode=False, task=None):
        raise NotImplementedError

    def reanalyze(self, z, task=None, horizon=None):
        """BMPC's lazy reanalysis: one plan for a batch of stored latents, each as at an episode's start, with the
        exploration policy prior and without touching what the planner carries between acting steps; returns
        (action, info)."""
        self.reanalyzing, self.reanalysis_horizon = True, horizon
        try:
            return self.plan(z, t0=True, eval_mode=False, task=task)
        finally:
            self.reanalyzing, self.reanalysis_horizon = False, None

    def imagination_noise(self, latents, mode="sample"):
        """The imagination noise of one plan over `latents` start latents (dream_mpc/noise.py): pass it to every
        rollout of the plan, so a stochastic model shows all candidates and all passes the same draws."""
        return ImaginationNoise(mode, latents=latents)

    def discount_for(self, task, rows_per_task=1):
        """The discount as a float (single-task) or a (rows, 1) tensor of per-task discounts (multi-task)."""
        if not torch.is_tensor(self.discount):
            return self.discount
        return self.discount[task.long()].repeat_interleave(rows_per_task).unsqueeze(-1)

    def policy_fallback(self, z, task, action, info, bad):
        """Replace the plans of rows flagged `bad` by the policy mean, and count them."""
        n_bad = int(bad.sum())
        if n_bad:
            self.nonfinite_count += n_bad
            with torch.no_grad():  # the policy's mean action, or no action for a model without a policy
                mean = self.model.policy(z, task)[1] if self.model.has_policy else torch.zeros_like(action)
            rows = bad.unsqueeze(-1)
            action = torch.where(rows, mean, action)
            info["mean"] = torch.where(rows, mean, info["mean"])
            info["value"] = torch.where(rows, torch.zeros_like(info["value"]), info["value"])
        return action, info


def capabilities(model):
    """What a world model offers planners: {"policy", "value"} or a part of it."""
    return {c for c in ("policy", "value") if getattr(model, f"has_{c}")}


def make_planner(name, model, cfg, discount):
    """The planner registered as `name` (an unknown name lists the valid ones; one that needs what the model lacks,
    a policy prior or a value, is refused with the planners that fit)."""
    cls, offers = planners.get(name), capabilities(model)
    missing = cls.requirements(cls.read_options(cfg)) - offers
    if missing:
        fits = []
        for other, c in planners.items():
            lacking = c.requirements(c.read_options(cfg)) - offers
            if not lacking:
                fits.append(other)
            elif lacking <= set(c.relief):  # fits once an option is set
                prefix = f"{c.option_block}." if c.option_block else ""
                fits.append(f"{other} with {' '.join(prefix + c.relief[need] for need in sorted(lacking))}")
        raise UserError(
            f"planner={name} needs a {' and a '.join(sorted(missing))} this agent's world model does not have; "
            f"planners that fit it: {', '.join(fits) or 'none'}"
        )
    planner = cls(model, cfg, discount)
    planner.name = name
    return planner


def _plain(v):
    """A config value as plain JSON data (OmegaConf containers become lists and dicts)."""
    if hasattr(v, "items"):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)) or type(v).__name__ == "ListConfig":
        return [_plain(x) for x in v]
    return v


def option_blocks():
    """{block name: Options class} of every registered planner that has its own config block."""
    return {cls.option_block: cls.Options for _, cls in planners.items() if cls.option_block}


def validate_options(name, cfg_dict, limits=True):
    """Validate the options of planner `name` in a config dict (in place); returns the dict. `limits=False`: each
    value alone, not against each other (a planner that is not in use)."""
    cls = planners.get(name)
    if cls.option_block is None:
        cfg_dict.update(options_.validate(cls.Options, cfg_dict, limits=limits))
    else:
        block = cls.option_block
        cfg_dict[block] = options_.validate(cls.Options, cfg_dict[block], block + ".", limits=limits)
    return cfg_dict
