"""Shared pieces of the benchmark scripts: building an agent on synthetic dims and timing calls."""

import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dream_mpc import reproducible_products

reproducible_products()  # the same bits at any CPU thread count (before MKL's first product)

import torch  # noqa: E402

from dream_mpc import config, runtime  # noqa: E402
from tdmpc2 import layers  # noqa: E402
from tdmpc2.agent import TDMPC2  # noqa: E402

# walker-walk's dims: a typical DMControl locomotion task
OBS_DIM, ACTION_DIM = 24, 6


def build_agent(model_size, device="cpu", planner="mppi", overrides=(), obs_dim=OBS_DIM, action_dim=ACTION_DIM):
    """A TD-MPC2 agent with random weights on walker-walk's dims. It acts at torch's thread count of the moment, as
    the tables say, unless the overrides ask for `plan_threads` (0: adaptive)."""
    if not any(o.startswith("plan_threads=") for o in overrides):
        overrides = [f"plan_threads={torch.get_num_threads()}", *overrides]
    cfg = config.load(
        [f"model_size={model_size}", f"device={device}", f"planner={planner}", "task=walker-walk", *overrides]
    )
    config.set_env_dims(cfg, (obs_dim,), action_dim, 500)
    apply_process_settings(cfg)
    return TDMPC2(cfg)


def apply_process_settings(cfg):
    """The settings that are process-wide rather than per agent (as runtime.setup applies them, without reseeding or
    touching the thread count): the fused operators' switch, and the allocator (one-way: once kept, glibc keeps freed
    memory for the rest of the process)."""
    layers.set_fused_activation(cfg.fused)
    if cfg.get("keep_freed_memory", False):
        runtime.keep_freed_memory()


def sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def median_ms(fn, device="cpu", warmup=5, repeats=20):
    """Median wall time of fn() in milliseconds, after warm-up calls (compilation, caches, allocator)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def count_gflop(fn):
    """Matrix-product GFLOP of one call of fn (forward and backward products; elementwise work not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def weight_megabytes(fn):
    """MB read from the larger operand of each matrix product in one call of fn: for a planner's few-row products
    that is the weights, the traffic that bounds them (each weight matrix counts once per use)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.__name__.split(".")[0] in ("mm", "bmm", "addmm"):
                a, b = args[-2:] if func.__name__.startswith("addmm") else args[:2]
                self.total += max(a.numel() * a.element_size(), b.numel() * b.element_size())
            return func(*args, **(kwargs or {}))

    with Count() as count:
        fn()
    return count.total / 1e6


def matmul_peak_gflops(device="cpu", dtype="float32", n=1024):
    """The dense product rate of this machine right now (GFLOP/s) in `dtype`, the ceiling for every product a
    planner or an update runs: measured in the same run, so a floor derived from it moves with the (shared) machine."""
    a, b = (torch.randn(n, n, device=device, dtype=getattr(torch, dtype)) for _ in range(2))
    return max(2 * n**3 / median_ms(lambda: a @ b, device, warmup=3, repeats=10) / 1e6 for _ in range(3))


def floor_ms(gflop, peak_gflops):
    """The time of the products alone if they ran at the machine's peak rate."""
    return 1e3 * gflop / peak_gflops


def synthetic_batch(agent, batch_size=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    H, A, dev = agent.cfg.horizon, agent.cfg.action_dim, agent.device
    obs = torch.randn(H + 1, batch_size, OBS_DIM, generator=g).to(dev)
    action = (torch.rand(H, batch_size, A, generator=g) * 2 - 1).to(dev)
    reward = torch.rand(H, batch_size, 1, generator=g).to(dev)
    return obs, action, reward, torch.zeros(H, batch_size, 1, device=dev)


def provenance(threads, device="cpu", argv=None):
    """What a result file records about its run, so that each number traces back to it: the command, the UTC date,
    the commit (and whether tracked files differed from it), torch's version, the CPU, the torch threads and the
    load average (1, 5, 15 min) before measuring: a load above the CPU count means other jobs shared the machine."""
    root = Path(__file__).resolve().parents[1]

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    argv = sys.argv if argv is None else argv
    script = Path(argv[0]).resolve()
    name = script.relative_to(root) if script.is_relative_to(root) else Path(argv[0])
    return {
        "command": shlex.join(["python", str(name), *argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": git("rev-parse", "--short", "HEAD").strip() or None,
        "uncommitted_changes": [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()],
        "torch": torch.__version__,
        "device": str(device),
        **_cpu(),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "threads": threads,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }


def finished(meta, start):
    """`meta` (from provenance) with the run's wall time since `start` (time.perf_counter()) and the load average
    after it."""
    return {
        **meta,
        "wall_s": round(time.perf_counter() - start, 1),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # the vector units the products and kernels use


def _cpu():
    """{cpu: model name, cpu_flags: those of CPU_FLAGS it has} (Linux's /proc/cpuinfo; elsewhere platform's name)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
    except OSError:
        return {"cpu": platform.processor() or platform.machine(), "cpu_flags": None}
    info = {k.strip(): v.strip() for k, v in info.items()}
    flags = set(info.get("flags", "").split())
    return {"cpu": info.get("model name", platform.machine()), "cpu_flags": [f for f in CPU_FLAGS if f in flags]}


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
