"""Checkpoints: every official TD-MPC2 layout in, the current official layout out.

Writing: `{"model": state_dict}` in the layout the official code (tensordict 0.8.3) loads, with our extras
(optimizers, running scale, config) under other keys, which the official loader ignores. Writes are atomic
(temporary file in the same folder, then rename), so a killed run never leaves a truncated file.

Reading: `convert` turns any layout into our module's keys.
  current     `_Qs.params.<layer>.<name>`, `_detach_Qs_params.*`, `_target_Qs_params.*` and the tensordict
              `__batch_size` / `__device` pseudo-entries (official code since Nov 2024; our own files)
  release     flat `_Qs.params.N` / `_target_Qs.params.N`; no log-std buffers, no `_action_masks` (Oct 2023)
  prerelease  release-style Qs and older MLP indices (`_encoder.state.1`, `_dynamics.0.0`, ...): some
              single-task files of the first upload
`infer_spec` reads the architecture off the tensors and `load_agent` builds a ready agent from a file alone.
"""
import functools
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from tdmpc2 import config, math
from tdmpc2.errors import UserError, unknown
from tdmpc2.runtime import resolve_device

ENSEMBLE_PREFIXES = ("_Qs.params", "_detach_Qs_params", "_target_Qs_params")
ONLINE, TARGET = "_Qs.params.", "_target_Qs_params."
LAYOUTS = ("current", "release", "prerelease")
# release layout: flat index N of an ensemble -> layer N // 4, part N % 4 (the last layer has weight, bias only)
LAYER_PARTS = ("weight", "bias", "ln.weight", "ln.bias")
# buffers that older layouts lack (they were plain attributes): the freshly built model's values are used
FILLED_BUFFERS = ("log_std_min", "log_std_dif", "expl_log_std_min", "expl_log_std_dif", "_action_masks")
# the parameter-free transform at encoder position 0 of pre-release files (unconfirmed which one)
INPUT_TRANSFORMS = {"identity": None, "symlog": math.symlog}
ARCH_KEYS = ("model_size", "latent_dim", "mlp_dim", "enc_dim", "num_enc_layers", "num_channels", "num_q",
             "num_bins", "log_std_min", "log_std_max")
# keys of a saved config that the loading call decides, never the file
SAVED_CONFIG_SKIP = ("task", "device", "task_dim", "checkpoint")


# ---------------------------------------------------------------------------------------------------- writing
def official_state_dict(model):
    """Our model's weights as the official code (tensordict 0.8.3) writes them: the online Q params also under
    `_detach_Qs_params`, and the `__batch_size` / `__device` pseudo-entries of each stacked ensemble."""
    sd = model.state_dict()
    out = {k: v for k, v in sd.items() if not k.startswith(TARGET)}
    online = {k[len(ONLINE):]: v for k, v in sd.items() if k.startswith(ONLINE)}
    target = {k[len(TARGET):]: v for k, v in sd.items() if k.startswith(TARGET)}
    num_q = next(iter(online.values())).shape[0]
    out["_Qs.params.__batch_size"] = torch.Size([num_q])
    out["_Qs.params.__device"] = None
    for prefix, params in (("_detach_Qs_params", online), ("_target_Qs_params", target)):
        for k, v in params.items():
            out[f"{prefix}.{k}"] = v
        out[f"{prefix}.__batch_size"] = torch.Size([num_q])
        out[f"{prefix}.__device"] = None
    return out


