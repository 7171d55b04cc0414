"""The fused CPU kernels of cpu_kernels.cpp as PyTorch operators: `torch.ops.dream_mpc.*`.

    ln_mish(x, c, w, b) -> Mish(LayerNorm(x + c) * w + b)        x (E, N, D); c, w, b (E, D)
    ln_mish_backward(grad, x, c, w, b) -> (gx, gc, gw, gb)
    group_softmax(x) -> softmax over the last dim (1..MAX_GROUP)
    group_softmax_backward(grad, y) -> gx                          (y: group_softmax's output)

The C++ source is built with torch.utils.cpp_extension on first use (tens of seconds, once per machine: cached
under $DREAM_MPC_CACHE or torch's extension folder as `<name>.so`, the name keyed on the source, the flags, torch's
version and the CPU's flags, since -march=native code must not run on another CPU) and registers the schemas and the
CPU kernels (TORCH_LIBRARY). A start that finds the library loads it directly. A start that must build takes our
flock `<name>.lock` (concurrent first starts build once; the others wait, at most $DREAM_MPC_BUILD_TIMEOUT seconds,
then use the plain ops), builds in a private folder and renames the library into place: a start killed at any
moment leaves no lock that blocks the next ones (torch's own lock file lives and dies in the private folder).

This module then registers what PyTorch needs around them: fake implementations (torch.compile and FakeTensor trace
through them) and autograd (the forward op's backward calls the backward op). The dispatcher makes
them visible to torch.profiler by name. `available()` is False where no C++ compiler or ninja works; layers.py then
uses the plain ops.
"""

import contextlib
import hashlib
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).with_suffix(".cpp")
# No -ffast-math: it lets the compiler assume there are no NaN or inf, and a non-finite row must stay non-finite.
CFLAGS = ["-O3", "-march=native"]
OPENMP = ["-fopenmp"]  # torch's intra-op threads (at::parallel_for); without it (Apple's clang) one thread
MAX_GROUP = 64  # group_softmax's longest row (SimNorm groups are 8)
DTYPES = (torch.float32, torch.bfloat16)
BUILD_TIMEOUT = 600.0  # seconds a start waits for another process's build ($DREAM_MPC_BUILD_TIMEOUT), then plain ops
_state = {"loaded": False, "error": None}


def _machine_id():
    """-march=native code must not run on another CPU (a shared home directory): the CPU's flags join the key."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), platform.processor())
    except OSError:
        return platform.processor() + platform.machine()


def _cache_dirs():
    """Where the build is kept: $DREAM_MPC_CACHE, else torch's extension folder, else a per-user temp folder."""
    from torch.utils import cpp_extension

    if "DREAM_MPC_CACHE" in os.environ:
        yield Path(os.environ["DREAM_MPC_CACHE"])
    else:
        try:
            yield Path(cpp_extension.get_default_build_root())
        except (RuntimeError, KeyError):  # no home directory (some containers)
            pass
    temp = Path(tempfile.gettempdir()) / f"dream_mpc-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    try:  # a shared /tmp: only a folder of our own that no one else may write (a library in it gets loaded)
        st = temp.stat()
    except OSError:  # not there yet: the build makes it
        yield temp
        return
    if not hasattr(os, "getuid") or (st.st_uid == os.getuid() and not st.st_mode & 0o022):
        yield temp


def _find_tools(cxx):
    """The C++ compiler and ninja that cpp_extension runs, or a RuntimeError that says which is missing."""
    from torch.utils import cpp_extension

    if shutil.which(cxx) is None:
        raise RuntimeError(f"no C++ compiler: {cxx!r} not found (set CXX)")
    if not cpp_extension.is_ninja_available():
        try:  # the `ninja` package (a dependency) puts its binary beside the interpreter's scripts
            import ninja

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except ImportError:
            pass
        if not cpp_extension.is_ninja_available():
            raise RuntimeError("ninja not found (pip install ninja)")


def _build_name(cxx=None):
    """The build's name: the key of everything that changes the binary (the source, the compiler and its flags,
    torch's version, the CPU's flags)."""
    cxx = cxx or os.environ.get("CXX", "c++")
    key = hashlib.sha256(
        b"\0".join(
            [
                SOURCE.read_bytes(),
                " ".join([cxx, *CFLAGS, *OPENMP]).encode(),
                torch.__version__.encode(),
                _machine_id().encode(),
            ]
        )
    ).hexdigest()[:12]
    return f"dream_mpc_kernels_{key}"


