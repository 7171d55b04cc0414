"""The fused CPU kernels of cpu_kernels.c (LayerNorm+Mish forward/backward, small-group softmax).

Built with the system's C compiler on first use (~0.3 s), cached per machine and source, and called through ctypes
(a few microseconds a call). `available()` is False where no compiler works; layers.py then uses the plain ops.
"""
import ctypes
import hashlib
import os
import platform
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).with_suffix(".c")
FLAGS = ["-O3", "-march=native", "-ffast-math", "-shared", "-fPIC"]  # fast-math: vectorised expf (libmvec)
MAX_GROUP = 64  # the softmax kernel's largest row (SimNorm groups are 8)
_state = {"lib": None, "error": None}

_P, _I64, _INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
_SIGNATURES = {
    "ln_mish_fwd": [_P] * 6 + [_I64] * 3 + [_INT],
    "ln_mish_bwd": [_P] * 10 + [_I64] * 3 + [_INT],
    "softmax_fwd": [_P] * 2 + [_I64] * 2 + [_INT],
    "softmax_bwd": [_P] * 3 + [_I64] * 2 + [_INT],
}
_SUFFIX = {torch.float32: "f32", torch.bfloat16: "bf16"}


def _machine_id():
    """-march=native code must not run on another CPU (a shared home directory): the CPU's flags join the key."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), platform.processor())
    except OSError:
        return platform.processor() + platform.machine()


def _cache_dirs():
    """Where the built library is kept: $DREAM_MPC_CACHE or ~/.cache/dream_mpc, else a per-user temp folder."""
    if "DREAM_MPC_CACHE" in os.environ:
        yield Path(os.environ["DREAM_MPC_CACHE"])
    else:
        try:
            yield Path.home() / ".cache" / "dream_mpc"
        except RuntimeError:  # no home directory (some containers)
            pass
    yield Path(tempfile.gettempdir()) / f"dream_mpc-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def _compile(cc, target):
    errors = []
    for extra in (["-fopenmp"], []):  # without OpenMP (e.g. Apple's clang) the kernels run on one thread
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        run = subprocess.run([cc, *FLAGS, *extra, str(SOURCE), "-o", str(tmp), "-lm"], capture_output=True, text=True)
        if run.returncode == 0:
            os.replace(tmp, target)  # atomic: a concurrent first use never loads a half-written library
            return
        errors.append(run.stderr.strip())
    raise RuntimeError(f"{cc} failed: {errors[-1][:500]}")


def _load():
    cc = os.environ.get("CC", "cc")
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join([cc, *FLAGS, _machine_id()]).encode()).hexdigest()[:16]
    last = None
    for folder in _cache_dirs():
        target = folder / f"cpu_kernels-{key}.so"
        try:
            if not target.exists():
                folder.mkdir(parents=True, exist_ok=True)
                _compile(cc, target)
            lib = ctypes.CDLL(str(target))
            break
        except (OSError, RuntimeError) as err:
            last = err
    else:
        raise RuntimeError(last)
    for name, argtypes in _SIGNATURES.items():
        for suffix in _SUFFIX.values():
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes, fn.restype = argtypes, None
    return lib


def available():
    """True once the kernels are built and loaded (tried once per process; a failure warns and is remembered)."""
    if _state["lib"] is None and _state["error"] is None:
        try:
            _state["lib"] = _load()
        except Exception as err:  # no working C compiler: the plain PyTorch ops do the work
            _state["error"] = err
            warnings.warn(f"fused CPU kernels unavailable ({err}); using plain PyTorch ops")
    return _state["lib"] is not None


def supports(x):
    return x.device.type == "cpu" and x.dtype in _SUFFIX and available()


def _fn(name, dtype):
    return getattr(_state["lib"], f"{name}_{_SUFFIX[dtype]}")


def _per_feature(E, D, dtype, *tensors):
    """Per-feature tensors (..., D) broadcast over rows -> contiguous (E, D) in the kernel's dtype."""
    return [t if t.dtype == dtype and t.numel() == E * D and t.is_contiguous()  # the usual case, free
            else t.detach().to(dtype).reshape(-1, D).expand(E, D).contiguous() for t in tensors]


def ln_mish_forward(x, c, w, b):
    """x (E, N, D); c, w, b (E, 1, D) or (D,) -> Mish(LayerNorm(x + c) * w + b) (E, N, D), and rstd (E, N) (float32)."""
    x = x.contiguous()
    E, N, D = x.shape
    c, w, b = _per_feature(E, D, x.dtype, c, w, b)
    out, rstd = torch.empty_like(x), torch.empty(E, N)
    _fn("ln_mish_fwd", x.dtype)(x.data_ptr(), c.data_ptr(), w.data_ptr(), b.data_ptr(), out.data_ptr(),
                                rstd.data_ptr(), E, N, D, torch.get_num_threads())
    return out, rstd


def ln_mish_backward(g, x, c, w, b, rstd):
    """The gradients of ln_mish_forward for its output's gradient g: gx (E, N, D), and gc, gw, gb (E, 1, D)."""
    E, N, D = x.shape
    g = g.to(x.dtype).reshape(E, N, D).contiguous()
    c, w, b = _per_feature(E, D, x.dtype, c, w, b)
    gx, gc, gw, gb = torch.empty_like(x), x.new_empty(E, 1, D), x.new_empty(E, 1, D), x.new_empty(E, 1, D)
    _fn("ln_mish_bwd", x.dtype)(g.data_ptr(), x.data_ptr(), c.data_ptr(), w.data_ptr(), b.data_ptr(),
                                rstd.data_ptr(), gx.data_ptr(), gc.data_ptr(), gw.data_ptr(), gb.data_ptr(),
                                E, N, D, torch.get_num_threads())
    return gx, gc, gw, gb


def softmax_forward(x):
    """Softmax over the last dim (<= MAX_GROUP) of x (..., K)."""
    x = x.contiguous()
    y = torch.empty_like(x)
    K = x.shape[-1]
    _fn("softmax_fwd", x.dtype)(x.data_ptr(), y.data_ptr(), x.numel() // K, K, torch.get_num_threads())
    return y


def softmax_backward(g, y):
    g = g.to(y.dtype).contiguous()
    gx = torch.empty_like(y)
    K = y.shape[-1]
    _fn("softmax_bwd", y.dtype)(g.data_ptr(), y.data_ptr(), gx.data_ptr(), y.numel() // K, K, torch.get_num_threads())
    return gx
