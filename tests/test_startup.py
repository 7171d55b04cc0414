"""Start-up survives interruption: the fused CPU operators (tdmpc2/cpu_kernels.py) are built on a first start, and a
start killed during that build, a lock file left behind, or several first starts at once never make a later start
wait forever. Each test builds into its own empty cache folder ($DREAM_MPC_CACHE) in a child process."""

import fcntl
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import CHILD_ENV

from tdmpc2 import cpu_kernels

# a start that loads the operators and prints whether it has them and a digest of one fused op's output
START = """
import hashlib, sys, torch
from tdmpc2 import cpu_kernels
ok = cpu_kernels.available()
x = torch.linspace(-3, 3, 2 * 5 * 16).reshape(2, 5, 16)
c, w, b = torch.linspace(-1, 1, 32).reshape(2, 16), torch.ones(2, 16), torch.zeros(2, 16)
y = torch.ops.dream_mpc.ln_mish(x, c, w, b) if ok else None
print(ok, hashlib.sha256(y.numpy().tobytes()).hexdigest() if ok else cpu_kernels._state["error"], flush=True)
"""
BUILD_TIME = 300  # s: a build takes ~15 s on 2 idle cores; a start that hangs on a stale lock never ends


def start_env(tmp_path, **extra):
    # TMPDIR: the fallback cache folder (a per-user temp folder) is the test's own too
    return {**CHILD_ENV, "DREAM_MPC_CACHE": str(tmp_path / "cache"), "TMPDIR": str(tmp_path), **extra}


def start(tmp_path, **extra):
    return subprocess.Popen(
        [sys.executable, "-c", START],
        env=start_env(tmp_path, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the test can kill the compilers it started too
    )


def finish(proc, timeout=BUILD_TIME):
    """The start's stdout and stderr once it ends; killed with its compilers if it is still running after timeout."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, err = proc.communicate()
        pytest.fail(f"a start did not end within {timeout} s (waiting for a lock?): {err[-2000:]}")
    assert proc.returncode == 0, err[-2000:]
    return out, err


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def name():
    return cpu_kernels._build_name()


@pytest.mark.slow
def test_a_lock_left_by_a_killed_start_does_not_block_the_next(tmp_path, name):
    """What a start killed during its build leaves (SIGKILL: no handler runs): torch's lock file in the folder it built
    in, half its outputs, and our lock file (unlocked: the kernel released it with the process). The next start builds,
    loads the operators and clears the dead build."""
    cache = tmp_path / "cache"
    for folder in (cache / f"{name}.build-dead", cache / name):  # ours, and the folder of the old layout
        folder.mkdir(parents=True)
        os.close(os.open(folder / "lock", os.O_CREAT | os.O_EXCL))  # as torch's FileBaton creates it
        (folder / "cpu_kernels.o").write_bytes(b"\x7fELF half")
    (cache / f"{name}.lock").touch()
    out, _ = finish(start(tmp_path))
    assert out.startswith("True "), out
    assert (cache / f"{name}.so").is_file() and not (cache / f"{name}.build-dead").exists()


@pytest.mark.slow
def test_a_start_killed_during_its_build_then_the_next_completes(tmp_path, name):
    """A real first start, killed (SIGKILL to the Python process alone, as `kill -9 <pid>` does: ninja and the compiler
    it started go on as orphans) while it builds; the next start completes, and the one after loads the library."""
    cache = tmp_path / "cache"
    first = start(tmp_path)
    try:
        deadline = time.time() + BUILD_TIME
        while not any(cache.rglob("build.ninja")):  # torch wrote its build file: ninja and the compiler are running
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.time() < deadline, "the first start never began its build"
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        assert any(cache.rglob("lock")), "the killed start left no lock file: the test no longer tests what it says"
        out, _ = finish(start(tmp_path))
        assert out.startswith("True "), out
    finally:
        _kill_group(first.pid)  # the orphaned compilers, if still running
    again, err = finish(start(tmp_path), timeout=120)
    assert again == out and "waiting" not in err


@pytest.mark.slow
def test_concurrent_first_starts_build_once_and_all_complete(tmp_path):
    """Four first starts at once on an empty cache folder: one builds, the others wait for it (saying so) and load its
    library; all four have the operators and compute the same bits."""
    procs = [start(tmp_path) for _ in range(4)]
    try:
        results = [finish(p) for p in procs]
    finally:
        for p in procs:
            _kill_group(p.pid)
    outs = {out for out, _ in results}
    assert len(outs) == 1 and next(iter(outs)).startswith("True "), outs
    cache = tmp_path / "cache"
    assert [p.suffix for p in cache.glob("dream_mpc_kernels_*") if p.suffix != ".lock"] == [".so"]  # no build left
    for _, err in results:  # a waiting start says once what it waits for
        assert err.count("waiting for another process") <= 1


def test_a_start_waits_a_bounded_time_for_a_live_builder_then_uses_the_plain_ops(tmp_path, name):
    """Another live process holds the build lock (a build in progress elsewhere): a start says on one line what it
    waits for, and after $DREAM_MPC_BUILD_TIMEOUT seconds goes on with the plain ops and a warning, instead of
    hanging or building a second time."""
    cache = tmp_path / "cache"
    cache.mkdir()
    with open(cache / f"{name}.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        began = time.time()
        out, err = finish(start(tmp_path, DREAM_MPC_BUILD_TIMEOUT="1"), timeout=120)
    assert out.startswith("False ") and "over 1 s" in out, out
    waiting = [line for line in err.splitlines() if "waiting for another process" in line]
    assert len(waiting) == 1 and str(cache) in waiting[0] and "fused CPU operators" in waiting[0], err
    assert "fused CPU kernels unavailable" in err and "using plain PyTorch ops" in err
    assert not list(cache.glob("*.so")) and time.time() - began < 60


def test_a_temp_folder_others_may_write_is_not_a_cache(tmp_path, monkeypatch):
    """The last-resort cache is a per-user folder in the temp folder: one that others may write (a library planted
    there would be loaded) is passed over; a missing one is made by the build."""
    monkeypatch.setenv("DREAM_MPC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_kernels.tempfile, "gettempdir", lambda: str(tmp_path))
    temp = tmp_path / f"dream_mpc-{os.getuid()}"
    assert list(cpu_kernels._cache_dirs()) == [tmp_path / "cache", temp]
    temp.mkdir()
    temp.chmod(0o777)
    assert list(cpu_kernels._cache_dirs()) == [tmp_path / "cache"]
    temp.chmod(0o700)
    assert list(cpu_kernels._cache_dirs()) == [tmp_path / "cache", temp]
