"""Checkpoints in the official TD-MPC2 layout: `{"model": state_dict}` plus our extras under other keys.

Writes are atomic (temporary file in the same folder, then rename), so a killed run never leaves a
truncated file.
"""
import os
import tempfile
from pathlib import Path

import torch

from tdmpc2.errors import UserError

ENSEMBLE_PREFIXES = ("_Qs.params", "_detach_Qs_params", "_target_Qs_params")


def official_state_dict(model):
    """Our model's weights as the official code (tensordict 0.8.3) writes them: the online Q params also under
    `_detach_Qs_params`, and the `__batch_size` / `__device` pseudo-entries of each stacked ensemble."""
    sd = model.state_dict()
    out = {}
    for k, v in sd.items():
        if k.startswith("_target_Qs_params."):
            continue
        out[k] = v
    online = {k[len("_Qs.params."):]: v for k, v in sd.items() if k.startswith("_Qs.params.")}
    target = {k[len("_target_Qs_params."):]: v for k, v in sd.items() if k.startswith("_target_Qs_params.")}
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
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save(path, agent, **extra):
    """Write the agent: weights in the official layout under "model"; optimizers, running scale, config and
    any `extra` (step, episode, RNG states ...) under other keys, which the official loader ignores."""
    obj = {"model": official_state_dict(agent.model), "agent": agent.state_dict(), "config": agent.cfg.to_dict()}
    obj.update(extra)
    atomic_save(obj, path)


def read(path, device="cpu"):
    """torch.load with a plain error for a missing or unreadable file; tensors land on `device`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as err:
        raise UserError(f"cannot read checkpoint {path}: {err}") from None


def internal_state_dict(sd):
    """Current official layout -> our module's keys (drops the detach copy and the pseudo-entries)."""
    out = {}
    for k, v in sd.items():
        if k.startswith("_detach_Qs_params.") or k.endswith(".__batch_size") or k.endswith(".__device"):
            continue
        out[k] = v
    return out


def load_weights(model, sd):
    """Load a state_dict (any supported layout) into our model, strictly."""
    sd = internal_state_dict(sd)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise UserError(f"checkpoint does not fit the model: missing keys {missing[:6]}, unexpected {unexpected[:6]}")
