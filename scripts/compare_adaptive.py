"""Adaptive planning (dream_mpc/adaptive.py) against Dream-MPC's fixed step, and the anytime mode's real overrun.

    python scripts/compare_adaptive.py --checkpoints agents/cartpole-swingup-*-1M.pt agents/walker-walk-*-1M.pt \\
        --seeds 3 --episodes 1 --out results/adaptive [--variants "label=dream.key=value[,...]" ...] [--overwrite]
    python scripts/compare_adaptive.py --overrun agents/walker-walk-tdmpc2-1M.pt --budget-ms 5 --steps 300 \\
        --out results/adaptive/overrun

Comparison: every variant on every checkpoint, the same initial states per evaluation seed (as
scripts/compare_planners.py, whose table, paired bootstrap over seeds and plot it reuses: each variant's return
difference to the first variant on the same episodes, with its 95 % interval), plus the planning ms per step and the
mean gradient iterations and objective evaluations (forward passes) per step. Writes episodes.csv, summary.json,
adaptive.png (differences with intervals, and ms per step) and table.md to --out.

Overrun (`--overrun`): `dream.budget_ms` on one checkpoint for --steps environment steps; per step the time of the
planner's `plan` call (the budget counts from its entry) and the slowest iteration the search measured. Writes
overrun.json and overrun.md: the max over steps of (plan time - budget) against one iteration's time.
Times are wall clock: on a shared machine they carry its load (say so when quoting them).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dream_mpc import reproducible_products  # noqa: E402

reproducible_products()  # the same bits at any CPU thread count (before MKL's first product)

import compare_planners  # noqa: E402
import numpy as np  # noqa: E402
import outputs  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from dream_mpc.checkpoint import load_agent  # noqa: E402
from dream_mpc.envs import make_env  # noqa: E402
from dream_mpc.errors import UserError, run_cli  # noqa: E402
from dream_mpc.evaluation.episodes import run_episode, seed_everything  # noqa: E402

# label=override[,override...]; the first is the reference of the paired differences
DEFAULT_VARIANTS = [
    "fixed=",
    "backtracking=dream.step_rule=backtracking",
    "normalized=dream.step_rule=normalized",
    "fixed 5 it=dream.iterations=5",
    "tol 1e-3 (max 5 it)=dream.tol=0.001,dream.iterations=5",
    "budget 5 ms=dream.budget_ms=5",
]
OUTPUT_FILES = ("episodes.csv", "summary.json", "adaptive.png", "table.md")


def parse_variant(text):
    label, sep, overrides = text.partition("=")  # a label holds no "="
    if not sep or not label:
        raise UserError(f"a variant is 'label=dream.key=value[,dream.key=value]', got {text!r}")
    return label, [o for o in overrides.split(",") if o]


class SearchCounter:
    """Per planning step: the gradient iterations and objective evaluations of the planner's last search."""

    def __init__(self, planner):
        self.planner, self.iterations, self.evaluations = planner, [], []

    def __call__(self):
        s = self.planner.last_search
        if s is not None:  # a fixed-step plan: iterations as configured, evaluations = iterations + 1
            self.iterations.append(s.iterations)
            self.evaluations.append(s.evaluations)
            self.planner.last_search = None
        else:
            self.iterations.append(self.planner.iterations)
            self.evaluations.append(self.planner.iterations + 1)


def compare(checkpoints, variants, seeds, episodes, device, done=()):
    """Yields one row per episode (compare_planners' fields, the variant as `planner`, plus search counts); the
    episodes whose (checkpoint, variant, seed, episode) is in `done` are skipped (their initial states still drawn)."""
    done = set(done)
    total = len(checkpoints) * len(variants) * seeds * episodes - len(done)
    bar = tqdm(total=total, unit="episode", dynamic_ncols=True)
    for path in checkpoints:
        for label, overrides in variants:
            if all((str(path), label, s, e) in done for s in range(1, seeds + 1) for e in range(episodes)):
                continue
            agent = load_agent(path, device=device, overrides=["planner=dream", *overrides])
            env = make_env(agent.cfg)
            for seed in range(1, seeds + 1):
                seed_everything(seed, env)
                skipped = False
                for episode in range(episodes):
                    if (str(path), label, seed, episode) in done:
                        env.reset()  # this episode's initial state, as in a full run
                        skipped = True
                        continue
                    if skipped:  # a full run's noise stream cannot be recovered: a fixed new one (compare_planners)
                        torch.manual_seed(seed * 100_003 + episode)
                        skipped = False
                    counter = SearchCounter(agent.planner)
                    ep = run_episode(agent, env, eval_mode=True, on_step=counter)
                    bar.set_postfix_str(f"{Path(path).stem} {label} seed {seed}: {ep['return']:.0f}")
                    bar.update()
                    yield {
                        "checkpoint": str(path),
                        "task": agent.cfg.task,
                        "agent": agent.cfg.agent,
                        "planner": label,
                        "seed": seed,
                        "episode": episode,
                        "return": ep["return"],
                        "success": ep["success"],
                        "ms_per_step": ep["ms_per_step"],
                        "iterations": float(np.mean(counter.iterations)),
                        "evaluations": float(np.mean(counter.evaluations)),
                    }
    bar.close()


