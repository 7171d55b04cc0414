"""Checkpoint files for every agent family: written atomically, read safely, and turned back into a ready agent.

  files     atomic writes (a killed run never leaves a truncated file) and safe reads (weights_only=True)
  configs   a file's own config as overrides (what differs from the defaults)
  agents    `save` an agent, `load_agent` a ready one from a file alone (the registered agent builds itself)
The official TD-MPC2 and BMPC layouts are the TD-MPC2 family's (tdmpc2/checkpoint/).
"""

from dream_mpc.checkpoint.agents import config_of_own_file, load_agent, save
from dream_mpc.checkpoint.files import EXAMPLE, TRUST_OPTION, atomic_save, read

__all__ = ["EXAMPLE", "TRUST_OPTION", "atomic_save", "config_of_own_file", "load_agent", "read", "save"]
