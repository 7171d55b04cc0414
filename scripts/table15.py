"""The paper's table 15 on this machine: ms per acting step of every planner on a Dreamer agent at appendix D's
settings (acrobot-swingup from one 64x64 frame), beside the paper's RTX 4090 figures.

    python scripts/table15.py --threads 2 --json results/dreamer/table15.json [--checkpoint FILE] [--repeats 20]

A step is `agent.act(obs, eval_mode=True)`: encode the frames, filter them into the RSSM state, plan. Without
--checkpoint the agent has table 16's full sizes and random weights (the time of a step does not depend on the
weights); with one, the file's agent. Each planner runs at appendix D's settings, the Dreamer family's planner
defaults (no override): Dream-MPC 5 candidates x 1 iteration x horizon 15 with the lambda-return objective and
action noise 0.2, PlaNet's CEM and Grad-MPC 1000 x 10 x 12, hybrid Grad-MPC 1 x 10 x 1 at step 0.05. Reported:
the median and mean +- std over `--repeats` steps after 3 warm-up steps, the world-model evaluations per step each
planner declares, and Dream-MPC's speed-up. Run it on a quiet machine.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from bench_utils import markdown_table  # noqa: E402 (puts the repository on sys.path and sets MKL_CBWR)
from benchmark_planners import model_evaluations  # noqa: E402
from outputs import output_file  # noqa: E402

from dream_mpc import config  # noqa: E402
from dream_mpc.errors import UserError  # noqa: E402
from dream_mpc.registry import agents  # noqa: E402

# every planner at appendix D's settings: the Dreamer family's own planner defaults (dreamer/family.py APPENDIX_D:
# Dream-MPC 5 x 1 x 15 with the lambda-return and sigma_a = 0.2, hybrid 1 x 10 x 1, CEM and Grad-MPC 1000 x 10 x 12),
# so no planner needs an override here; `--set key=value` adds overrides to every planner
PLANNERS = ("policy", "dream", "hybrid", "cem", "cem_policy", "grad")
PAPER_MS = {"cem": (31.10, 0.65), "grad": (195.75, 1.33), "hybrid": (23.16, 0.55), "dream": (44.86, 0.60)}
PAPER_NAMES = {"cem": "PlaNet (CEM)", "grad": "Grad-MPC", "hybrid": "Hybrid Grad-MPC", "dream": "Dream-MPC (Dreamer)"}


def build(name, checkpoint, device, extra=()):
    """A Dreamer agent acting with `name` at its appendix-D settings, and an acrobot-swingup pixel observation."""
    overrides = [f"planner={name}", f"device={device}", *extra]
    if checkpoint:
        from dream_mpc.checkpoint import load_agent

        agent = load_agent(checkpoint, device=device, overrides=overrides)
    else:
        cfg = config.load(["agent=dreamer", "task=acrobot-swingup", "obs=rgb", *overrides])
        config.set_env_dims(cfg, (3, 64, 64), 1, 500)  # one 64x64 frame, as the paper's Dreamer
        agent = agents.get("dreamer")(cfg)
    shape = agent.cfg.obs_shape[agent.cfg.obs]
    obs = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return agent, obs


def step_times(agent, obs, repeats, warmup=3):
    """Seconds of each of `repeats` acting steps after `warmup` (one episode: t0 at the first)."""
    agent.act(obs, t0=True, eval_mode=True)
    for _ in range(warmup):
        agent.act(obs, t0=False, eval_mode=True)
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        agent.act(obs, t0=False, eval_mode=True)
        out.append(time.perf_counter() - start)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="a Dreamer checkpoint (default: table 16's sizes, random weights)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=20, help="timed steps per planner (the slow ones: a quarter)")
    p.add_argument("--planners", nargs="+", default=list(PLANNERS), choices=list(PLANNERS))
    p.add_argument("--set", nargs="*", default=[], help="config overrides for every planner (default: none)")
    p.add_argument("--json", help="write the measurements here")
    p.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    args = p.parse_args()
    try:
        output_file(args.json, args.overwrite)
    except UserError as err:
        p.exit(2, f"error: {err}\n")
    torch.set_num_threads(args.threads)
    results = {}
    for name in args.planners:
        agent, obs = build(name, args.checkpoint, args.device, args.set)
        slow = name in ("cem", "cem_policy", "grad")
        seconds = step_times(agent, obs, max(3, args.repeats // 4) if slow else args.repeats, warmup=1 if slow else 3)
        ms = [1000 * s for s in seconds]
        results[name] = {
            "median_ms": statistics.median(ms),
            "mean_ms": statistics.fmean(ms),
            "std_ms": statistics.stdev(ms) if len(ms) > 1 else 0.0,
            "steps": len(ms),
            "model_evaluations": model_evaluations(agent.cfg, name),
            "settings": {  # the effective options it ran with (the family's defaults and any --set)
                k: v for k, v in agent.planner.effective_config().items() if k != "discount"
            },
        }
        print(f"{name}: median {results[name]['median_ms']:.1f} ms over {len(ms)} steps", flush=True)
    dream = results.get("dream", {}).get("median_ms")
    rows = []
    for name, r in results.items():
        paper = PAPER_MS.get(name)
        rows.append(
            [
                PAPER_NAMES.get(name, name),
                f"{r['median_ms']:.1f}",
                f"{r['mean_ms']:.1f} ± {r['std_ms']:.1f}",
                f"{r['model_evaluations']:,}",
                f"{r['median_ms'] / dream:.1f}x" if dream else "-",
                f"{paper[0]:.2f} ± {paper[1]:.2f}" if paper else "-",
            ]
        )
    params = sum(p.numel() for m in agent.dreamer.model_modules for p in m.parameters())
    print(
        f"\nDreamer {'(' + args.checkpoint + ')' if args.checkpoint else '(table 16 sizes, random weights)'}: "
        f"{params:,} world-model parameters, obs {tuple(obs.shape)} uint8, {args.device}, {args.threads} threads, "
        f"batch 1"
    )
    print(
        markdown_table(
            [
                "planner (appendix D settings)",
                "median ms / step",
                "mean ± std ms",
                "model evals / step",
                "time vs Dream-MPC",
                "paper, RTX 4090 (ms)",
            ],
            rows,
        )
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "checkpoint": args.checkpoint,
            "device": args.device,
            "threads": args.threads,
            "torch": torch.__version__,
            "world_model_parameters": params,
        }
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "planners": results}, f, indent=2)


if __name__ == "__main__":
    main()
