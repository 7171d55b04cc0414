"""Learning curves from the eval.csv files that train.py writes.

    python scripts/plot_training.py logs/cartpole-swingup/1/bundle logs/cartpole-swingup/1/bundle-bmpc \\
        --labels TD-MPC2 BMPC --out results/training.png
"""
import argparse
from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="work dirs (each with an eval.csv)")
    p.add_argument("--labels", nargs="*")
    p.add_argument("--out", default="results/training.png")
    args = p.parse_args()
    labels = args.labels or [Path(r).as_posix() for r in args.runs]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for run, label in zip(args.runs, labels):
        df = pd.read_csv(Path(run) / "eval.csv")
        ax.plot(df["step"], df["episode_reward"], marker="o", label=label)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("eval return")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=150)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
