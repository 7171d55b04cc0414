"""An agent to and from a file: `save` writes one (weights in the official layout, our extras beside them),
`load_agent` builds a ready agent from a file alone (the architecture from its tensors, the task and config from
the file, its name or the caller) and checks that it fits the task before anything runs.
"""

import warnings

from tdmpc2.checkpoint import tasks
from tdmpc2.checkpoint.configs import _hydra_value, _saved_overrides, build_config, override_key
from tdmpc2.checkpoint.files import atomic_save, read
from tdmpc2.checkpoint.layouts import convert, detect_layout, unwrap
from tdmpc2.checkpoint.spec import infer_spec, match_model_size
from tdmpc2.checkpoint.weights import INPUT_TRANSFORMS, input_transform_of, load_converted, set_input_transform
from tdmpc2.errors import UserError, unknown
from tdmpc2.runtime import resolve_device


def save(path, agent, **extra):
    """Write the agent: weights in the official layout under "model"; optimizers, running scale, config, the
    input transform of a converted pre-release model and any `extra` (step, RNG states ...) under other keys.
    Everything is tensors and plain data, so the file reads back with weights_only=True."""
    obj = {"model": agent.weights_state(), "agent": agent.state_dict(), "config": agent.cfg.to_dict()}
    transform = getattr(getattr(agent, "model", None), "input_transform", None)
    if transform is not None:  # the official layout cannot say it, so a reload would silently lose it
        obj["input_transform"] = transform
    obj.update(extra)
    atomic_save(obj, path)


def _q_model_as_tdmpc2(sd, spec, overrides, path):
    """A file with Q(z, a) heads is a TD-MPC2 model, also when agent=bmpc is asked for or when it carries BMPC's
    exploration log-std buffers. Returns (sd, spec, overrides) to build it with.

    The official Dream-MPC code runs TD-MPC2 checkpoints with its TD-MPC2 variants (algo=tdmpc2 or
    dream_mpc_tdmpc2: Q heads, TD-MPC2 losses and planning), after inserting the `expl_log_std_*` buffers that
    its shared world model always registers but only BMPC uses (`bmpc_tdmpc2_model_conversion`). Here the TD-MPC2
    world model has no such buffers and the BMPC one has V(z) heads that a Q-headed file cannot fill, so the
    faithful equivalent is our TD-MPC2 agent with whatever planner= is asked for (e.g. planner=dream):
    - `agent=bmpc` asked for a Q-headed file: the override is dropped, with a warning;
    - a Q-headed file with `expl_log_std_*` buffers (written by the BMPC/Dream-MPC code for a TD-MPC2 run): the
      unused buffers are dropped (the inverse of the official conversion), with a warning.
    """
    overrides = list(overrides)
    if spec["value_heads"] != "Q":
        return sd, spec, overrides
    asked = [
        o
        for o in overrides
        if override_key(o) == "agent" and "=" in o and o.split("=", 1)[1].strip().strip("'\"") == "bmpc"
    ]
    notes = []
    if asked:
        overrides = [o for o in overrides if o not in asked]
        notes.append(
            "agent=bmpc is ignored: the file has Q(z, a) heads, and BMPC's world model has V(z) heads; as in "
            "the official Dream-MPC code (algo=dream_mpc_tdmpc2), it runs as the TD-MPC2 agent with the "
            "planner asked for"
        )
    if spec["agent"] == "bmpc":
        sd = {k: v for k, v in sd.items() if not k.startswith("expl_log_std_")}
        spec = {**spec, "agent": "tdmpc2"}
        spec["model_size"] = match_model_size(spec)
        notes.append(
            "its expl_log_std_* buffers (used by BMPC only) are dropped and it loads as a TD-MPC2 model; "
            "policy samples follow TD-MPC2's tanh-squashed head (the policy mean is the same either way)"
        )
    if notes:
        warnings.warn(f"{path}: " + "; ".join(notes), stacklevel=3)
    return sd, spec, overrides


def _check_agent(cfg, spec, path):
    """The agent the config asks for must have the value heads the file has."""
    if cfg.agent != spec["agent"]:
        heads = {"Q": "Q(z, a)", "V": "V(z)"}[spec["value_heads"]]
        raise UserError(
            f"{path} holds a {spec['agent']} model with {heads} value heads; loading it as "
            f"agent={cfg.agent} is not supported yet. Drop the agent= override"
        )


