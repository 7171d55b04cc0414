"""Updates/s and planning ms/step of the TD-MPC2 agent, for model sizes 1 and 5, as a table.

    python scripts/benchmark.py [--device cpu] [--sizes 1 5] [--threads 2] [--train-steps 300] [--json out.json]

update: batch 256, horizon 3 (synthetic data, the official defaults); mppi: act in eval mode at batch 1;
policy: policy-only act; train loop: env steps/s of the online trainer (act + env step + one update) on
cartpole-swingup with planner=dream after seeding, measured over --train-steps steps. --json writes the numbers
with the run's record under "meta" (bench_utils.provenance: command, date, commit, torch, CPU, threads, load average).
"""

import argparse
import json
import os
import time

import torch
from bench_utils import (
    build_agent,
    count_gflop,
    finished,
    floor_ms,
    markdown_table,
    matmul_peak_gflops,
    median_ms,
    provenance,
    synthetic_batch,
)
from outputs import output_file

from dream_mpc.errors import UserError


def train_loop_rate(threads, steps, device, overrides=(), planner="dream"):
    """Env steps/s of act + env.step + update at model size 1 on cartpole-swingup (after the seed phase)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from dream_mpc import config, runtime
    from dream_mpc.envs import make_env
    from dream_mpc.training.buffer import Buffer
    from tdmpc2.agent import TDMPC2

    cfg = config.load(
        [
            "task=cartpole-swingup",
            "model_size=1",
            f"planner={planner}",
            f"device={device}",
            f"threads={threads}",
            *overrides,
        ]
    )
    runtime.setup(cfg)
    env = make_env(cfg)
    agent, buffer = TDMPC2(cfg), Buffer(cfg)
    obs = env.reset()
    episode = [
        {
            "obs": obs,
            "action": torch.full((cfg.action_dim,), float("nan")),
            "reward": torch.tensor(float("nan")),
            "terminated": torch.tensor(float("nan")),
        }
    ]
    for _ in range(cfg.episode_length):  # one random episode so the buffer can be sampled
        a = env.rand_act()
        obs, r, done, info = env.step(a)
        episode.append({"obs": obs, "action": a, "reward": r, "terminated": torch.tensor(0.0)})
    buffer.add(episode)
    obs, t = env.reset(), 0
    for i in range(steps + 10):
        if i == 10:
            start = time.perf_counter()
        action = agent.act(obs, t0=t == 0, eval_mode=False)
        obs, r, done, info = env.step(action)
        agent.update(buffer)
        t = 0 if done else t + 1
        if done:
            obs = env.reset()
    return steps / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 5])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-steps", type=int, default=300, help="0 skips the training-loop measurement")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. fused=false")
    p.add_argument("--json", help="write the results here (an existing file needs --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    args = p.parse_args()
    try:  # before measuring: an existing (possibly tracked) file is not replaced by accident
        output_file(args.json, args.overwrite)
    except UserError as err:
        p.exit(2, f"error: {err}\n")
    torch.set_num_threads(args.threads)
    start, meta = time.perf_counter(), provenance(args.threads, args.device)
    results = {}
    peak = matmul_peak_gflops(args.device)  # float32: the update's products
    for size in args.sizes:
        agent = build_agent(size, args.device, planner="mppi", overrides=args.set)
        batch = synthetic_batch(agent)
        update_ms = median_ms(lambda: agent._update(*batch), args.device, warmup=5, repeats=15)
        obs = torch.randn(agent.cfg.obs_shape["state"][0])
        agent.act(obs, t0=True, eval_mode=True)
        mppi_ms = median_ms(lambda: agent.act(obs, eval_mode=True), args.device, warmup=3, repeats=10)
        gflop = {
            "update": count_gflop(lambda: agent._update(*batch)),
            "mppi": count_gflop(lambda: agent.act(obs, eval_mode=True)),
        }
        dtype = agent.cfg.get("planning_dtype", "float32")
        plan_peak = peak if dtype == "float32" else matmul_peak_gflops(args.device, dtype)
        agent.set_planner("policy")
        policy_ms = median_ms(lambda: agent.act(obs, eval_mode=True), args.device, warmup=10, repeats=100)
        results[size] = {
            "updates_per_s": 1e3 / update_ms,
            "mppi_ms": mppi_ms,
            "policy_ms": policy_ms,
            "update_gflop": gflop["update"],
            "mppi_gflop": gflop["mppi"],
            "update_floor_ms": floor_ms(gflop["update"], peak),
            "mppi_floor_ms": floor_ms(gflop["mppi"], plan_peak),
        }
    if args.train_steps and 1 in args.sizes:
        results[1]["train_env_steps_per_s"] = train_loop_rate(args.threads, args.train_steps, args.device, args.set)
    print(
        f"device {args.device}, {args.threads} threads; update batch 256 horizon 3; act at batch 1 in eval mode"
        + (f"; overrides {' '.join(args.set)}" if args.set else "")
    )
    print(
        f"matrix products now run at up to {peak:.0f} GFLOP/s (float32 1024x1024): 'floor' is the time of a call's "
        f"products at that rate"
    )
    rows = [
        [
            s,
            f"{r['updates_per_s']:.2f}",
            f"{r['update_gflop']:.1f} / {1e3 / r['update_floor_ms']:.1f}",
            f"{r['mppi_ms']:.1f}",
            f"{r['mppi_gflop']:.1f} / {r['mppi_floor_ms']:.0f}",
            f"{r['policy_ms']:.2f}",
            f"{r['train_env_steps_per_s']:.1f}" if "train_env_steps_per_s" in r else "-",
        ]
        for s, r in results.items()
    ]
    print(
        markdown_table(
            [
                "model size",
                "updates/s",
                "update GFLOP / ceiling updates/s",
                "MPPI ms/step",
                "MPPI GFLOP / floor ms",
                "policy ms/step",
                "train env steps/s (planner=dream)",
            ],
            rows,
        )
    )
    results["matmul_peak_gflops"] = peak
    if args.json:  # {"meta": provenance, "<model size>": {...}, "matmul_peak_gflops": ...}
        with open(args.json, "w") as f:
            json.dump({"meta": finished(meta, start), **results}, f, indent=2)


if __name__ == "__main__":
    main()
