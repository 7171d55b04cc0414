"""Checkpoints x planners x evaluation seeds x episodes in one run: a CSV of every episode, a JSON summary,
a printed table and a bar plot with error bars.

    python scripts/compare_planners.py --checkpoints agents/*.pt --planners policy mppi dream \\
        --seeds 3 --episodes 10 --out results/tmp/compare [--set dream.lr=0.2 ...]
    python scripts/compare_planners.py --from-csv run1/episodes.csv run2/episodes.csv --out results/tmp/merged
      (merge runs made in parallel or on several machines into one table and plot)

    python scripts/compare_planners.py --from-records results/dreamer/compare/records --out results/dreamer/compare
      (summarise the records that `evaluate.py -m` wrote; a planner run with several settings is split by them)

    python scripts/compare_planners.py --checkpoints ... --out results/tmp/compare --resume
      (an interrupted run goes on: episodes already recorded in out/records are not run again)

Episodes run through evaluate.py's one evaluation path (dream_mpc/evaluation/episodes.py, one job per checkpoint,
planner and seed) and are recorded in out/records as every evaluation is; episodes.csv is written from them.

The output folder defaults to results/tmp/compare (ignored by git). A folder that already holds results is kept as
it is unless --resume (add the missing episodes) or --overwrite (replace them) says otherwise (scripts/outputs.py).

Every planner sees the same initial states for a given seed (the environment is reseeded per seed). A skipped
episode still resets the environment, so the episodes after it start from the same states as in a full run; the
planner's noise is then reseeded from (seed, episode).
Error bars are the standard deviation over the evaluation seeds' mean returns (none with one seed), and the plot's
title says so. The paired differences to --baseline are averaged per evaluation seed and given with Student's t 95 %
interval over the seeds and the number of seeds (dream_mpc/evaluation/intervals.py; one seed: no interval); for
sweeps over tasks, training seeds and launchers, use `evaluate.py -m` and scripts/report.py (docs/evaluation.md).
"""

import argparse
import csv
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dream_mpc import reproducible_products

reproducible_products()  # the same bits at any CPU thread count (before MKL's first product)

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from dream_mpc.errors import UserError, run_cli  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import outputs  # noqa: E402

OUTPUT_FILES = ("episodes.csv", "summary.json", "returns.png", "records")
FIELDS = ["checkpoint", "task", "agent", "planner", "seed", "episode", "return", "success", "ms_per_step"]


def evaluate_all(
    checkpoints,
    planners,
    seeds,
    episodes,
    records_dir,
    overrides=(),
    eval_noise=False,
    first_seed=1,
    device="auto",
    threads=0,
):
    """Every (checkpoint, planner, seed) as an evaluate.py job into `records_dir` (recorded episodes are skipped)."""
    from dream_mpc import cli

    jobs = [(str(c), p, s) for c in checkpoints for p in planners for s in range(first_seed, first_seed + seeds)]
    for n, (path, planner, seed) in enumerate(jobs, 1):
        tqdm.write(f"job {n}/{len(jobs)}: {Path(path).stem} planner={planner} seed={seed}")
        cli.run(
            cli.evaluate_job,
            [
                f"checkpoint={path}",
                f"planner={planner}",
                f"seed={seed}",
                f"eval_episodes={episodes}",
                f"results_dir={records_dir}",
                f"device={device}",
                f"eval_noise={str(eval_noise).lower()}",
                f"threads={threads}",
                *overrides,
            ],
        )


def rows_from_records(paths):
    """episodes.csv rows from evaluation records. A planner recorded with several settings (its options, or an
    agent's acting options such as dreamer.eval_action) is one method per setting, named by what differs."""
    from dream_mpc.evaluation import records
    from dream_mpc.evaluation.aggregates import varying_keys

    found = records.collect(paths)
    settings = {}
    for r in found:
        settings.setdefault(r["planner"], {}).setdefault(r["options"], json.loads(r["options"]))
    labels = {}
    for planner, by_json in settings.items():
        keys = sorted(varying_keys(list(by_json.values())))
        for text, o in by_json.items():
            labels[planner, text] = " ".join([planner, *(f"{k.split('.')[-1]}={o.get(k)}" for k in keys)])
    return [
        {
            "checkpoint": r["checkpoint"],
            "task": r["task"],
            "agent": r["agent"],
            "planner": labels[r["planner"], r["options"]],
            "seed": r["seed"],
            "episode": r["episode"],
            "return": r["return"],
            "success": r["success"],
            "ms_per_step": r["ms_per_step"],
            **{k: r[k] for k in ("iterations", "evaluations") if r.get(k) is not None},  # the search, where reported
        }
        for r in found
    ]


FLOATS = ("return", "success", "ms_per_step", "iterations", "evaluations")


def read_rows(path):
    with open(path, newline="") as f:
        return [
            {
                k: (float(v) if k in FLOATS else int(v) if k in ("seed", "episode") else v)
                for k, v in r.items()
                if v != "" or k not in FLOATS  # a search count the planner did not report
            }
            for r in csv.DictReader(f)
        ]


