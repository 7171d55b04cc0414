"""TD-MPC2's root config keys (the official config.yaml's names and defaults, table 5), declared once here: the
TD-MPC2 and BMPC families read them at the root (`lr=1e-3`, `model_size=5`), as the official code does; a run of
another family neither shows nor reads them. `complete` applies the official presets and heuristics."""

from dataclasses import dataclass

from dream_mpc.options import option

# arch presets (official common/__init__.py MODEL_SIZE)
MODEL_SIZE = {
    1: dict(enc_dim=256, mlp_dim=384, latent_dim=128, num_enc_layers=2, num_q=2),
    5: dict(enc_dim=256, mlp_dim=512, latent_dim=512, num_enc_layers=2),
    19: dict(enc_dim=1024, mlp_dim=1024, latent_dim=768, num_enc_layers=3),
    48: dict(enc_dim=1792, mlp_dim=1792, latent_dim=768, num_enc_layers=4),
    317: dict(enc_dim=4096, mlp_dim=4096, latent_dim=1376, num_enc_layers=5, num_q=8),
}
PLANNING_DTYPES = ("float32", "bfloat16")
_POS_INT, _NONNEG = dict(low=1), dict(low=0)
_POS, _FRACTION = dict(low=0, low_open=True), dict(low=0, high=1)


@dataclass
class TDMPC2RootOptions:
    # training
    batch_size: int = option(256, "sub-trajectories per update", **_POS_INT)
    reward_coef: float = option(0.1, "weight of the reward loss", **_NONNEG)
    value_coef: float = option(0.1, "weight of the value loss", **_NONNEG)
    termination_coef: float = option(1.0, "weight of the termination loss (episodic=true)", **_NONNEG)
    consistency_coef: float = option(20.0, "weight of the latent consistency loss", **_NONNEG)
    rho: float = option(0.5, "per-step weight decay of the losses along the horizon", low=0, low_open=True, high=1)
    lr: float = option(3e-4, "learning rate", **_POS)
    enc_lr_scale: float = option(0.3, "encoder learning rate as a fraction of lr", **_NONNEG)
    grad_clip_norm: float = option(20.0, "gradient-norm clip of updates", **_POS)
    tau: float = option(0.01, "soft update rate of the target Q-networks", **_FRACTION)
    discount_denom: float = option(5.0, "discount heuristic: episode length / discount_denom sets the discount", **_POS)
    discount_min: float = option(0.95, "lower bound of the discount", **_FRACTION)
    discount_max: float = option(0.995, "upper bound of the discount", **_FRACTION)
    data_dir: str = option(None, "task=mt30|mt80 training (offline): folder of the dataset chunks", nullable=True)
    # actor
    log_std_min: float = option(-10.0, "lower bound of the policy's log std")
    log_std_max: float = option(2.0, "upper bound of the policy's log std")
    entropy_coef: float = option(1e-4, "entropy bonus of the policy loss", **_NONNEG)
    # critic
    num_bins: int = option(101, "two-hot bins of reward and value", **_POS_INT)
    vmin: float = option(-10.0, "lowest two-hot bin (symlog space)")
    vmax: float = option(10.0, "highest two-hot bin (symlog space)")
    # architecture
    model_size: int = option(
        None,
        "preset of the sizes below: 1, 5, 19, 48, 317 (millions of parameters); null: keep them",
        nullable=True,
        choices=tuple(MODEL_SIZE),
    )
    num_enc_layers: int = option(2, "encoder layers", **_POS_INT)
    enc_dim: int = option(256, "encoder width", **_POS_INT)
    num_channels: int = option(32, "conv channels of the pixel encoder", **_POS_INT)
    mlp_dim: int = option(512, "MLP width", **_POS_INT)
    latent_dim: int = option(512, "latent state size", **_POS_INT)
    task_dim: int = option(96, "task embedding size (multi-task; set from the task)", **_NONNEG)
    num_q: int = option(5, "Q-ensemble members", **_POS_INT)
    dropout: float = option(0.01, "dropout of the Q-networks", low=0, high=1)
    simnorm_dim: int = option(8, "SimNorm group size", **_POS_INT)
    # speed
    fused: bool = option(True, "fused LayerNorm+Mish and SimNorm CPU operators (same numbers, faster)")
    planning_dtype: str = option(
        "float32", "float32, or bfloat16: planners read a bf16 copy of the world model", choices=PLANNING_DTYPES
    )

    def limits(self, prefix=""):
        """`vmin` <= `vmax`, `log_std_min` <= `log_std_max`, `discount_min` <= `discount_max`."""
        for lo, hi in (("vmin", "vmax"), ("log_std_min", "log_std_max"), ("discount_min", "discount_max")):
            if getattr(self, lo) > getattr(self, hi):
                return f"{lo}={getattr(self, lo)} is above {hi}={getattr(self, hi)}: {lo} must be <= {hi}"
        return None


def complete(raw, overridden):
    """The official presets and heuristics, in a config dict: model_size's sizes (unless set on the command line),
    the task embedding size of a multi-task set, the two-hot bin size."""
    if raw["model_size"] is not None:
        size = raw["model_size"]
        raw.update({k: v for k, v in MODEL_SIZE[size].items() if k not in overridden})
        if raw["task"] == "mt30" and size == 19:
            raw["latent_dim"] = 512
    if raw["multitask"]:
        raw["task_dim"] = 96 if raw["task"] == "mt80" or raw["model_size"] in (1, 317) else 64
    else:
        raw["task_dim"] = 0
    raw["bin_size"] = (raw["vmax"] - raw["vmin"]) / (raw["num_bins"] - 1) if raw["num_bins"] > 1 else 0.0
    return raw


def discount(episode_length, cfg):
    """TD-MPC2's heuristic: longer episodes get a discount closer to 1."""
    frac = episode_length / cfg.discount_denom
    return min(max((frac - 1) / frac, cfg.discount_min), cfg.discount_max)
