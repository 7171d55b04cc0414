"""The memory a pixel replay buffer takes, measured by filling one: bytes per step and the process's memory.

    python scripts/buffer_memory.py [--steps 1000000] [--agents dreamer tdmpc2] \\
        [--json results/dreamer/buffer_memory.json]

Per agent family, a real cartpole-swingup episode from 64 x 64 pixels (the family's frame count: Dreamer reads one
frame, TD-MPC2 stacks three) is added to the family's training buffer again and again until it holds --steps
steps. The script records the buffer's bytes (`Buffer.nbytes`, every stored field), the bytes per step, and the
process's resident memory before and after and at its peak (Linux's VmHWM, restarted per family), so the peak
while the ring grows (it doubles its allocation, copying the old rows) is measured too. Prints a line per family
and writes a JSON (--json; an existing file is replaced only with --overwrite). A 1M-step run needs about 20 GB of
free memory.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from bench_utils import provenance  # noqa: E402
from outputs import output_file  # noqa: E402

from dream_mpc import config  # noqa: E402
from dream_mpc.envs import make_env  # noqa: E402
from dream_mpc.errors import run_cli  # noqa: E402
from dream_mpc.registry import agents  # noqa: E402
from dream_mpc.training.buffer import Buffer  # noqa: E402

GB = 1e9


def _status_bytes(field):
    """VmRSS or VmHWM (the peak) of this process, in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def episode_of(cfg):
    """One real episode of the configured task as the trainer stores it (observations as the env returns them)."""
    env = make_env(cfg)
    obs = [env.reset()]
    for _ in range(cfg.episode_length):
        obs.append(env.step(env.rand_act())[0])
    n = len(obs)
    action_dim = env.rand_act().shape[-1]
    episode = {
        "obs": torch.stack(obs),
        "action": torch.zeros(n, action_dim),
        "reward": torch.zeros(n),
        "terminated": torch.zeros(n),
    }
    return episode, env.frame_stack


def measure(agent, steps):
    cfg = config.load([f"agent={agent}", "task=cartpole-swingup", "obs=rgb", f"steps={steps}", f"buffer_size={steps}"])
    episode, frame_stack = episode_of(cfg)
    family = agents.get(agent)
    rss_before = _status_bytes("VmRSS")
    start = time.perf_counter()
    buf = Buffer(cfg, family.sequence_length(cfg), family.batch_size(cfg), frame_stack)
    while len(buf) < steps:
        buf.add(episode)
    seconds = time.perf_counter() - start
    batch = buf.sample()  # the buffer works at this size
    out = {
        "agent": agent,
        "frame_stack": frame_stack,
        "obs_shape_from_env": list(episode["obs"].shape[1:]),  # stacked frames are stored once each
        "obs_shape_sampled": list(batch["obs"].shape[-3:]),
        "steps": len(buf),
        "buffer_bytes": int(buf.nbytes),
        "bytes_per_step": buf.nbytes / len(buf),
        "rss_before_bytes": rss_before,
        "rss_after_bytes": _status_bytes("VmRSS"),
        "fill_seconds": seconds,
    }
    del buf, batch
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1_000_000, help="steps the buffer holds at the end")
    p.add_argument("--agents", nargs="+", default=["dreamer", "tdmpc2"])
    p.add_argument("--json", help="write the results here")
    p.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    args = p.parse_args(argv)
    output_file(args.json, args.overwrite)
    runs = []
    for agent in args.agents:
        Path("/proc/self/clear_refs").write_text("5")  # restart the peak (VmHWM) at the current resident memory
        r = measure(agent, args.steps)
        r["peak_rss_bytes"] = _status_bytes("VmHWM")
        runs.append(r)
        used, peak = r["rss_after_bytes"] / GB, r["peak_rss_bytes"] / GB
        print(
            f"{agent}: {r['steps']:,} steps, {r['bytes_per_step']:,.0f} bytes a step, buffer "
            f"{r['buffer_bytes'] / GB:.2f} GB, process {used:.2f} GB (peak {peak:.2f} GB), filled in "
            f"{r['fill_seconds']:.0f} s",
            flush=True,
        )
    result = {
        **provenance(torch.get_num_threads(), "cpu", argv=None if argv is None else [__file__, *argv]),
        "memory_total_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "runs": runs,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