def paired_difference(rows, baseline="policy"):
    """Per (checkpoint, planner): the mean return difference to `baseline` on the same episodes (same seed and
    episode index, so the same initial state), as an intervals.Interval: averaged within each evaluation seed (this
    script's runs: one checkpoint, its seeds), then Student's t 95 % interval over the seeds (none with one seed;
    dream_mpc/evaluation/intervals.py), never over single episodes."""
    import pandas as pd

    from dream_mpc.evaluation.aggregates import paired_differences

    if not rows:
        return {}
    df = pd.DataFrame(rows)
    df["method"], df["eval_noise"] = df["planner"], False
    return paired_differences(df, baseline, value="return", runs=("seed",), by=("checkpoint", "method"))


def summarise(rows, baseline="policy"):
    """Per (checkpoint, planner): mean/std over all episodes, std over seed means (None with one seed: no spread to
    estimate), ms per step, and the paired difference to the baseline planner: `vs_<baseline>` = (mean, low, high)
    of its 95 % Student-t interval over seeds (low and high None with one seed), `vs_<baseline>_runs` the seeds and
    `vs_<baseline>_episodes` the paired episodes behind it."""
    paired = paired_difference(rows, baseline)
    groups = {}
    for r in rows:
        groups.setdefault((r["checkpoint"], r["task"], r["agent"], r["planner"]), []).append(r)
    summary = []
    for (ckpt, task, agent, planner), rs in groups.items():
        returns = np.array([r["return"] for r in rs])
        seed_means = [np.mean([r["return"] for r in rs if r["seed"] == s]) for s in sorted({r["seed"] for r in rs})]
        vs = paired.get((ckpt, planner))
        summary.append(
            {
                "checkpoint": ckpt,
                "task": task,
                "agent": agent,
                "planner": planner,
                "return_mean": float(returns.mean()),
                "return_std": float(returns.std()),
                "seed_std": float(np.std(seed_means)) if len(seed_means) > 1 else None,
                "seeds": len(seed_means),
                "episodes": len(rs),
                "ms_per_step": float(np.mean([r["ms_per_step"] for r in rs])),
                "success": float(np.mean([r["success"] for r in rs])),
                f"vs_{baseline}": None if vs is None else vs.as_tuple(),
                f"vs_{baseline}_runs": None if vs is None else vs.runs,
                f"vs_{baseline}_episodes": None if vs is None else vs.episodes,
            }
        )
    return summary


def interval_of(s, baseline):
    """The summary row's paired difference to `baseline` as an intervals.Interval (None when it has none)."""
    from dream_mpc.evaluation.intervals import Interval

    vs = s.get(f"vs_{baseline}")
    if vs is None:
        return None
    runs = s.get(f"vs_{baseline}_runs")
    if runs is None:  # a summary written before the runs were recorded: its seeds
        runs = s["seeds"]
    return Interval(vs[0], vs[1], vs[2], int(runs), s.get(f"vs_{baseline}_episodes"))


def seed_spread(s):
    """'12.3', or '– (1 seed)' where one seed leaves no spread to estimate."""
    return f"{s['seed_std']:.1f}" if s.get("seed_std") is not None and s["seeds"] > 1 else f"– ({s['seeds']} seed)"


