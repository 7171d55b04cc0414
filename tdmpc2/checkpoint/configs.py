"""The config of a loaded checkpoint: what the file's own config says, what its tensors decide, then what the
caller asks for, strongest last. Our files carry their config (a plain dict); official ones do not.
"""

from dream_mpc import config
from dream_mpc.checkpoint.configs import hydra_value, override_key, saved_overrides

ARCH_KEYS = (
    "model_size",
    "latent_dim",
    "mlp_dim",
    "enc_dim",
    "num_enc_layers",
    "num_channels",
    "num_q",
    "num_bins",
    "log_std_min",
    "log_std_max",
)


def _spec_overrides(spec):
    """The config keys the tensors decide."""
    out = {"obs": spec["obs"], "agent": spec["agent"], "episodic": spec["episodic"]}
    out.update({k: spec[k] for k in ARCH_KEYS if spec[k] is not None})
    return out


def build_config(spec, task, device, overrides, saved):
    """config.load with, from weakest to strongest: the file's own config, the architecture read off the
    tensors, the task and device asked for, and the user's overrides."""
    overrides = list(overrides)
    user_keys = {override_key(o) for o in overrides}
    ours = saved_overrides(saved) if saved else {}
    ours.update(_spec_overrides(spec))
    if task is not None:
        ours["task"] = task
    ours["device"] = device
    cfg = config.load([f"{k}={hydra_value(v)}" for k, v in ours.items() if k not in user_keys] + overrides)
    if cfg.multitask:
        cfg.task_dim = spec["task_dim"]  # parse_cfg's rule covers the official sizes only
    return cfg
