"""Config: the root config.yaml composed with Hydra overrides, validated, and completed with TD-MPC2's heuristics."""
import re
from pathlib import Path
from types import SimpleNamespace

import yaml

from tdmpc2.errors import UserError, unknown

ROOT = Path(__file__).resolve().parents[1]
CONFIG_PATH = ROOT / "config.yaml"

# arch presets (official common/__init__.py MODEL_SIZE)
MODEL_SIZE = {
    1: dict(enc_dim=256, mlp_dim=384, latent_dim=128, num_enc_layers=2, num_q=2),
    5: dict(enc_dim=256, mlp_dim=512, latent_dim=512, num_enc_layers=2),
    19: dict(enc_dim=1024, mlp_dim=1024, latent_dim=768, num_enc_layers=3),
    48: dict(enc_dim=1792, mlp_dim=1792, latent_dim=768, num_enc_layers=4),
    317: dict(enc_dim=4096, mlp_dim=4096, latent_dim=1376, num_enc_layers=5, num_q=8),
}
AGENTS = ("tdmpc2", "bmpc")
PLANNERS = ("mppi", "dream", "grad", "hybrid", "policy")
PLANNING_DTYPES = ("float32", "bfloat16")
PLANNER_BLOCKS = ("dream", "grad", "hybrid")



class Config(SimpleNamespace):
    """A plain attribute container (fast attribute access on hot paths, unlike OmegaConf)."""

    def get(self, key, default=None):
        return getattr(self, key, default)

    def to_dict(self):
        return {k: (v.to_dict() if isinstance(v, Config) else v) for k, v in vars(self).items()}


def defaults():
    """The root config.yaml as a dict (without the hydra block)."""
    with open(CONFIG_PATH) as f:
        raw = yaml.safe_load(f)
    raw.pop("hydra", None)
    return raw


def _check_overrides(overrides, defaults):
    """Unknown keys get an error naming the valid ones (Hydra would only say 'not in struct')."""
    for ov in overrides:
        key = re.split(r"[=~]", ov.lstrip("+~"), maxsplit=1)[0].strip()
        if "=" not in ov and not ov.startswith("~"):
            raise UserError(f"cannot read {ov!r}: overrides look like key=value, e.g. task=cartpole-swingup")
        parts = key.split(".")
        if parts[0].startswith("hydra"):
            continue
        if parts[0] not in defaults:
            raise unknown("config key", parts[0], list(defaults))
        if len(parts) > 1:
            block = defaults[parts[0]]
            if not isinstance(block, dict) or parts[1] not in block:
                raise unknown(f"{parts[0]} key", parts[1], list(block) if isinstance(block, dict) else [])


def _bmpc_aliases(overrides, block):
    """BMPC-only keys may be given at the top level (reanalyze_interval=5 means bmpc.reanalyze_interval=5)."""
    out = []
    for ov in overrides:
        key = re.split(r"[=~]", ov.lstrip("+~"), maxsplit=1)[0].strip()
        out.append(ov.replace(key, f"bmpc.{key}", 1) if key in block and key not in ("log_std_min", "log_std_max",
                                                                                      "num_q") else ov)
    return out


def compose(overrides=()):
    """The root config with Hydra-syntax overrides applied, as a plain dict."""
    base = defaults()
    overrides = _bmpc_aliases(list(overrides), {k for k in base["bmpc"] if k not in base})
    _check_overrides(overrides, base)
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    try:
        with initialize_config_dir(config_dir=str(ROOT), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=overrides)
    except HydraException as err:
        raise UserError(f"cannot apply overrides {overrides}: {err}") from None
    cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg.pop("hydra", None)
    cfg["_overridden"] = sorted({re.split(r"[=~]", o.lstrip("+~"), maxsplit=1)[0] for o in overrides})
    return cfg


def _to_config(d):
    return Config(**{k: _to_config(v) if isinstance(v, dict) else v for k, v in d.items()})


def parse_cfg(raw):
    """Validate names and apply presets: a dict from `compose` -> Config (env-dependent keys come later)."""
    raw = dict(raw)
    overridden = set(raw.pop("_overridden", ()))
    from tdmpc2 import envs
    if envs.task_set(raw["task"]) is None:
        envs.suite_of(raw["task"])  # an unknown task: the closest names of every suite
    for key, valid in (("agent", AGENTS), ("planner", PLANNERS), ("obs", ("state", "rgb")),
                       ("planning_dtype", PLANNING_DTYPES)):
        if raw[key] not in valid:
            raise unknown(key, raw[key], valid)
    if not (raw["device"] in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", str(raw["device"]))):
        raise unknown("device", raw["device"], ["auto", "cpu", "cuda", "cuda:0"])
    for key, value in list(raw.items()):  # official: strings like "5*2" are arithmetic
        if isinstance(value, str) and re.fullmatch(r"\d+\s*[+\-*/]\s*\d+", value):
            raw[key] = eval(value, {"__builtins__": {}})
    if raw["agent"] == "bmpc":
        for key, value in raw["bmpc"].items():
            if key not in overridden:  # a top-level override wins over the BMPC block
                raw[key] = value
    if raw["model_size"] is not None:
        size = raw["model_size"]
        if size not in MODEL_SIZE:
            raise unknown("model_size", size, list(MODEL_SIZE))
        raw.update({k: v for k, v in MODEL_SIZE[size].items() if k not in overridden})
        if raw["task"] == "mt30" and size == 19:
            raw["latent_dim"] = 512
    task_names = envs.task_set(raw["task"])
    raw["multitask"] = task_names is not None
    raw["tasks"] = task_names or [raw["task"]]
    if raw["multitask"]:
        raw["task_dim"] = 96 if raw["task"] == "mt80" or raw["model_size"] in (1, 317) else 64
    else:
        raw["task_dim"] = 0
    if raw["steps"] <= 0:
        raise UserError(f"steps must be positive, got {raw['steps']}")
    raw["bin_size"] = (raw["vmax"] - raw["vmin"]) / (raw["num_bins"] - 1) if raw["num_bins"] > 1 else 0.0
    raw["work_dir"] = str(Path.cwd() / "logs" / raw["task"] / str(raw["seed"]) / raw["exp_name"])
    raw["task_title"] = raw["task"].replace("-", " ").title()
    return _to_config(raw)


def discount(episode_length, cfg):
    """TD-MPC2's heuristic: longer episodes get a discount closer to 1."""
    frac = episode_length / cfg.discount_denom
    return min(max((frac - 1) / frac, cfg.discount_min), cfg.discount_max)


def set_env_dims(cfg, obs_shape, action_dim, episode_length, action_dims=None, episode_lengths=None):
    """Fill in what comes from the environment (or a checkpoint) and the heuristics that depend on it."""
    cfg.obs_shape = {cfg.obs: tuple(obs_shape)}
    cfg.action_dim = int(action_dim)
    cfg.episode_length = int(episode_length)
    if cfg.get("seed_steps") is None or cfg.get("_seed_steps_heuristic"):
        cfg.seed_steps = max(1000, 5 * cfg.episode_length)
        cfg._seed_steps_heuristic = True
    if cfg.multitask:
        cfg.action_dims = list(action_dims)
        cfg.episode_lengths = list(episode_lengths)
    return cfg


def load(overrides=()):
    return parse_cfg(compose(overrides))
