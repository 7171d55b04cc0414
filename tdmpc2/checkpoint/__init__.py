"""Checkpoints: every official TD-MPC2 layout in, the current official layout out, read safely, written atomically.

One concern a module:
  files     atomic writes (a killed run never leaves a truncated file) and safe reads (weights_only=True)
  layouts   the official key layouts (current, release, pre-release) and their converters to our keys
  spec      a model's architecture read off its tensors (sizes, agent, multi-task set)
  weights   loading converted weights into a built model, strictly (and pre-release input transforms)
  tasks     what loading needs to know about tasks (names, dims, episode lengths), from `tdmpc2.envs`
  configs   the config of a loaded file: its own config, its tensors, then the caller's overrides
  agents    `save` an agent, `load_agent` a ready one from a file alone
"""

from tdmpc2.checkpoint.agents import load_agent, save
from tdmpc2.checkpoint.files import TRUST_OPTION, atomic_save, read
from tdmpc2.checkpoint.layouts import (
    ENSEMBLE_PREFIXES,
    LAYOUTS,
    ONLINE,
    TARGET,
    convert,
    detect_layout,
    internal_state_dict,
    official_state_dict,
    unwrap,
)
from tdmpc2.checkpoint.spec import infer_spec
from tdmpc2.checkpoint.tasks import env_dims
from tdmpc2.checkpoint.weights import INPUT_TRANSFORMS, load_converted, load_weights, set_input_transform

__all__ = [
    "ENSEMBLE_PREFIXES",
    "INPUT_TRANSFORMS",
    "LAYOUTS",
    "ONLINE",
    "TARGET",
    "TRUST_OPTION",
    "atomic_save",
    "convert",
    "detect_layout",
    "env_dims",
    "infer_spec",
    "internal_state_dict",
    "load_agent",
    "load_converted",
    "load_weights",
    "official_state_dict",
    "read",
    "save",
    "set_input_transform",
    "unwrap",
]
