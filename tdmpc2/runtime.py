"""Device, seeding and CPU threads: the run-time setup shared by train.py, evaluate.py and load_agent."""
import random

import numpy as np
import torch

from tdmpc2 import layers


def resolve_device(name="auto"):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        from tdmpc2.errors import UserError
        raise UserError(f"device={name} was asked for, but CUDA is not available here; use device=cpu or device=auto")
    return device


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def setup(cfg):
    """Seed, threads and kernels as the config asks."""
    set_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    layers.set_fused_activation(cfg.fused)