def atomic_save(obj, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save(path, agent, **extra):
    """Write the agent: weights in the official layout under "model"; optimizers, running scale, config, the
    input transform of a converted pre-release model and any `extra` (step, RNG states ...) under other keys."""
    obj = {"model": official_state_dict(agent.model), "agent": agent.state_dict(), "config": agent.cfg.to_dict()}
    transform = getattr(agent.model, "input_transform", None)
    if transform is not None:  # the official layout cannot say it, so a reload would silently lose it
        obj["input_transform"] = transform
    obj.update(extra)
    atomic_save(obj, path)


# ---------------------------------------------------------------------------------------------------- reading
def read(path, device="cpu"):
    """torch.load with a plain error for a missing or unreadable file; tensors land on `device` (so files
    written on a GPU open on a CPU-only machine)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:  # not weights_only: official multi-task files carry OmegaConf containers under "metadata"
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as err:
        raise UserError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from None


def unwrap(obj):
    """The state_dict in a file's object: `{"model": sd, "metadata": ...}` (official, ours) or a bare one."""
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not any(isinstance(k, str) and k.startswith("_encoder.") for k in obj):
        found = sorted(map(str, obj))[:8] if isinstance(obj, dict) else type(obj).__name__
        raise UserError(f"not a TD-MPC2 checkpoint: no `_encoder.*` weights (found {found})")
    return obj


# ---------------------------------------------------------------------------------------------------- layouts
def _is_prerelease(sd):
    """Pre-release MLPs: the dynamics was a nested Sequential, the encoder had nothing at position 0."""
    if any(k.startswith("_dynamics.0.0.") for k in sd):
        return True
    enc2 = sd.get("_encoder.state.2.weight")
    return enc2 is not None and enc2.ndim == 1 and not any(k.startswith("_encoder.state.0.") for k in sd)


def detect_layout(sd):
    """'current', 'release' or 'prerelease' (see the module docstring)."""
    sd = unwrap(sd)
    if "_Qs.params.0" in sd:
        return "prerelease" if _is_prerelease(sd) else "release"
    if "_Qs.params.0.weight" in sd:
        return "current"
    raise UserError("not a TD-MPC2 checkpoint: no Q ensemble (`_Qs.params.*`) found")


def _is_dropped(key):
    """Entries that carry nothing of our model: the detach copy (same values as online), the tensordict
    pseudo-entries, and the template-module copies that newer tensordict versions add."""
    return (key.startswith("_detach_Qs_params.") or key.endswith((".__batch_size", ".__device"))
            or re.match(r"_(detach_|target_)?Qs\.module\.", key) is not None)


_RELEASE_Q = re.compile(r"(_Qs\.params|_target_Qs\.params)\.(\d+)")


def _release_q_key(key):
    """`_Qs.params.N` -> `_Qs.params.<layer>.<part>`, `_target_Qs.params.N` -> `_target_Qs_params...`."""
    m = _RELEASE_Q.fullmatch(key)
    if m is None:
        return key
    prefix = ONLINE if m.group(1) == "_Qs.params" else TARGET
    layer, part = divmod(int(m.group(2)), 4)
    return f"{prefix}{layer}.{LAYER_PARTS[part]}"


_PRERELEASE_MLP = re.compile(r"(_encoder\.state|_dynamics\.0|_reward|_pi)\.(\d+)\.(weight|bias)")


def _prerelease_key(key, dynamics_last):
    """Pre-release MLP keys -> public ones (reference table 3.5). Each layer was Linear, LayerNorm, activation
    at positions 3i, 3i+1, 3i+2; the encoder was shifted by its input transform at position 0 and the
    dynamics' last LayerNorm sat at the top level as `_dynamics.1`."""
    if key.startswith("_dynamics.1."):
        return f"_dynamics.{dynamics_last}.ln.{key.rsplit('.', 1)[1]}"
    m = _PRERELEASE_MLP.fullmatch(key)
    if m is None:
        return key
    module, pos, name = m.group(1), int(m.group(2)), m.group(3)
    if module == "_encoder.state":
        pos -= 1
    layer, kind = divmod(pos, 3)
    if kind == 2:
        raise UserError(f"unexpected parameters at an activation position of a pre-release checkpoint: {key}")
    module = "_dynamics" if module == "_dynamics.0" else module
    return f"{module}.{layer}.{'ln.' if kind else ''}{name}"


def _prerelease_dynamics_last(sd):
    """Index of the last dynamics layer in a pre-release file (its last Linear sits at position 3 * index)."""
    positions = [int(m.group(1)) for k in sd if (m := re.fullmatch(r"_dynamics\.0\.(\d+)\.weight", k))]
    return max(positions) // 3


def internal_state_dict(sd):
    """Current official layout -> our module's keys (drops the detach copy and the pseudo-entries)."""
    return {k: v for k, v in sd.items() if not _is_dropped(k)}


def _fill_missing_target(sd):
    """Some early files have no target ensemble (issue #11): start it as a copy of the online one."""
    if any(k.startswith(TARGET) for k in sd):
        return
    warnings.warn("checkpoint has no target Q ensemble; using a copy of the online Q ensemble", stacklevel=3)
    for k in [k for k in sd if k.startswith(ONLINE)]:
        sd[TARGET + k[len(ONLINE):]] = sd[k].clone()


def convert(sd):
    """Any official layout, bare or inside `{"model": ...}`, -> a state_dict with our module's keys.

    Buffers a layout lacks (log-std bounds, action masks) are left out: `load_weights` takes them from the
    freshly built model. A missing target ensemble becomes a copy of the online one (with a warning).
    """
    sd = unwrap(sd)
    layout = detect_layout(sd)
    dynamics_last = _prerelease_dynamics_last(sd) if layout == "prerelease" else None
    out = {}
    for key, value in internal_state_dict(sd).items():
        if layout == "prerelease":
            key = _prerelease_key(key, dynamics_last)
        if layout != "current":
            key = _release_q_key(key)
        out[key] = value
    _fill_missing_target(out)
    return out


# ---------------------------------------------------------------------------------------------------- spec
def _layer_weights(sd, prefix):
    """Weights of the direct layers `<prefix>.<i>.weight`, in layer order."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.weight")
    found = {int(m.group(1)): v for k, v in sd.items() if (m := pattern.fullmatch(k))}
    if not found:
        raise UserError(f"not a TD-MPC2 checkpoint: no `{prefix}.*` layers")
    return [found[i] for i in sorted(found)]


def _match_model_size(spec):
    """The MODEL_SIZE preset this architecture is (with the default num_q of its agent), or None if custom."""
    default_q = 2 if spec["agent"] == "bmpc" else 5
    for size, preset in config.MODEL_SIZE.items():
        want = {"num_q": default_q, **preset}
        if spec["task_set"] == "mt30" and size == 19:
            want["latent_dim"] = 512
        if all(spec[k] is None or spec[k] == v for k, v in want.items()):
            return size
    return None


def infer_spec(sd):
    """Architecture and dimensions of a checkpoint (any layout), read off its tensors alone.

    Returns a dict: obs ('state'|'rgb'), obs_shape, obs_dim (state only; padded for multi-task), action_dim,
    latent_dim, enc_dim, mlp_dim, num_enc_layers, num_channels (rgb), num_q, num_bins, task_dim, num_tasks,
    task_set ('mt30'|'mt80'|None), episodic, agent ('tdmpc2'|'bmpc'), value_heads ('Q'|'V'), log_std_min,
    log_std_max (None when the file has no buffers) and model_size (a MODEL_SIZE key, or None if custom).
    """
    sd = convert(sd)
    emb = sd.get("_task_emb.weight")
    task_dim, num_tasks = (0, 1) if emb is None else (emb.shape[1], emb.shape[0])
    pi = _layer_weights(sd, "_pi")
    spec = dict(action_dim=pi[-1].shape[0] // 2, latent_dim=pi[0].shape[1] - task_dim, mlp_dim=pi[0].shape[0],
                task_dim=task_dim, num_tasks=num_tasks, num_bins=_layer_weights(sd, "_reward")[-1].shape[0],
                episodic="_termination.0.weight" in sd)
    spec["task_set"] = None if emb is None else {30: "mt30", 80: "mt80"}.get(num_tasks)
    if "_encoder.rgb.2.weight" in sd:
        conv = sd["_encoder.rgb.2.weight"]  # (channels, 3 * frames, 7, 7); the conv encoder takes 64x64 input
        spec.update(obs="rgb", obs_shape=(conv.shape[1], 64, 64), obs_dim=None, num_channels=conv.shape[0],
                    enc_dim=None, num_enc_layers=None)
    else:
        enc = _layer_weights(sd, "_encoder.state")
        obs_dim = enc[0].shape[1] - task_dim
        # num_enc_layers n >= 2 builds n linear layers (n = 1 builds the same net as 2)
        spec.update(obs="state", obs_shape=(obs_dim,), obs_dim=obs_dim, num_channels=None,
                    enc_dim=enc[0].shape[0], num_enc_layers=len(enc))
    q = sd[ONLINE + "0.weight"]  # (num_q, mlp_dim, value input)
    spec["num_q"] = q.shape[0]
    value_inputs = {spec["latent_dim"] + task_dim: "V", spec["latent_dim"] + task_dim + spec["action_dim"]: "Q"}
    if q.shape[-1] not in value_inputs:
        raise UserError(f"value ensemble input dim {q.shape[-1]} fits neither V(z) nor Q(z, a) of this model")
    spec["value_heads"] = value_inputs[q.shape[-1]]
    spec["agent"] = "bmpc" if spec["value_heads"] == "V" or "expl_log_std_min" in sd else "tdmpc2"
    has_log_std = "log_std_min" in sd and "log_std_dif" in sd
    spec["log_std_min"] = int(sd["log_std_min"]) if has_log_std else None
    spec["log_std_max"] = int(sd["log_std_min"] + sd["log_std_dif"]) if has_log_std else None
    spec["model_size"] = _match_model_size(spec)
    return spec


# ---------------------------------------------------------------------------------------------------- weights
def set_input_transform(model, name):
    """Apply a parameter-free transform ('symlog') to the state encoder's input, where pre-release files had
    one at encoder position 0; None or 'identity' removes it. A forward pre-hook on the encoder keeps the
    state_dict keys official; `model.input_transform` names the transform so `save` can record it."""
    if name is not None and name not in INPUT_TRANSFORMS:
        raise unknown("prerelease_input", name, list(INPUT_TRANSFORMS))
    old = getattr(model, "_input_transform_hook", None)
    if old is not None:
        old.remove()
    fn = INPUT_TRANSFORMS.get(name)
    model.input_transform = name if fn is not None else None
    model._input_transform_hook = None
    if fn is not None:
        if "state" not in model._encoder:
            raise UserError("an input transform applies to state encoders only")
        model._input_transform_hook = model._encoder["state"].register_forward_pre_hook(
            lambda _module, args: (fn(args[0]), *args[1:]))


def _load_converted(model, sd):
    """Strictly load a converted state_dict, taking the buffers older layouts lack from the model itself."""
    own = model.state_dict()
    sd = {**{k: own[k] for k in FILLED_BUFFERS if k in own and k not in sd}, **sd}
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    reshaped = [f"{k} (file {tuple(sd[k].shape)}, model {tuple(own[k].shape)})"
                for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or reshaped:
        parts = [f"{len(v)} {name}: {', '.join(v[:4])}{' ...' if len(v) > 4 else ''}"
                 for name, v in (("missing", missing), ("unexpected", unexpected), ("with other shapes", reshaped))
                 if v]
        raise UserError("checkpoint does not fit the model: " + "; ".join(parts))
    model.load_state_dict(sd)


def _input_transform(obj, layout, prerelease_input):
    """Pre-release files: the transform asked for; our files record theirs next to "model"; others have none."""
    if layout == "prerelease":
        return prerelease_input
    return obj.get("input_transform") if isinstance(obj.get("model"), dict) else None


def load_weights(model, obj, prerelease_input="symlog"):
    """Load a checkpoint's weights (a file's object `{"model": ...}` or a bare state_dict, any official layout)
    into our model, strictly. Pass the whole file object so a recorded input transform comes along too.

    For a pre-release file the encoder's input transform is `prerelease_input` ('symlog' or 'identity').
    Returns the layout name.
    """
    if prerelease_input not in INPUT_TRANSFORMS:
        raise unknown("prerelease_input", prerelease_input, list(INPUT_TRANSFORMS))
    layout = detect_layout(obj)
    _load_converted(model, convert(obj))
    set_input_transform(model, _input_transform(obj, layout, prerelease_input))
    return layout


# ---------------------------------------------------------------------------------------------------- tasks
@functools.lru_cache(maxsize=None)
def dmc_dims(task):
    """(state observation dim, action dim) of a standard DMControl task, read from dm_control's specs without
    stepping it; None when the task is not a standard DMC task or dm_control is not installed."""
    if task not in config.DMC_TASKS:
        return None
    try:
        with warnings.catch_warnings():  # it probes an OpenGL backend on import; nothing is rendered here
            warnings.simplefilter("ignore")
            from dm_control import suite
    except ImportError:
        return None
    domain, name = task.split("-", 1)
    domain = {"cup": "ball_in_cup", "pointmass": "point_mass"}.get(domain, domain)
    env = suite.load(domain, name.replace("-", "_"))
    try:
        obs_dim = sum(int(np.prod(s.shape)) for s in env.observation_spec().values())
        return obs_dim, int(env.action_spec().shape[0])
    finally:
        env.close()


def _episode_length(task):
    """Agent steps per episode: Meta-World 100 (after action repeat), DMControl 500."""
    return 100 if task.startswith("mw-") else 500


def _task_from_filename(path):
    """Official single-task files are named `<task>-<seed>.pt`, e.g. dog-run-1.pt."""
    stem = re.sub(r"-\d+$", "", Path(path).stem)
    return stem if stem in config.DMC_TASKS else None


def _resolve_task(task, spec, saved, path):
    """(task, where it came from): the argument, the file's own config, its task set, its file name; or
    (None, None) when nothing says (the config default is used and the task dims are not checked)."""
    if task is not None:
        return task, "argument"
    if saved and saved.get("task"):
        return saved["task"], "checkpoint config"
    if spec["num_tasks"] > 1:
        if spec["task_set"] is None:
            raise UserError(f"{path} is a multi-task model over {spec['num_tasks']} tasks, but only mt30 (30 tasks) "
                            f"and mt80 (80 tasks) are known task sets")
        return spec["task_set"], "task embeddings"
    guess = _task_from_filename(path)
    if guess is not None:
        return guess, "file name"
    warnings.warn(f"{path} does not say which task it was trained on; pass task=... to check its dims and get "
                  f"the task's discount (using episode length 500, as on DMControl)", stacklevel=3)
    return None, None


def _check_task_kind(task, spec, path):
    """Single-task files need a single task, multi-task files their own task set."""
    if task is None:
        return
    if spec["num_tasks"] > 1 and task not in config.TASK_SET:
        raise UserError(f"{path} is a multi-task model ({spec['num_tasks']} tasks), but task={task} is a single "
                        f"task. Load it with task={spec['task_set']} and pass the task's id when acting")
    if spec["num_tasks"] == 1 and task in config.TASK_SET:
        raise UserError(f"{path} is a single-task model, but task={task} is a multi-task set. Load it with the task "
                        f"it was trained on (official files are named <task>-<seed>.pt)")
    if task in config.TASK_SET and len(config.TASK_SET[task]) != spec["num_tasks"]:
        raise UserError(f"{path} has {spec['num_tasks']} task embeddings, but {task} has "
                        f"{len(config.TASK_SET[task])} tasks. Load it with task={spec['task_set'] or '...'}")


def _check_task_dims(path, spec, task, source, env_dims=None):
    """The file's observation and action dims against the task's true ones (from `env_dims` or dm_control)."""
    dims = tuple(env_dims) if env_dims is not None else dmc_dims(task)
    if dims is None:
        return
    obs_dim, action_dim = dims
    obs_fits = spec["obs"] == "rgb" or spec["obs_dim"] == obs_dim  # rgb: only the actions compare
    if obs_fits and action_dim == spec["action_dim"]:
        return
    file_obs = spec["obs_dim"] if spec["obs"] == "state" else f"{spec['obs_shape']} (rgb)"
    raise UserError(
        f"checkpoint {path} does not fit task {task} ({source}): the checkpoint has observation dim {file_obs} and "
        f"action dim {spec['action_dim']}, the task has observation dim {obs_dim} and action dim {action_dim}. "
        f"Load it with the task it was trained on (official files are named <task>-<seed>.pt, e.g. "
        f"task=dog-run for dog-run-1.pt)")


# ---------------------------------------------------------------------------------------------------- config
def _hydra_value(value):
    """A Python value as a Hydra override value (strings quoted, so '123' stays a string)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _override_key(override):
    return re.split(r"[=~]", override.lstrip("+~"), maxsplit=1)[0].strip()


