"""Device, seeding and CPU threads: the run-time setup shared by train.py, evaluate.py and load_agent."""

import ctypes
import ctypes.util
import random

import numpy as np
import torch


def resolve_device(name="auto"):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        from dream_mpc.errors import UserError

        raise UserError(f"device={name} was asked for, but CUDA is not available here; use device=cpu or device=auto")
    return device


def ensure_writable(folder, what):
    """Create `folder` and check that a file can be written in it, before any work is done: a run must not spend
    hours and then fail to save. A UserError names the folder, the reason and the key to change."""
    import os
    import tempfile
    from pathlib import Path

    from dream_mpc.errors import UserError

    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"cannot write {what} to {folder}: {err.strerror or err}; choose another folder") from None
    return Path(folder)


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


# glibc's mallopt parameters and our values: blocks up to 64 MiB come from the heap, and up to 512 MiB of freed
# memory at the heap's top stays there for reuse.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MALLOC_OPTIONS = {_M_MMAP_THRESHOLD: 64 << 20, _M_TRIM_THRESHOLD: 512 << 20}
_malloc = {"tuned": False}


def keep_freed_memory():
    """Let glibc keep freed memory for reuse instead of returning it to the OS (process-wide, once).

    With glibc's adaptive defaults, an update's large intermediates (MiBs each) went back to the OS after every
    update and came back as fresh pages: ~8,600 page faults per model-size-1 update, ~15 % of its time. Kept, the
    faults are gone (~50 per update); the price is that the resident memory stays at its peak. No-op off glibc.
    Opt-in: `setup(cfg)` calls it when the config says `keep_freed_memory: true` (constructing an agent never does)."""
    if _malloc["tuned"]:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _malloc["tuned"] = all(libc.mallopt(k, v) == 1 for k, v in _MALLOC_OPTIONS.items())
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows): nothing to tune
        pass
    return _malloc["tuned"]


def setup(cfg):
    """Seed, threads and (opt-in, `keep_freed_memory=true`) the allocator as the config asks."""
    set_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.get("keep_freed_memory", False):
        keep_freed_memory()
