"""The TD-MPC2 family's checkpoints: every official TD-MPC2 and BMPC layout in, the current official layout out
(files are read and written by dream_mpc/checkpoint/).

One concern a module:
  layouts   the official key layouts (current, release, pre-release) and their converters to our keys
  spec      a model's architecture read off its tensors (sizes, agent, multi-task set)
  weights   loading converted weights into a built model, strictly (and pre-release input transforms)
  tasks     what loading needs to know about tasks (names, dims, episode lengths), from `dream_mpc.envs`
  configs   the config of a loaded file: its own config, its tensors, then the caller's overrides
  official  the family's `from_checkpoint`: a ready agent from a file of any layout
  metadata  the OmegaConf containers of official multi-task files: allowlisted for safe reads, read as plain data
"""

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
    "convert",
    "detect_layout",
    "env_dims",
    "infer_spec",
    "internal_state_dict",
    "load_converted",
    "load_weights",
    "official_state_dict",
    "set_input_transform",
    "unwrap",
]