def _saved_overrides(saved):
    """The values of our own file's config that differ from the defaults, as {key: value} overrides."""
    saved = dict(saved)
    if saved.get("_iterations_adjusted") and saved.get("action_dim", 0) >= 20:
        saved["iterations"] -= 2  # TDMPC2 added 2 for a large action space and will add them again
    defaults = config.defaults()  # the root config.yaml as a dict (cheaper than a Hydra compose)
    out = {}
    for key, value in saved.items():
        if key in SAVED_CONFIG_SKIP:
            continue
        default = defaults.get(key)
        if isinstance(default, dict):
            if key != "bmpc":  # its effective values are at the top level (below)
                out.update({f"{key}.{k}": v for k, v in value.items() if k in default and v != default[k]})
        elif key in defaults:
            if value != default:
                out[key] = value
        elif key in defaults["bmpc"] and value != defaults["bmpc"][key]:  # BMPC-only keys, copied up by parse_cfg
            out[f"bmpc.{key}"] = value
    return out


def _spec_overrides(spec):
    """The config keys the tensors decide."""
    out = {"obs": spec["obs"], "agent": spec["agent"], "episodic": spec["episodic"]}
    out.update({k: spec[k] for k in ARCH_KEYS if spec[k] is not None})
    return out


def _build_config(spec, task, device, overrides, saved):
    """config.load with, from weakest to strongest: the file's own config, the architecture read off the
    tensors, the task and device asked for, and the user's overrides."""
    overrides = list(overrides)
    user_keys = {_override_key(o) for o in overrides}
    ours = _saved_overrides(saved) if saved else {}
    ours.update(_spec_overrides(spec))
    if task is not None:
        ours["task"] = task
    ours["device"] = device
    cfg = config.load([f"{k}={_hydra_value(v)}" for k, v in ours.items() if k not in user_keys] + overrides)
    if cfg.multitask:
        cfg.task_dim = spec["task_dim"]  # parse_cfg's rule covers the official sizes only
    return cfg


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
    asked = [o for o in overrides if _override_key(o) == "agent" and "=" in o
             and o.split("=", 1)[1].strip().strip("'\"") == "bmpc"]
    notes = []
    if asked:
        overrides = [o for o in overrides if o not in asked]
        notes.append("agent=bmpc is ignored: the file has Q(z, a) heads, and BMPC's world model has V(z) heads; as in "
                     "the official Dream-MPC code (algo=dream_mpc_tdmpc2), it runs as the TD-MPC2 agent with the "
                     "planner asked for")
    if spec["agent"] == "bmpc":
        sd = {k: v for k, v in sd.items() if not k.startswith("expl_log_std_")}
        spec = {**spec, "agent": "tdmpc2"}
        spec["model_size"] = _match_model_size(spec)
        notes.append("its expl_log_std_* buffers (used by BMPC only) are dropped and it loads as a TD-MPC2 model; "
                     "policy samples follow TD-MPC2's tanh-squashed head (the policy mean is the same either way)")
    if notes:
        warnings.warn(f"{path}: " + "; ".join(notes), stacklevel=3)
    return sd, spec, overrides


