"""How far the anytime mode (`dream.budget_ms`) runs past its budget, on a quiet machine and with one core busy.

    python scripts/budget_overrun.py [--checkpoint agents/walker-walk-tdmpc2-1M.pt] [--budget-ms 4 20] \\
        [--steps 1000] [--warmup 10] [--threads 1] [--conditions quiet busy] [--json results/budget/overrun.json] \\
        [--overwrite]

Per condition and budget B, the bundled walker agent plans with `planner=dream dream.budget_ms=B` for --warmup +
--steps environment steps (a fresh agent each time, so each run has its own warm-up). Per plan it records the time
of the planner's `plan` call (the budget counts from its entry), the gradient iterations taken and the time of
each. Over the steps after the warm-up it reports the overrun (plan time - budget, ms: median, 99th percentile,
max), the median plan time against the budget plus one steady iteration (the median iteration time), the
iterations per plan and, for the warm-up, the first plan's time and the plans that took a probe step.

`busy`: the script starts one busy-loop process (a core spinning in Python) before the condition and stops it
after, so another process competes for the CPU as on a shared machine. `quiet` means nothing of this script's own
besides the planner: on a machine shared with other jobs the numbers carry their load too (the JSON records the
load average before each condition; rerun on a quiet machine for clean numbers).
Prints a table and writes a JSON (--json; a file git tracks is replaced only with --overwrite).
"""

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dream_mpc import reproducible_products

reproducible_products()  # the same bits at any CPU thread count (before MKL's first product)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dream_mpc import bundled_agent  # noqa: E402
from dream_mpc.errors import UserError, run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = "results/budget/overrun.json"


def _spin():
    while True:
        pass


class BusyCore:
    """One process spinning on a core for the duration of a `with` block (started and stopped by this script)."""

    def __enter__(self):
        self.proc = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
        self.proc.start()
        time.sleep(0.5)  # let it take its core
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.join(timeout=5)


class PlanTimer:
    """Wraps `planner.plan`: per call, its wall time and the search it made (read, never changed)."""

    def __init__(self, planner, device):
        self.planner, self.device, self.plans = planner, device, []
        self._inner = planner.plan
        planner.plan = self._plan

    def _plan(self, *args, **kwargs):
        tic = time.perf_counter()
        result = self._inner(*args, **kwargs)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - tic
        s = self.planner.last_search
        self.plans.append(
            {
                "plan_ms": seconds * 1000,
                "iterations": s.iterations,
                "iteration_ms": [x * 1000 for x in s.iteration_times],
                "known_iteration_ms": s.known_iteration_s * 1000,
            }
        )
        return result


def measure(checkpoint, budget_ms, steps, warmup, device="cpu"):
    """The plans of one condition: warm-up + steps environment steps with a fresh agent; returns its statistics."""
    from dream_mpc.checkpoint import load_agent
    from dream_mpc.envs import make_env

    agent = load_agent(checkpoint, device=device, overrides=["planner=dream", f"dream.budget_ms={budget_ms}"])
    env = make_env(agent.cfg)
    torch.manual_seed(1)  # the planner's noise and the env's initial states: the same episodes for every condition
    env.set_rng_state(np.random.RandomState(1).get_state())
    timer = PlanTimer(agent.planner, agent.device)
    obs, first = env.reset(), True
    for _ in range(warmup + steps):
        obs, _, done, _ = env.step(agent.act(obs, t0=first, eval_mode=True))
        first = False
        if done:
            obs, first = env.reset(), True
    return statistics(timer.plans, budget_ms, warmup)


