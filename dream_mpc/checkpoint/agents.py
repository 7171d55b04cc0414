"""An agent to and from a file, for every agent family: `save` writes one, `load_agent` reads the agent's name from
the file's config (a file without one is claimed by the agent that `recognizes` it) and lets the registered agent
build itself from it (`Agent.from_checkpoint`), and `config_of_own_file` rebuilds the config of a file this
project's trainer wrote.
"""

from dream_mpc.checkpoint.configs import hydra_value, override_key, saved_overrides
from dream_mpc.checkpoint.files import atomic_save, read
from dream_mpc.errors import UserError, warn
from dream_mpc.runtime import resolve_device


def save(path, agent, **extra):
    """Write the agent: its weights (`weights_state()`, e.g. TD-MPC2's official layout) under "model"; its training
    state (optimizers, running scales), config, `file_extras()` and any `extra` (step, RNG states ...) under other keys.
    Everything is tensors and plain data, so the file reads back with weights_only=True."""
    obj = {"model": agent.weights_state(), "agent": agent.state_dict(), "config": agent.cfg.to_dict()}
    obj.update(agent.file_extras())
    obj.update(extra)
    atomic_save(obj, path)


def load_agent(path, task=None, device="auto", overrides=(), prerelease_input="symlog", env_dims=None, trusted=False):
    """A ready agent from a checkpoint file alone: ours (its config names the agent) or another code base's that a
    registered agent recognizes (`Agent.recognizes`: the TD-MPC2 family reads every official TD-MPC2 and BMPC layout).

    The architecture comes from the tensors; `task` (default: the file's config, its task set, or its file name)
    is checked against the file: a DMControl task's true dims (or `env_dims=(obs_dim, action_dim)`) must match.
    `overrides` are config overrides (e.g. ["planner=dream"]); `prerelease_input` is the input transform of
    pre-release files ('symlog' or 'identity'); `trusted` reads the file with weights_only=False (only for files
    from a trusted source: unpickling can run code). `agent.saved_config` is the file's own config (None for official
    files); the TD-MPC2 family's `agent.checkpoint_info` says what was loaded.
    """
    obj = read(path, device=resolve_device(device), trusted=trusted)
    saved = obj.get("config") if isinstance(obj, dict) and isinstance(obj.get("config"), dict) else None
    from dream_mpc.registry import agents

    name = (saved or {}).get("agent") or _recognizing_agent(obj, path, agents)
    if name not in agents:
        raise UserError(
            f"{path} was written by agent={name}, which is not registered here; install or name its "
            f"plug-in (DREAM_MPC_PLUGINS=<module>). Registered agents: {', '.join(agents.names())}"
        )
    agent = agents.get(name).from_checkpoint(
        obj, path, task=task, device=device, overrides=overrides, prerelease_input=prerelease_input, env_dims=env_dims
    )
    agent.saved_config = saved  # the config the file was trained with (None for official files): its seed etc.
    return agent


def _recognizing_agent(obj, path, agents):
    """The registered agent that reads a file without our config (another code base's layout)."""
    for name, cls in agents.items():
        if cls.recognizes(obj):
            return name
    raise UserError(
        f"{path} is not a checkpoint of any registered agent: it holds no config of this project's trainer, and none "
        f"of the registered agents ({', '.join(agents.names())}) recognizes its layout"
    )


def config_of_own_file(saved, path, task=None, device="auto", overrides=()):
    """The config of a file this project wrote (an agent family whose files are only ours): the file's own
    config, then the task and device asked for, then the caller's overrides; the env dims of the file's task (or of
    `task`, which must have the same dims: a UserError naming both otherwise)."""
    from dream_mpc import config

    if not isinstance(saved, dict) or "obs_shape" not in saved:
        raise UserError(f"{path} holds no config of its run: it was not written by this project's trainer")
    overrides = list(overrides)
    user_keys = {override_key(o) for o in overrides}
    asked = [o.split("=", 1)[1].strip("'\"") for o in overrides if override_key(o) == "agent" and "=" in o]
    if asked and asked[-1] != saved["agent"]:  # the file decides which agent it is; records name that one
        raise UserError(
            f"{path} is a checkpoint of agent={saved['agent']}; it cannot be read as agent={asked[-1]}: leave agent= "
            "out (evaluate.py takes the agent from the file)"
        )
    ours = saved_overrides(saved)
    ours.update(agent=saved["agent"], obs=saved["obs"], task=task or saved["task"], device=device)
    cfg = config.load([f"{k}={hydra_value(v)}" for k, v in ours.items() if k not in user_keys] + overrides)
    obs_shape = tuple(saved["obs_shape"][saved["obs"]])
    if cfg.obs != saved["obs"]:
        raise UserError(f"{path} was trained on obs={saved['obs']}; it cannot run with obs={cfg.obs}")
    episode_length = saved["episode_length"]
    if cfg.task != saved["task"]:
        from dream_mpc.envs import task_dims

        dims = task_dims(cfg.task)
        if dims is not None:  # pixels are the suite's frames: the shapes differ by the action dim only
            shape, action_dim, episode_length = (tuple(dims[0]) if cfg.obs == "state" else obs_shape), *dims[1:]
            if (shape, int(action_dim)) != (obs_shape, int(saved["action_dim"])):
                raise UserError(
                    f"{path} was trained on {saved['task']} (observations {obs_shape}, {saved['action_dim']} "
                    f"actions); task={cfg.task} has observations {shape} and {action_dim} actions"
                )
        warn(
            f"{path} was trained on {saved['task']}; it runs on task={cfg.task} because the observation and action "
            "shapes match, not because it learned that task"
        )
    config.set_env_dims(cfg, obs_shape, saved["action_dim"], episode_length)
    if cfg.obs == "rgb":  # the frames the file's model reads (a family may have stacked another number then)
        cfg.frame_stack = obs_shape[0] // 3
    return cfg
