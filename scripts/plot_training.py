"""Learning curves from the CSV files that train.py writes: one panel per task, the eval returns (markers) and the
training episodes' returns (thin line, the data the agent collected while planning).

    python scripts/plot_training.py logs/*/1/bundle* --labels ... --out results/training.png
"""

import argparse
import sys
from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def task_of(run):
    """logs/<task>/<seed>/<exp_name> -> <task>."""
    parts = Path(run).parts
    return parts[-3] if len(parts) >= 3 else Path(run).name


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="work dirs (each with an eval.csv, and a train.csv if any)")
    p.add_argument("--labels", nargs="*", help="one per run (default: the run's exp_name)")
    p.add_argument("--out", default="results/tmp/training.png", help="the plot (default: ignored by git)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from outputs import output_file

    from dream_mpc.errors import UserError

    try:
        output_file(args.out, args.overwrite, flag="--out")
    except UserError as err:
        p.exit(2, f"error: {err}\n")
    labels = args.labels or [Path(r).name for r in args.runs]
    if len(labels) != len(args.runs):
        p.error(f"{len(args.runs)} runs but {len(labels)} labels")
    tasks = list(dict.fromkeys(task_of(r) for r in args.runs))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    colors = {}
    for run, label in zip(args.runs, labels):
        ax = axes[0, tasks.index(task_of(run))]
        color = colors.setdefault(label, f"C{len(colors)}")
        train = Path(run) / "train.csv"
        if train.exists():
            df = pd.read_csv(train)
            ax.plot(df["step"], df["episode_reward"], color=color, alpha=0.3, lw=1)
        df = pd.read_csv(Path(run) / "eval.csv")
        ax.plot(df["step"], df["episode_reward"], color=color, marker="o", label=label)
    for ax, task in zip(axes[0], tasks):
        ax.set_title(task)
        ax.set_xlabel("environment steps")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0, 0].set_ylabel("return (markers: eval, line: training episodes)")
    axes[0, 0].legend(frameon=False)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=150)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
