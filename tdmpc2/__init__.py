"""Dream-MPC's TD-MPC2 core. `tdmpc2.load_agent(path)` builds a ready agent from a checkpoint file."""

__all__ = ["load_agent"]


def __getattr__(name):
    # lazy, so `import tdmpc2.config` stays free of torch and of import cycles
    if name == "load_agent":
        from tdmpc2.checkpoint import load_agent

        return load_agent
    raise AttributeError(f"module 'tdmpc2' has no attribute {name!r}")
