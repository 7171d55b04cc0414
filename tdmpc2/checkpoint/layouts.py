"""The official TD-MPC2 checkpoint layouts and their converters to our module's keys.

Official code and files have changed their key layout over time, and a file from any of them must load:
  current     `_Qs.params.<layer>.<name>`, `_detach_Qs_params.*`, `_target_Qs_params.*` and the tensordict
              `__batch_size` / `__device` pseudo-entries (official code since Nov 2024; our own files)
  release     flat `_Qs.params.N` / `_target_Qs.params.N`; no log-std buffers, no `_action_masks` (Oct 2023)
  prerelease  release-style Qs and older MLP indices (`_encoder.state.1`, `_dynamics.0.0`, ...): some
              single-task files of the first upload
Multi-task files (`_task_emb`, `_action_masks`) and BMPC files (V(z) heads, `expl_log_std_*` buffers) use the
same key layouts; their differences are in shapes and extra entries, which `spec.infer_spec` reads. We write the
current layout so the official code can load our files.
"""

import re
import warnings

import torch

from dream_mpc.errors import UserError

ENSEMBLE_PREFIXES = ("_Qs.params", "_detach_Qs_params", "_target_Qs_params")
ONLINE, TARGET = "_Qs.params.", "_target_Qs_params."
LAYOUTS = ("current", "release", "prerelease")
# release layout: flat index N of an ensemble -> layer N // 4, part N % 4 (the last layer has weight, bias only)
LAYER_PARTS = ("weight", "bias", "ln.weight", "ln.bias")


def official_state_dict(model):
    """Our model's weights as the official code (tensordict 0.8.3) writes them: the online Q params also under
    `_detach_Qs_params`, and the `__batch_size` / `__device` pseudo-entries of each stacked ensemble."""
    sd = model.state_dict()
    out = {k: v for k, v in sd.items() if not k.startswith(TARGET)}
    online = {k[len(ONLINE) :]: v for k, v in sd.items() if k.startswith(ONLINE)}
    target = {k[len(TARGET) :]: v for k, v in sd.items() if k.startswith(TARGET)}
    num_q = next(iter(online.values())).shape[0]
    out["_Qs.params.__batch_size"] = torch.Size([num_q])
    out["_Qs.params.__device"] = None
    for prefix, params in (("_detach_Qs_params", online), ("_target_Qs_params", target)):
        for k, v in params.items():
            out[f"{prefix}.{k}"] = v
        out[f"{prefix}.__batch_size"] = torch.Size([num_q])
        out[f"{prefix}.__device"] = None
    return out


def unwrap(obj):
    """The state_dict in a file's object: `{"model": sd, "metadata": ...}` (official, ours) or a bare one."""
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not any(isinstance(k, str) and k.startswith("_encoder.") for k in obj):
        found = sorted(map(str, obj))[:8] if isinstance(obj, dict) else type(obj).__name__
        raise UserError(f"not a TD-MPC2 checkpoint: no `_encoder.*` weights (found {found})")
    return obj


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
    return (
        key.startswith("_detach_Qs_params.")
        or key.endswith((".__batch_size", ".__device"))
        or re.match(r"_(detach_|target_)?Qs\.module\.", key) is not None
    )


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
        sd[TARGET + k[len(ONLINE) :]] = sd[k].clone()


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
