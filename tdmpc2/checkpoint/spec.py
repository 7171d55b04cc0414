"""A model's architecture and dimensions read off its tensors alone.

Official files carry no config (or, for multi-task ones, one we do not read), so the sizes to build the model
with, the agent (TD-MPC2 Q(z, a) heads or BMPC V(z) heads) and the task set all come from the weight shapes.
"""

import re

from dream_mpc.errors import UserError
from tdmpc2.checkpoint.layouts import ONLINE, convert
from tdmpc2.checkpoint.tasks import task_set_of_size
from tdmpc2.options import MODEL_SIZE


def _layer_weights(sd, prefix):
    """Weights of the direct layers `<prefix>.<i>.weight`, in layer order."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.weight")
    found = {int(m.group(1)): v for k, v in sd.items() if (m := pattern.fullmatch(k))}
    if not found:
        raise UserError(f"not a TD-MPC2 checkpoint: no `{prefix}.*` layers")
    return [found[i] for i in sorted(found)]


def match_model_size(spec):
    """The MODEL_SIZE preset this architecture is (with the default num_q of its agent), or None if custom."""
    default_q = 2 if spec["agent"] == "bmpc" else 5
    for size, preset in MODEL_SIZE.items():
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
    spec = dict(
        action_dim=pi[-1].shape[0] // 2,
        latent_dim=pi[0].shape[1] - task_dim,
        mlp_dim=pi[0].shape[0],
        task_dim=task_dim,
        num_tasks=num_tasks,
        num_bins=_layer_weights(sd, "_reward")[-1].shape[0],
        episodic="_termination.0.weight" in sd,
    )
    spec["task_set"] = None if emb is None else task_set_of_size(num_tasks)
    if "_encoder.rgb.2.weight" in sd:
        conv = sd["_encoder.rgb.2.weight"]  # (channels, 3 * frames, 7, 7); the conv encoder takes 64x64 input
        spec.update(
            obs="rgb",
            obs_shape=(conv.shape[1], 64, 64),
            obs_dim=None,
            num_channels=conv.shape[0],
            enc_dim=None,
            num_enc_layers=None,
        )
    else:
        enc = _layer_weights(sd, "_encoder.state")
        obs_dim = enc[0].shape[1] - task_dim
        # num_enc_layers n >= 2 builds n linear layers (n = 1 builds the same net as 2)
        spec.update(
            obs="state",
            obs_shape=(obs_dim,),
            obs_dim=obs_dim,
            num_channels=None,
            enc_dim=enc[0].shape[0],
            num_enc_layers=len(enc),
        )
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
    spec["model_size"] = match_model_size(spec)
    return spec