def _check_agent(cfg, spec, path):
    """The agent the config asks for must have the value heads the file has."""
    if cfg.agent != spec["agent"]:
        heads = {"Q": "Q(z, a)", "V": "V(z)"}[spec["value_heads"]]
        raise UserError(f"{path} holds a {spec['agent']} model with {heads} value heads; loading it as "
                        f"agent={cfg.agent} is not supported yet. Drop the agent= override")


def _set_env_dims(cfg, spec):
    """What an environment would tell: dims from the file; episode lengths (and multi-task action dims) from
    the task names."""
    if cfg.multitask:
        action_dims = [config.MT_ACTION_DIMS[t.split("-")[0]] for t in cfg.tasks]
        lengths = [_episode_length(t) for t in cfg.tasks]
        config.set_env_dims(cfg, spec["obs_shape"], spec["action_dim"], max(lengths), action_dims, lengths)
    else:
        config.set_env_dims(cfg, spec["obs_shape"], spec["action_dim"], _episode_length(cfg.task))


# ---------------------------------------------------------------------------------------------------- agents
def _load_training_state(agent, obj):
    """Optimizers and running scale from our own files, so training can go on; weights are loaded already."""
    state = obj.get("agent") if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not hasattr(agent, "load_state_dict"):
        return
    try:
        agent.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError) as err:
        warnings.warn(f"weights loaded, but not the optimizer state ({type(err).__name__}: {err})", stacklevel=3)


