"""Adaptive planning (dream_mpc/adaptive.py) against Dream-MPC's fixed step.

    python scripts/compare_adaptive.py --checkpoints agents/cartpole-swingup-*-1M.pt agents/walker-walk-*-1M.pt \\
        --seeds 5 --episodes 1 --out results/adaptive/<name> [--variants "label=dream.key=value[,...]" ...] \\
        [--resume | --overwrite]

Every variant on every checkpoint, the same initial states per evaluation seed (as scripts/compare_planners.py,
whose table and statistics it reuses): each variant's return difference to the first variant on the same episodes,
averaged per evaluation seed, with Student's t 95 % interval over the seeds and their number
(dream_mpc/evaluation/intervals.py; one seed: no interval), plus the planning ms per step and the mean gradient
iterations and objective evaluations (forward passes) per plan. Writes episodes.csv, summary.json, adaptive.png
(differences with intervals, and ms per step) and table.md to --out; --resume runs only the episodes its records
lack.

Every episode runs through evaluate.py's path (`compare_planners.evaluate_all`, one records folder per variant
in --out/records) and its record carries the planner's own count of the gradient steps and objective evaluations
of each plan (`iterations`, `evaluations`: means per plan, from the plan info), so the anytime mode
(`dream.budget_ms`) is measured as it ran, with its memory of earlier plans' iteration times. The budget's overrun
in milliseconds is measured by scripts/budget_overrun.py. Times are wall clock: on a shared machine they carry its
load (say so when quoting them).
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dream_mpc import reproducible_products  # noqa: E402

reproducible_products()  # the same bits at any CPU thread count (before MKL's first product)

import ablate_dream  # noqa: E402
import compare_planners  # noqa: E402
import numpy as np  # noqa: E402
import outputs  # noqa: E402

from dream_mpc.errors import UserError, run_cli  # noqa: E402

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
    """adaptive.png: per variant, the paired return difference to the reference with its 95 % t-interval over seeds
    (left; a hollow marker and no bar where one seed gives no interval) and the planning ms per step (right); one
    marker series per checkpoint, labelled with its task and agent; the title gives the seeds and episodes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(s["planner"] for s in summary))
    groups = list(dict.fromkeys((s["task"], s["agent"]) for s in summary))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.45 * len(variants) + 2.0), sharey=True)
    for g, (task, agent) in enumerate(groups):
        offset = (g - (len(groups) - 1) / 2) * 0.18
        rows = [s for s in summary if (s["task"], s["agent"]) == (task, agent)]
        ys = [variants.index(s["planner"]) + offset for s in rows]
        ivs = [compare_planners.interval_of(s, reference) for s in rows]
        mid = [0.0 if iv is None else iv.mean for iv in ivs]
        err = [
            [0.0 if iv is None or not iv.defined else iv.mean - iv.low for iv in ivs],
            [0.0 if iv is None or not iv.defined else iv.high - iv.mean for iv in ivs],
        ]
        (line, *_) = left.errorbar(mid, ys, xerr=err, fmt="o", capsize=3, label=f"{task} ({agent})")
        hollow = [(m, y) for m, y, iv in zip(mid, ys, ivs) if iv is not None and not iv.defined]
        if hollow:
            left.plot(*zip(*hollow), "o", mfc="white", color=line.get_color())
        right.plot([s["ms_per_step"] for s in rows], ys, "s", label=f"{task} ({agent})")
    left.axvline(0.0, color="0.3", lw=0.8, ls=":", label=f"= {reference}")
    left.set_yticks(range(len(variants)), variants)
    left.invert_yaxis()
    seeds = sorted({s["seeds"] for s in summary})
    episodes = sorted({s["episodes"] for s in summary})
    left.set_xlabel(f"return − {reference} on the same episodes\n(mean; bars: 95 % t-interval over seeds)")
    right.set_xlabel("planning ms / step (mean over episodes)")
    fig.suptitle(
        f"per variant and agent: {', '.join(map(str, seeds))} evaluation seeds, {', '.join(map(str, episodes))} "
        "episodes in all; hollow: one seed, no interval",
        fontsize="small",
    )
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="+", default=[])
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, help="label=dream.key=value[,...]")
    p.add_argument("--seeds", type=int, default=5, help="evaluation seeds 1..N (the runs of the intervals)")
    p.add_argument("--episodes", type=int, default=1, help="episodes per seed")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N")
    p.add_argument("--out", default="results/tmp/adaptive", help="output folder (default: ignored by git)")
    outputs.add_flags(p)  # --resume: keep out/records and run only the episodes they lack
    args = p.parse_args(argv)
    for path in args.checkpoints:
        if not Path(path).is_file():
            raise UserError(f"checkpoint not found: {path}")
    if not args.checkpoints:
        raise UserError("give --checkpoints (the budget's overrun in ms: scripts/budget_overrun.py)")
    variants = [ablate_dream.parse_variant(v) for v in args.variants]
    out = outputs.output_folder(args.out, OUTPUT_FILES, resume=args.resume, overwrite=args.overwrite)
    if args.overwrite and (out / "records").is_dir():
        shutil.rmtree(out / "records")  # every episode again
    rows = ablate_dream.evaluate_variants(
        args.checkpoints, variants, args.seeds, args.episodes, out, args.device, args.threads
    )
    rows = compare_planners.write_rows(rows, out / "episodes.csv")
    summary = compare_planners.summarise(rows, baseline=variants[0][0])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(summary, variants[0][0], out / "adaptive.png")
    text = table(summary, rows, variants[0][0])
    (out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