def statistics(plans, budget_ms, warmup):
    """Overrun and iteration statistics of the plans after the first `warmup`, plus what the warm-up did."""
    steady = plans[warmup:]
    plan_ms = np.array([p["plan_ms"] for p in steady])
    over = plan_ms - budget_ms
    iteration_ms = np.array([x for p in steady for x in p["iteration_ms"]])
    # one steady iteration: the median of those timed after the warm-up, else the planner's own estimate
    one = (
        float(np.median(iteration_ms))
        if len(iteration_ms)
        else float(np.median([p["known_iteration_ms"] for p in steady]))
    )
    iterations = np.array([p["iterations"] for p in steady])
    return {
        "steps": len(steady),
        "overrun_ms": {
            "p50": float(np.median(over)),
            "p99": float(np.quantile(over, 0.99)),
            "max": float(over.max()),
        },
        "plan_ms": {"median": float(np.median(plan_ms)), "max": float(plan_ms.max())},
        "iteration_ms": {
            "median": one,
            "timed": int(len(iteration_ms)),
            "planner_estimate_median": float(np.median([p["known_iteration_ms"] for p in steady])),
        },
        "budget_plus_one_iteration_ms": budget_ms + one,
        "median_within_budget_plus_one_iteration": bool(np.median(plan_ms) <= budget_ms + one),
        "iterations_per_plan": {
            "mean": float(iterations.mean()),
            "min": int(iterations.min()),
            "max": int(iterations.max()),
            "plans_without_step": int((iterations == 0).sum()),
        },
        "warmup": {
            "steps": warmup,
            "plan_ms": [round(p["plan_ms"], 2) for p in plans[:warmup]],
            "iterations": [p["iterations"] for p in plans[:warmup]],
        },
    }


def table(result):
    lines = [
        "| condition | budget (ms) | steps | overrun p50 / p99 / max (ms) | plan median (ms) "
        "| budget + one iteration (ms) | iterations / plan (plans without a step) | first plan (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        name, budget = r["condition"], r["budget_ms"]
        o, it = r["overrun_ms"], r["iterations_per_plan"]
        first = r["warmup"]["plan_ms"][0] if r["warmup"]["plan_ms"] else float("nan")
        lines.append(
            f"| {name} | {budget:g} | {r['steps']} | {o['p50']:+.2f} / {o['p99']:+.2f} / {o['max']:+.2f} | "
            f"{r['plan_ms']['median']:.2f} | {budget:g} + {r['iteration_ms']['median']:.2f} = "
            f"{r['budget_plus_one_iteration_ms']:.2f} | {it['mean']:.2f} ({it['plans_without_step']}) | {first:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(bundled_agent("walker-walk-tdmpc2-1M").relative_to(ROOT)))
    p.add_argument("--budget-ms", type=float, nargs="+", default=[4.0], help="one run per budget and condition")
    p.add_argument("--steps", type=int, default=1000, help="environment steps measured per condition")
    p.add_argument("--warmup", type=int, default=10, help="steps run first and left out of the statistics")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    p.add_argument("--conditions", nargs="+", default=["quiet", "busy"], choices=["quiet", "busy"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=DEFAULT_JSON)
    p.add_argument("--overwrite", action="store_true", help="replace a JSON file that git tracks")
    args = p.parse_args(argv)
    if not Path(args.checkpoint).is_file():
        raise UserError(f"checkpoint not found: {args.checkpoint}")
    if min(args.budget_ms) <= 0 or args.steps < 1 or args.warmup < 0:
        raise UserError("--budget-ms must be > 0, --steps >= 1 and --warmup >= 0")
    out = Path(args.json)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import report  # its Writer refuses to replace a tracked file without --overwrite

    writer = report.Writer(out.parent, overwrite=args.overwrite)
    writer.path(out.name)  # fails now, before the measurement, when the file is tracked
    if args.threads:
        torch.set_num_threads(args.threads)
    from bench_utils import provenance  # the command, date, commit, machine and load of the run

    run_argv = None if argv is None else [__file__, *argv]
    result = {"checkpoint": args.checkpoint, **provenance(torch.get_num_threads(), args.device, run_argv), "runs": []}
    for name in args.conditions:
        for budget in args.budget_ms:
            load = os.getloadavg()[0]
            print(f"{name}: {args.warmup} + {args.steps} steps at dream.budget_ms={budget:g} ...", flush=True)
            if name == "busy":
                with BusyCore():
                    r = measure(args.checkpoint, budget, args.steps, args.warmup, args.device)
            else:
                r = measure(args.checkpoint, budget, args.steps, args.warmup, args.device)
            result["runs"].append({"condition": name, "budget_ms": budget, "load_average_before": load, **r})
    result["table_md"] = table(result)
    writer.text(out.name, json.dumps(result, indent=2) + "\n")
    print(result["table_md"])
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
