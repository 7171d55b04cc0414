"""The TD-MPC2 family's `from_checkpoint`: a file in any official TD-MPC2 or BMPC layout, or ours, as a ready agent
(the architecture from its tensors, the task and config from the file, its name or the caller), checked against
the task before anything runs.
"""

import warnings

from dream_mpc.checkpoint.configs import override_key
from dream_mpc.errors import UserError, unknown
from tdmpc2.checkpoint import tasks
from tdmpc2.checkpoint.configs import build_config
from tdmpc2.checkpoint.layouts import convert, detect_layout, unwrap
from tdmpc2.checkpoint.metadata import plain
from tdmpc2.checkpoint.spec import infer_spec, match_model_size
from tdmpc2.checkpoint.weights import INPUT_TRANSFORMS, input_transform_of, load_converted, set_input_transform


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
    if cfg.obs != spec["obs"]:  # the encoder's input is in the weights: the file decides
        reads = "64x64 frames" if spec["obs"] == "rgb" else "state vectors"
        raise UserError(
            f"{path} was trained on obs={spec['obs']} (its encoder reads {reads}); it cannot run with obs={cfg.obs}: "
            "leave obs= out"
        )
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
    from dream_mpc.registry import agents

    agent = agents.get(cfg.agent)(cfg)  # TD-MPC2 or BMPC, as the heads say
    load_converted(agent.model, sd)
    set_input_transform(agent.model, input_transform_of(obj, layout, prerelease_input))
    if saved is not None:
        load_training_state(agent, obj)
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
        "metadata": plain(obj.get("metadata")) if isinstance(obj, dict) else None,  # OmegaConf -> dicts
    }
    return agent


def load_training_state(agent, obj):
    """Optimizers and running scale from our own files, so training can go on; weights are loaded already."""
    state = obj.get("agent") if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not hasattr(agent, "load_state_dict"):
        return
    try:
        agent.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError) as err:
        warnings.warn(f"weights loaded, but not the optimizer state ({type(err).__name__}: {err})", stacklevel=3)
