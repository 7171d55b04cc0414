"""Dream-MPC's TD-MPC2 core. `tdmpc2.load_agent(path)` builds a ready agent from a checkpoint file."""

import os

__all__ = ["load_agent", "reproducible_products"]


def reproducible_products():
    """Put MKL in its strict reproducibility mode (`MKL_CBWR=AUTO,STRICT`, unless already set): a matrix product then
    gives the same bits at any thread count (without it, products of 5-11 rows do not), so the acting step's adaptive
    thread count (tdmpc2/threads.py) never changes an action; measured at no cost (docs/performance.md).

    A process-wide setting, so importing tdmpc2 never makes it: train.py, evaluate.py and the scripts call this
    first; a library user who wants the guarantee calls it before the process's first matrix product."""
    os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
    return os.environ["MKL_CBWR"]


def __getattr__(name):
    # lazy, so `import tdmpc2.config` stays free of torch and of import cycles
    if name == "load_agent":
        from tdmpc2.checkpoint import load_agent

        return load_agent
    raise AttributeError(f"module 'tdmpc2' has no attribute {name!r}")