def table(summary, baseline="policy"):
    lines = [
        "| task | agent | planner | return (mean ± std over episodes) | std over seeds | episodes "
        f"| vs {baseline}, same episodes (95 % t-interval over seeds, n seeds) | ms / step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        vs = interval_of(s, baseline)
        vs = "–" if vs is None or s["planner"] == baseline else vs.text(1)
        lines.append(
            f"| {s['task']} | {s['agent']} | {s['planner']} | {s['return_mean']:.1f} "
            + (f"± {s['return_std']:.1f} " if s["episodes"] > 1 else "(1 episode) ")
            + f"| {seed_spread(s)} | {s['episodes']} | {vs} | {s['ms_per_step']:.2f} |"
        )
    return "\n".join(lines)


def plot(summary, path):
    """returns.png: one bar per (agent, planner), the mean return over all its episodes; error bars the standard
    deviation over the evaluation seeds' mean returns (none with one seed); the counts (seeds x episodes per seed)
    in the title when every bar has the same, else at each bar's foot. The title says what is shown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(f"{s['task']}\n{s['agent']}" for s in summary))
    planners = list(dict.fromkeys(s["planner"] for s in summary))
    width = 0.8 / len(planners)

    def count(s):
        per_seed = s["episodes"] / s["seeds"]
        return f"{s['seeds']}×{per_seed:.0f}" if per_seed.is_integer() else f"{s['episodes']} ep"

    same = len({count(s) for s in summary}) == 1  # one count for every bar: said once, in the title
    fig, ax = plt.subplots(figsize=(max(5, 1.8 * len(groups)), 4.0))
    for i, planner in enumerate(planners):
        xs, ys, errs, counts = [], [], [], []
        for g, group in enumerate(groups):
            for s in summary:
                if f"{s['task']}\n{s['agent']}" == group and s["planner"] == planner:
                    xs.append(g + (i - (len(planners) - 1) / 2) * width)
                    ys.append(s["return_mean"])
                    spread = s["seeds"] > 1 and s.get("seed_std") is not None
                    errs.append(s["seed_std"] if spread else float("nan"))  # 1 seed: no error bar, not a 0-wide one
                    counts.append(count(s))
        ax.bar(xs, ys, width, yerr=errs, capsize=3, label=planner)
        if not same:  # each bar's count at its foot, clear of the error bars
            for x, c in zip(xs, counts):
                ax.annotate(
                    c,
                    (x, 0),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    rotation=90,
                )
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel("episode return")
    counted = (
        f"every bar: {count(summary[0])} (seeds × episodes per seed)" if same else "labels: seeds × episodes per seed"
    )
    ax.set_title(
        "bars: mean return over all episodes; error bars: std over the evaluation seeds' means (none with 1 seed);\n"
        + counted,
        fontsize="small",
    )
    # below the tick labels, so it never covers a bar (with many planners the bars fill the plot)
    ax.legend(
        frameon=False, ncol=min(len(planners), 4), fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2)
    )
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)


def write_rows(rows, path):
    """episodes.csv: FIELDS, then the search counts where some row has them."""
    fields = FIELDS + [k for k in ("iterations", "evaluations") if any(k in r for r in rows)]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def report(rows, out, baseline="policy"):
    """summary.json, the bar plot and the printed table of rows, in the folder out; returns the summary."""
    summary = summarise(rows, baseline=baseline)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(summary, out / "returns.png")
    print(table(summary, baseline=baseline))
    print(f"\nwrote {out / 'episodes.csv'}, {out / 'summary.json'} and {out / 'returns.png'}")
    return summary


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="+", default=[])
    p.add_argument(
        "--from-csv",
        nargs="+",
        default=[],
        help="earlier runs' episodes.csv: merged into the table, their episodes not run again",
    )
    p.add_argument(
        "--from-records", nargs="+", default=[], help="folders of evaluation records (evaluate.py's results_dir)"
    )
    p.add_argument("--planners", nargs="+", default=["policy", "mppi", "dream"])
    p.add_argument("--seeds", type=int, default=3, help="evaluation seeds first..first+N-1")
    p.add_argument("--first-seed", type=int, default=1, help="to add seeds to an earlier run")
    p.add_argument("--episodes", type=int, default=10, help="episodes per seed")
    p.add_argument("--out", default="results/tmp/compare", help="output folder (default: ignored by git)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. dream.lr=0.2")
    p.add_argument("--baseline", default="policy", help="the method (planner label) differences are taken against")
    outputs.add_flags(p)  # --resume: keep out/records and run only the missing episodes; --overwrite
    p.add_argument("--eval-noise", action="store_true", help="add planner exploration noise (official evaluate.py)")
    args = p.parse_args(argv)
    if not args.checkpoints and not args.from_csv and not args.from_records:
        raise UserError("give --checkpoints to evaluate, or --from-records / --from-csv to summarise earlier runs")
    for kind, paths, ok in (
        ("checkpoint", args.checkpoints, Path.is_file),
        ("CSV", args.from_csv, Path.is_file),
        ("records folder", args.from_records, Path.is_dir),
    ):
        missing = [c for c in paths if not ok(Path(c))]
        if missing:
            raise UserError(f"{kind} not found: {', '.join(missing)}")
    written = OUTPUT_FILES if args.checkpoints else tuple(f for f in OUTPUT_FILES if f != "records")  # else: input
    out = outputs.output_folder(args.out, written, resume=args.resume, overwrite=args.overwrite)
    if args.overwrite and args.checkpoints and (out / "records").is_dir():
        shutil.rmtree(out / "records")  # --overwrite: run every episode again
    records_dirs = list(args.from_records)
    if args.checkpoints:
        evaluate_all(
            args.checkpoints,
            args.planners,
            args.seeds,
            args.episodes,
            out / "records",
            args.set,
            eval_noise=args.eval_noise,
            first_seed=args.first_seed,
            device=args.device,
            threads=args.threads,
        )
        records_dirs.append(out / "records")
    rows = {}  # one row per episode, the first one read
    for row in [*rows_from_records(records_dirs), *(r for path in args.from_csv for r in read_rows(path))]:
        rows.setdefault((row["checkpoint"], row["planner"], row["seed"], row["episode"]), row)
    # the order asked for: checkpoints, then planners as listed (their settings after them), seeds, episodes
    ckpts = {str(c): i for i, c in enumerate(args.checkpoints)}
    planners = {p: i for i, p in enumerate(args.planners)}
    rows = sorted(
        rows.values(),
        key=lambda r: (
            ckpts.get(r["checkpoint"], len(ckpts)),
            r["checkpoint"],
            planners.get(r["planner"].split()[0], len(planners)),
            r["planner"],
            r["seed"],
            r["episode"],
        ),
    )
    return report(write_rows(rows, out / "episodes.csv"), out, args.baseline)


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
