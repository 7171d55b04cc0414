"""Dream-MPC's TD-MPC2 core. `tdmpc2.load_agent(path)` builds a ready agent from a checkpoint file."""

import os

# MKL's strict reproducibility mode: a matrix product gives the same bits at any thread count (without it, products
# of 5-11 rows do not), so the acting step's adaptive thread count (tdmpc2/threads.py) never changes an action.
# Measured at no cost (docs/performance.md). MKL reads it at its first product; a value already set wins.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__all__ = ["load_agent"]


def __getattr__(name):
    # lazy, so `import tdmpc2.config` stays free of torch and of import cycles
    if name == "load_agent":
        from tdmpc2.checkpoint import load_agent

        return load_agent
    raise AttributeError(f"module 'tdmpc2' has no attribute {name!r}")