def _load_training_state(agent, obj):
    """Optimizers and running scale from our own files, so training can go on; weights are loaded already."""
    state = obj.get("agent") if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not hasattr(agent, "load_state_dict"):
        return
    try:
        agent.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError) as err:
        warnings.warn(f"weights loaded, but not the optimizer state ({type(err).__name__}: {err})", stacklevel=3)


def load_agent(path, task=None, device="auto", overrides=(), prerelease_input="symlog", env_dims=None, trusted=False):
    """A ready agent from a checkpoint file alone (any official layout, or ours).

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

    name = saved.get("agent", "tdmpc2") if saved else "tdmpc2"  # official files: the TD-MPC2 family
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


def config_of_own_file(saved, path, task=None, device="auto", overrides=()):
    """The config of a file this project wrote (an agent family whose files are only ours): the file's own
    config, then the task and device asked for, then the caller's overrides; the env dims of the file's task (or of
    `task`, which must have the same dims: a UserError naming both otherwise)."""
    from tdmpc2 import config

    if not isinstance(saved, dict) or "obs_shape" not in saved:
        raise UserError(f"{path} holds no config of its run: it was not written by this project's trainer")
    overrides = list(overrides)
    user_keys = {override_key(o) for o in overrides}
    ours = _saved_overrides(saved)
    ours.update(agent=saved["agent"], obs=saved["obs"], task=task or saved["task"], device=device)
    cfg = config.load([f"{k}={_hydra_value(v)}" for k, v in ours.items() if k not in user_keys] + overrides)
    obs_shape = tuple(saved["obs_shape"][saved["obs"]])
    if cfg.obs != saved["obs"]:
        raise UserError(f"{path} was trained on obs={saved['obs']}; it cannot run with obs={cfg.obs}")
    episode_length = saved["episode_length"]
    if cfg.task != saved["task"]:
        from tdmpc2.envs import task_dims

        dims = task_dims(cfg.task)
        if dims is not None:  # pixels are the suite's frames: the shapes differ by the action dim only
            shape, action_dim, episode_length = (tuple(dims[0]) if cfg.obs == "state" else obs_shape), *dims[1:]
            if (shape, int(action_dim)) != (obs_shape, int(saved["action_dim"])):
                raise UserError(
                    f"{path} was trained on {saved['task']} (observations {obs_shape}, {saved['action_dim']} "
                    f"actions); task={cfg.task} has observations {shape} and {action_dim} actions"
                )
    config.set_env_dims(cfg, obs_shape, saved["action_dim"], episode_length)
    return cfg


def load_official(obj, path, task=None, device="auto", overrides=(), prerelease_input="symlog", env_dims=None):
    """The TD-MPC2 family's `from_checkpoint`: a file in any official layout, or ours (see load_agent)."""
    if prerelease_input not in INPUT_TRANSFORMS:
        raise unknown("prerelease_input", prerelease_input, list(INPUT_TRANSFORMS))
    raw = unwrap(obj)
    layout = detect_layout(raw)
    sd = convert(raw)
    spec = infer_spec(sd)
    sd, spec, overrides = _q_model_as_tdmpc2(sd, spec, overrides, path)
    saved = obj.get("config") if isinstance(obj.get("config"), dict) else None
    task, task_source = tasks.resolve_task(task, spec, saved, path)
    tasks.check_task_kind(task, spec, path)
    cfg = build_config(spec, task, device, overrides, saved)
    _check_agent(cfg, spec, path)
    if task is not None and not cfg.multitask:
        tasks.check_task_dims(path, spec, cfg.task, task_source, env_dims)
        own = (saved or {}).get("task") or tasks.task_from_filename(path)  # same dims, another task: say so
        if task_source == "argument" and own and own != cfg.task:
            warnings.warn(
                f"{path} was trained on {own}, not on task={cfg.task}: the dims match, so it loads, but "
                f"its model and policy never saw {cfg.task}",
                stacklevel=2,
            )
    tasks.set_env_dims(cfg, spec)
    from tdmpc2.agent import agent_class

    agent = agent_class(cfg.agent)(cfg)
    load_converted(agent.model, sd)
    set_input_transform(agent.model, input_transform_of(obj, layout, prerelease_input))
    if saved is not None:
        _load_training_state(agent, obj)
    agent.checkpoint_info = {
        "path": str(path),
        "layout": layout,
        "task": cfg.task if task is not None else None,
        "task_source": task_source,
        "agent": cfg.agent,
        "model_size": spec["model_size"],
        "input_transform": agent.model.input_transform,
        "target_from_online": not any(k.startswith(("_target_Qs_params.", "_target_Qs.params.")) for k in raw),
        "spec": spec,
        "metadata": obj.get("metadata"),
    }
    return agent
