"""Dream-MPC: planners for learned world models and what every agent family shares.

- the planning core: the world-model protocol (`world_model.py`), the planners (`planners/`), their options and
  registries, the agent contract (`agent.py`);
- what the agent families share: env suites (`envs/`), training (`training/`: trainer, buffer, logger), evaluation
  and its records (`evaluation/`), checkpoint files (`checkpoint/`), the config and the command line.
The agent families live beside it (`tdmpc2/`: TD-MPC2 and BMPC; `dreamer/`) and register through entry points:
nothing here imports them. `dream_mpc.load_agent(path)` builds a ready agent from a checkpoint file.

CPU threads are the caller's: TD-MPC2's agents run each acting step at the thread count that is fastest at the
moment (dream_mpc/threads.py), so one core taken by another process does not make OpenMP's threads wait for it.
docs/performance.md, "Busy machines", has the measurements.
"""

import os

__all__ = ["bundled_agent", "load_agent", "reproducible_products"]


def reproducible_products():
    """Put MKL in its strict reproducibility mode (`MKL_CBWR=AUTO,STRICT`, unless already set): a matrix product then
    gives the same bits at any thread count (without it, products of 5-11 rows do not), so the acting step's adaptive
    thread count (dream_mpc/threads.py) never changes an action.

    A process-wide setting, so importing dream_mpc never makes it: train.py, evaluate.py and the scripts call this
    first; a library user who wants the guarantee calls it before the process's first matrix product."""
    os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
    return os.environ["MKL_CBWR"]


def bundled_agent(name):
    """The path of an agent shipped in the repository's `agents/` folder, from any working directory:
    `load_agent(bundled_agent("cartpole-swingup-tdmpc2-1M"))`. An unknown name lists the bundled ones."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "agents"
    path = folder / (name if name.endswith(".pt") else f"{name}.pt")
    if not path.is_file():
        from dream_mpc.errors import unknown

        names = sorted(p.stem for p in folder.glob("*.pt"))
        if not names:
            from dream_mpc.errors import UserError

            raise UserError(
                f"no bundled agents in {folder}: they ship with the repository (an editable install, pip install -e .)"
            )
        raise unknown("bundled agent", name, names)
    return path


def __getattr__(name):
    # lazy, so `import dream_mpc.config` stays free of torch and of import cycles
    if name == "load_agent":
        from dream_mpc.checkpoint import load_agent

        return load_agent
    raise AttributeError(f"module 'dream_mpc' has no attribute {name!r}")