def table(summary, rows, reference):
    """compare_planners' table with the mean iterations and evaluations per step added."""
    counts = {}
    for r in rows:
        counts.setdefault((r["checkpoint"], r["planner"]), []).append((r["iterations"], r["evaluations"]))
    lines = compare_planners.table(summary, baseline=reference).splitlines()
    lines[0] += " iterations / step | evaluations / step |"
    lines[1] += "---|---|"
    for i, s in enumerate(summary):
        it, ev = np.mean(counts[(s["checkpoint"], s["planner"])], axis=0)
        lines[i + 2] += f" {it:.2f} | {ev:.2f} |"
    return "\n".join(lines)


def plot(summary, reference, path):
    """adaptive.png: per variant, the paired return difference to the reference with its 95 % interval (left) and
    the planning ms per step (right); one marker series per checkpoint, labelled with its task and agent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(s["planner"] for s in summary))
    groups = list(dict.fromkeys((s["task"], s["agent"]) for s in summary))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.45 * len(variants) + 1.6), sharey=True)
    for g, (task, agent) in enumerate(groups):
        offset = (g - (len(groups) - 1) / 2) * 0.18
        rows = [s for s in summary if (s["task"], s["agent"]) == (task, agent)]
        ys = [variants.index(s["planner"]) + offset for s in rows]
        diffs = [s.get(f"vs_{reference}") or (0.0, 0.0, 0.0) for s in rows]
        mid = [d[0] for d in diffs]
        err = [[d[0] - d[1] for d in diffs], [d[2] - d[0] for d in diffs]]
        left.errorbar(mid, ys, xerr=err, fmt="o", capsize=3, label=f"{task} ({agent})")
        right.plot([s["ms_per_step"] for s in rows], ys, "s", label=f"{task} ({agent})")
    left.axvline(0.0, color="0.3", lw=0.8, ls=":", label=f"= {reference}")
    left.set_yticks(range(len(variants)), variants)
    left.invert_yaxis()
    left.set_xlabel(f"return − {reference} on the same episodes (95 % CI over seeds)")
    right.set_xlabel("planning ms / step (shared CPU)")
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def overrun(path, budget_ms, steps, device, out, warmup=5):
    """Plan with dream.budget_ms for `steps` env steps (after `warmup` steps left out of the statistics: one-time
    allocations and thread start-up); per step the plan time, the slowest iteration and the fixed part."""
    agent = load_agent(path, device=device, overrides=["planner=dream", f"dream.budget_ms={budget_ms}"])
    env = make_env(agent.cfg)
    seed_everything(1, env)
    planner, plan_s, iteration_s, iterations, fixed_s = agent.planner, [], [], [], []
    inner = planner.plan

    def timed_plan(*args, **kwargs):  # the budget counts from the entry of plan(): time exactly that call
        tic = time.perf_counter()
        result = inner(*args, **kwargs)
        if agent.device.type == "cuda":
            torch.cuda.synchronize()
        plan_s.append(time.perf_counter() - tic)
        search = planner.last_search  # a plan without a step: the last iteration actually timed (an earlier plan's)
        iteration_s.append(search.iteration_s if search.iterations else (iteration_s[-1] if iteration_s else 0.0))
        iterations.append(planner.last_search.iterations)
        fixed_s.append(planner.last_search.first_s)
        return result

    planner.plan = timed_plan
    obs, t = env.reset(), 0
    for t in tqdm(range(warmup + steps), unit="step", dynamic_ncols=True, desc=f"budget {budget_ms} ms"):
        obs, _, done, _ = env.step(agent.act(obs, t0=t == 0, eval_mode=True))
        if done:
            obs = env.reset()
    warm = {"first_plan_ms": plan_s[0] * 1000, "steps": warmup}
    plan_s, iteration_s, iterations, fixed_s = (x[warmup:] for x in (plan_s, iteration_s, iterations, fixed_s))
    over = np.array(plan_s) * 1000 - budget_ms
    it_ms = np.array(iteration_s) * 1000
    fixed_ms = np.array(fixed_s) * 1000
    worst = int(np.argmax(over))
    result = {
        "checkpoint": str(path),
        "budget_ms": budget_ms,
        "steps": len(plan_s),
        "plan_ms": {"median": float(np.median(plan_s) * 1000), "max": float(np.max(plan_s) * 1000)},
        "overrun_ms": {
            "max": float(over.max()),
            "p99": float(np.quantile(over, 0.99)),
            "median": float(np.median(over)),
        },
        "iteration_ms": {"median": float(np.median(it_ms)), "max": float(it_ms.max())},
        "iteration_ms_at_worst_step": float(it_ms[worst]),
        "fixed_ms": {"median": float(np.median(fixed_ms)), "max": float(fixed_ms.max())},
        "warmup": warm,
        "iterations": {
            "mean": float(np.mean(iterations)),
            "min": int(np.min(iterations)),
            "max": int(np.max(iterations)),
        },
        "within_one_iteration": bool(over.max() <= it_ms[worst]),
        "device": agent.device.type,
    }
    (out / "overrun.json").write_text(json.dumps(result, indent=2))
    md = (
        f"`planner=dream dream.budget_ms={budget_ms:g}` on {Path(path).name}, {result['steps']} steps "
        f"({result['device']}): plan time median {result['plan_ms']['median']:.2f} ms, max "
        f"{result['plan_ms']['max']:.2f} ms; overrun (plan time - budget) max {result['overrun_ms']['max']:+.2f} ms, "
        f"99th percentile {result['overrun_ms']['p99']:+.2f} ms, median {result['overrun_ms']['median']:+.2f} ms; "
        f"one iteration: median {result['iteration_ms']['median']:.2f} ms, max {result['iteration_ms']['max']:.2f} ms "
        f"({result['iteration_ms_at_worst_step']:.2f} ms at the worst step); fixed part (candidates and the first "
        f"evaluation) median {result['fixed_ms']['median']:.2f} ms, max {result['fixed_ms']['max']:.2f} ms; "
        f"iterations per step mean "
        f"{result['iterations']['mean']:.1f} (min {result['iterations']['min']}, max {result['iterations']['max']}). "
        f"Worst overrun within one iteration's time: {'yes' if result['within_one_iteration'] else 'NO'}. "
        f"(The first {warmup} steps are left out; the very first plan took {warm['first_plan_ms']:.1f} ms.)"
    )
    (out / "overrun.md").write_text(md + "\n")
    print(md)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="+", default=[])
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, help="label=dream.key=value[,...]")
    p.add_argument("--seeds", type=int, default=3, help="evaluation seeds 1..N (the runs of the intervals)")
    p.add_argument("--episodes", type=int, default=1, help="episodes per seed")
    p.add_argument("--overrun", default=None, metavar="CHECKPOINT", help="measure dream.budget_ms's overrun instead")
    p.add_argument("--budget-ms", type=float, default=5.0)
    p.add_argument("--steps", type=int, default=300, help="--overrun: environment steps measured")
    p.add_argument("--warmup", type=int, default=5, help="--overrun: steps run first and not measured")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N")
    p.add_argument("--out", default="results/tmp/adaptive", help="output folder (default: ignored by git)")
    outputs.add_flags(p)  # --resume: keep out/episodes.csv and run only the missing episodes
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for path in args.checkpoints + ([args.overrun] if args.overrun else []):
        if not Path(path).is_file():
            raise UserError(f"checkpoint not found: {path}")
    if args.overrun:
        out = outputs.output_folder(args.out, ("overrun.json", "overrun.md"), overwrite=args.overwrite, resumable=False)
        return overrun(args.overrun, args.budget_ms, args.steps, args.device, out, args.warmup)
    if not args.checkpoints:
        raise UserError("give --checkpoints (the comparison) or --overrun CHECKPOINT (the budget's overrun)")
    variants = [parse_variant(v) for v in args.variants]
    out = outputs.output_folder(args.out, OUTPUT_FILES, resume=args.resume, overwrite=args.overwrite)
    earlier = []
    if args.resume and (out / "episodes.csv").is_file():
        earlier = [
            dict(r, iterations=float(r["iterations"]), evaluations=float(r["evaluations"]))
            for r in compare_planners.read_rows(out / "episodes.csv")
        ]
    done = {(r["checkpoint"], r["planner"], r["seed"], r["episode"]) for r in earlier}
    compare_planners.FIELDS += [f for f in ("iterations", "evaluations") if f not in compare_planners.FIELDS]
    rows = compare_planners.record(
        earlier, compare(args.checkpoints, variants, args.seeds, args.episodes, args.device, done), out / "episodes.csv"
    )
    summary = compare_planners.summarise(rows, baseline=variants[0][0])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(summary, variants[0][0], out / "adaptive.png")
    text = table(summary, rows, variants[0][0])
    (out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