def _library(folder, name):
    return folder / f"{name}{'.pyd' if os.name == 'nt' else '.so'}"


def _build_timeout():
    try:
        return float(os.environ.get("DREAM_MPC_BUILD_TIMEOUT", BUILD_TIMEOUT))
    except ValueError:
        return BUILD_TIMEOUT


class BuildBusy(RuntimeError):
    """Another live process held the build lock for longer than the timeout: the plain ops do the work."""


@contextlib.contextmanager
def _build_lock(folder, name):
    """Hold `<folder>/<name>.lock` (flock) while building: concurrent first starts then build once. flock, unlike
    torch's lock file, is released by the kernel however its holder dies (SIGKILL, a node's OOM killer), so no
    interrupted start can block the next ones. Waiting is bounded ($DREAM_MPC_BUILD_TIMEOUT) and said on stderr."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): builds stay private and correct, only not shared
        yield
        return
    path = folder / f"{name}.lock"
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            timeout = _build_timeout()
            print(
                f"dream_mpc: waiting for another process that is building the fused CPU operators in {folder} "
                f"(up to {timeout:.0f} s, $DREAM_MPC_BUILD_TIMEOUT)",
                file=sys.stderr,
                flush=True,
            )
            deadline = time.monotonic() + timeout
            while True:
                time.sleep(0.2)
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise BuildBusy(
                            f"another process has been building them in {folder} for over {timeout:.0f} s "
                            f"(it holds {path}; raise $DREAM_MPC_BUILD_TIMEOUT to wait longer)"
                        ) from None
        except OSError:  # a file system without flock (some network mounts): private builds, as above
            pass
        yield


def _load_built(library):
    """Load a finished build; False if there is none (or a file that does not load: it is rebuilt)."""
    if not library.is_file():
        return False
    try:
        torch.ops.load_library(str(library))
    except OSError:
        return False
    return True


def _build_private(folder, name, openmp):
    """Build in a folder of our own and move the library into place with one rename: a build killed at any point
    leaves only its private folder (removed by the next build), never a lock or a half-written library where the
    next start looks. Runs under _build_lock, so any other `<name>.build-*` folder is a dead builder's."""
    from torch.utils import cpp_extension

    for dead in folder.glob(f"{name}.build-*"):
        shutil.rmtree(dead, ignore_errors=True)
    private = Path(tempfile.mkdtemp(prefix=f"{name}.build-", dir=folder))
    try:
        cpp_extension.load(
            name=name,
            sources=[str(SOURCE)],
            extra_cflags=CFLAGS + openmp,
            extra_ldflags=openmp,
            build_directory=str(private),
            is_python_module=False,
            verbose=False,
        )
        os.replace(_library(private, name), _library(folder, name))  # the loaded library stays mapped
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _build():
    cxx = os.environ.get("CXX", "c++")
    base = _build_name(cxx)
    variants = [(base, OPENMP), (f"{base}_serial", [])]  # a compiler without OpenMP: one thread
    folders = list(_cache_dirs())
    for folder in folders:  # a finished build anywhere: no lock, no compiler, no ninja
        for name, _ in variants:
            if _load_built(_library(folder, name)):
                return
    _find_tools(cxx)
    errors = []
    for folder in folders:
        for name, openmp in variants:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                with _build_lock(folder, name):
                    if not _load_built(_library(folder, name)):  # else built by the process we waited for
                        _build_private(folder, name, openmp)
                return
            except BuildBusy:
                raise
            except Exception as err:  # a compiler without OpenMP, or a folder we may not write: try the next
                errors.append(f"{type(err).__name__}: {str(err).strip()[-600:]}")
    raise RuntimeError(f"building {SOURCE.name} with {cxx} failed: {errors[-1]}")


# ---------------------------------------------------------------- checks and fake implementations (shapes only)


def _check_storage(t, name, like):
    if t.dtype not in DTYPES:
        raise TypeError(f"dream_mpc: {name} must be float32 or bfloat16, got {t.dtype}")
    if t.dtype != like.dtype:
        raise TypeError(f"dream_mpc: {name} has dtype {t.dtype}, expected {like.dtype} (all inputs share one dtype)")
    if not t.is_contiguous():
        raise ValueError(f"dream_mpc: {name} must be contiguous")