def load_agent(path, task=None, device="auto", overrides=(), prerelease_input="symlog", env_dims=None):
    """A ready agent from a checkpoint file alone (any official layout, or ours).

    The architecture comes from the tensors; `task` (default: the file's config, its task set, or its file name)
    is checked against the file: a DMControl task's true dims (or `env_dims=(obs_dim, action_dim)`) must match.
    `overrides` are config overrides (e.g. ["planner=dream"]); `prerelease_input` is the input transform of
    pre-release files ('symlog' or 'identity'). `agent.checkpoint_info` says what was loaded.
    """
    if prerelease_input not in INPUT_TRANSFORMS:
        raise unknown("prerelease_input", prerelease_input, list(INPUT_TRANSFORMS))
    obj = read(path, device=resolve_device(device))
    raw = unwrap(obj)
    layout = detect_layout(raw)
    sd = convert(raw)
    spec = infer_spec(sd)
    sd, spec, overrides = _q_model_as_tdmpc2(sd, spec, overrides, path)
    saved = obj.get("config") if isinstance(obj.get("config"), dict) else None
    task, task_source = _resolve_task(task, spec, saved, path)
    _check_task_kind(task, spec, path)
    cfg = _build_config(spec, task, device, overrides, saved)
    _check_agent(cfg, spec, path)
    if task is not None and not cfg.multitask:
        _check_task_dims(path, spec, cfg.task, task_source, env_dims)
    _set_env_dims(cfg, spec)
    from tdmpc2.agent import agent_class
    agent = agent_class(cfg.agent)(cfg)
    _load_converted(agent.model, sd)
    set_input_transform(agent.model, _input_transform(obj, layout, prerelease_input))
    if saved is not None:
        _load_training_state(agent, obj)
    agent.checkpoint_info = {
        "path": str(path), "layout": layout, "task": cfg.task if task is not None else None,
        "task_source": task_source, "agent": cfg.agent, "model_size": spec["model_size"],
        "input_transform": agent.model.input_transform,
        "target_from_online": not any(k.startswith(("_target_Qs_params.", "_target_Qs.params.")) for k in raw),
        "spec": spec, "metadata": obj.get("metadata"),
    }
    return agent