def check_ln_mish(x, c, w, b):
    """The inputs ln_mish accepts: x (E, N, D); c, w, b (E, D); one dtype (float32 or bfloat16); contiguous."""
    if x.dim() != 3:
        raise ValueError(f"dream_mpc::ln_mish: x must be (E, N, D), got {tuple(x.shape)}")
    _check_storage(x, "x", x)
    E, _, D = x.shape
    for name, t in (("c", c), ("w", w), ("b", b)):
        if tuple(t.shape) != (E, D):
            raise ValueError(f"dream_mpc::ln_mish: {name} must be (E, D) = {(E, D)}, got {tuple(t.shape)}")
        _check_storage(t, name, x)


def check_group(x, name="x"):
    if x.dim() < 1 or not 1 <= x.shape[-1] <= MAX_GROUP:
        raise ValueError(
            f"dream_mpc::group_softmax: the last dim (the group) must be 1..{MAX_GROUP}, got shape {tuple(x.shape)}"
        )
    _check_storage(x, name, x)


def _ln_mish_fake(x, c, w, b):
    check_ln_mish(x, c, w, b)
    return torch.empty_like(x)


def _ln_mish_backward_fake(grad, x, c, w, b):
    check_ln_mish(x, c, w, b)
    if grad.shape != x.shape:
        raise ValueError(f"dream_mpc::ln_mish_backward: grad must have x's shape {tuple(x.shape)}")
    return torch.empty_like(x), torch.empty_like(c), torch.empty_like(w), torch.empty_like(b)


def _group_softmax_fake(x):
    check_group(x)
    return torch.empty_like(x)


def _group_softmax_backward_fake(grad, y):
    check_group(y, "y")
    if grad.shape != y.shape:
        raise ValueError(f"dream_mpc::group_softmax_backward: grad must have y's shape {tuple(y.shape)}")
    return torch.empty_like(y)


# ---------------------------------------------------------------- autograd (the backward ops)


def _ln_mish_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _ln_mish_grad(ctx, grad):
    x, c, w, b = ctx.saved_tensors
    return tuple(torch.ops.dream_mpc.ln_mish_backward(grad.to(x.dtype).contiguous(), x, c, w, b))


def _group_softmax_setup(ctx, inputs, output):
    ctx.save_for_backward(output)


def _group_softmax_grad(ctx, grad):
    (y,) = ctx.saved_tensors
    return torch.ops.dream_mpc.group_softmax_backward(grad.to(y.dtype).contiguous(), y)


def _register():
    lib = torch.library
    lib.register_fake("dream_mpc::ln_mish", _ln_mish_fake)
    lib.register_fake("dream_mpc::ln_mish_backward", _ln_mish_backward_fake)
    lib.register_fake("dream_mpc::group_softmax", _group_softmax_fake)
    lib.register_fake("dream_mpc::group_softmax_backward", _group_softmax_backward_fake)
    lib.register_autograd("dream_mpc::ln_mish", _ln_mish_grad, setup_context=_ln_mish_setup)
    lib.register_autograd("dream_mpc::group_softmax", _group_softmax_grad, setup_context=_group_softmax_setup)


def available():
    """True once the operators are built, loaded and registered (tried once per process; a failure warns once
    and is remembered)."""
    if not _state["loaded"] and _state["error"] is None:
        try:
            _build()
            _register()
            _state["loaded"] = True
        except Exception as err:  # no working C++ compiler or ninja: the plain PyTorch ops do the work
            _state["error"] = err
            warnings.warn(f"fused CPU kernels unavailable ({err}); using plain PyTorch ops")
    return _state["loaded"]


def supports(x):
    return x.device.type == "cpu" and x.dtype in DTYPES and available()


def ln_mish(x, c, w, b):
    """torch.ops.dream_mpc.ln_mish with Python's checks first (clear errors); layers.py calls the op directly."""
    check_ln_mish(x, c, w, b)
    if not available():
        raise RuntimeError(f"fused CPU kernels unavailable: {_state['error']}")
    return torch.ops.dream_mpc.ln_mish(x, c, w, b)


def group_softmax(x):
    check_group(x)
    if not available():
        raise RuntimeError(f"fused CPU kernels unavailable: {_state['error']}")
    return torch.ops.dream_mpc.group_softmax(x)
