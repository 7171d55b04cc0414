"""From evaluation records to the paper's outputs in one command.

    python scripts/report.py logs/results [more result folders ...] --out results/my-report \\
        [--runs train_seed | train_seed,seed] [--baseline "policy (tdmpc2)"] [--compare "dream (bmpc)" "mppi (bmpc)"] \\
        [--tdmpc2-csv DIR ...] [--bmpc-json FILE ...] [--latency latency.json] [--reps 2000] [--overwrite]

Reads every `episodes-*.jsonl` under the folders (dream_mpc/evaluation/records.py; any of sweeps, machines, reruns:
one row per episode identity), or an earlier report's `episodes.csv` given as a file (to rebuild a report from its
own records), and writes to --out:
  report.md            the self-contained report: what was read, missing cells, every table and figure below
  figure2-intervals.png, figure2-profiles.png
                       figure 2: median / IQM / mean / optimality gap with stratified-bootstrap 95 % CIs, and the score
                       distributions (rliable's plotting), over the tasks every method ran; no interval for a method
                       with one run per task, and a note where the runs per task are too few for a percentile
                       bootstrap (dream_mpc/evaluation/intervals.py)
  aggregates.csv       the numbers of figure 2 (point estimate, CI low, CI high per method and metric)
  table-<suite>.md|csv|tex
                       tables 8-13: mean ± std over runs per task and method, best bold, second best underlined
  planning-ms.png      planning ms per step per method
  sweep.png            figure 5, when the records hold a Dream-MPC parameter sweep (num_candidates, iterations, horizon
                       varied one at a time; the policy prior as a reference line)
  latency.png          the curves of scripts/latency.py, with --latency
  episodes.csv         the merged rows
Paired differences to --baseline: Student's t 95 % interval over runs (none with one run), the runs beside it.
A run (the unit of every interval) is a training seed; --runs train_seed,seed makes (training seed,
evaluation seed) pairs the runs, for checkpoints with a single training seed (the report says which it used).
Files under results/ that git tracks are never overwritten without --overwrite.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from dream_mpc.errors import UserError, run_cli  # noqa: E402
from dream_mpc.evaluation import aggregates as agg  # noqa: E402
from dream_mpc.evaluation import records  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import exploitation  # noqa: E402  (scripts/exploitation.py: figure 15)
import paper_tables  # noqa: E402  (scripts/paper_tables.py: tables 8-13)
from outputs import Writer  # noqa: E402  (nothing tracked in git is replaced without --overwrite)

ROOT = Path(__file__).resolve().parents[1]
SUITE_TITLES = {
    "dmcontrol": "DeepMind Control Suite",
    "dmcontrol_custom": "DeepMind Control Suite (custom tasks)",
    "metaworld": "Meta-World",
    "humanoid_bench": "HumanoidBench",
}


# --------------------------------------------------------------------------------------------- published baselines
def _task_name(name, suite_hint=None):
    """A published file's task name -> ours when it is registered (e.g. HumanoidBench 'run' -> humanoid_h1hand-run)."""
    try:
        from dream_mpc.envs import all_tasks

        known = set(all_tasks())
    except Exception:  # noqa: BLE001 - the suites cannot load: keep the published names
        known = set()
    for cand in (name, name.replace("_", "-"), f"mw-{name}", f"humanoid_h1hand-{name}", f"humanoid_h1hand-{name}-v0"):
        if cand in known:
            return cand
    return name


def read_tdmpc2_csv(folders, step=None):
    """TD-MPC2's published results: one CSV per task (columns step, reward or success, seed), a folder per
    algorithm (`<folder>/<task>.csv`; the algorithm is the folder's name). Each seed's value at the last logged step
    (or the last one <= `step`); returns {algorithm: {task: dict(mean, std, n)}}."""
    out = {}
    for folder in folders:
        folder = Path(folder)
        files = [folder] if folder.is_file() else sorted(folder.glob("*.csv"))
        algo = (folder.parent if folder.is_file() else folder).name
        for f in files:
            with open(f, newline="") as fh:
                rows = list(csv.DictReader(fh))
            if not rows:
                continue
            col = (
                "success" if "success" in rows[0] and f.stem.startswith("mw-") or "reward" not in rows[0] else "reward"
            )
            per_seed = {}
            for r in rows:
                s = int(float(r["step"]))
                if step is not None and s > step:
                    continue
                seed = r.get("seed", "0")
                if seed not in per_seed or s >= per_seed[seed][0]:
                    per_seed[seed] = (s, float(r[col]))
            if per_seed:
                v = np.array([x for _, x in per_seed.values()])
                out.setdefault(f"{algo} (published)", {})[_task_name(f.stem)] = {
                    "mean": float(v.mean()),
                    "std": float(v.std()),
                    "n": len(v),
                }
    return out


def read_bmpc_json(files, step=None):
    """BMPC's published results: {algorithm: {task: {values, steps, ucbs, lcbs}}} (means over seeds with a
    confidence band; no per-seed values). The value at the last step (or the last one <= `step`); the std is
    unknown (NaN) and the band is kept as `ci`."""
    out = {}
    for f in files:
        data = json.loads(Path(f).read_text())
        for algo, tasks in data.items():
            for task, d in tasks.items():
                steps = np.asarray(d["steps"])
                ok = np.flatnonzero(steps <= step) if step is not None else np.arange(len(steps))
                if not len(ok):
                    continue
                i = ok[np.argmax(steps[ok])]
                out.setdefault(f"{algo} (published)", {})[_task_name(task)] = {
                    "mean": float(d["values"][i]),
                    "std": float("nan"),
                    "n": None,
                    "ci": (float(d["lcbs"][i]), float(d["ucbs"][i])) if "lcbs" in d else None,
                }
    return out


def baselines_by_suite(baselines):
    """Published baselines split by the suite of each task (unknown tasks go to 'published')."""
    from dream_mpc.envs import suite_of

    out = {}
    for algo, tasks in baselines.items():
        for task, cell in tasks.items():
            try:
                suite = suite_of(task).name
            except Exception:  # noqa: BLE001
                suite = "published"
            out.setdefault(suite, {}).setdefault(algo, {})[task] = cell
    return out


# --------------------------------------------------------------------------------------------- reading
def csv_rows(path):
    """The rows of an earlier report's episodes.csv (the merged records it read) as record rows, so that a report
    can be rebuilt from its own records: empty cells None, the exploitation cell (a Python literal) parsed."""
    import ast

    import pandas as pd

    df = pd.read_csv(
        path,
        dtype={"weights": str, "options": str, "checkpoint": str, "exploitation": str},
        float_precision="round_trip",
    )
    rows = []
    for r in df.to_dict("records"):
        row = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        if isinstance(row.get("exploitation"), str):
            row["exploitation"] = ast.literal_eval(row["exploitation"])
        for k in ("seed", "episode", "length", "nonfinite", "train_seed"):
            if row.get(k) is not None:
                row[k] = int(row[k])
        rows.append(row)
    return rows


def read_records(paths):
    """Record rows from result folders and record files (records.collect) and earlier reports' episodes.csv files,
    one per episode identity (the first one read)."""
    rows, seen = [], set()
    for p in paths:
        got = csv_rows(p) if str(p).endswith(".csv") else records.collect([p])
        for row in got:
            key = records.episode_key(row)
            if key not in seen:
                seen.add(key)
                rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------- figures
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure2(points, cis, taus, profiles, profile_cis, writer, counts="", note=None):
    """figure2-intervals.png (the methods with intervals: at least 2 runs per task) and figure2-profiles.png; both
    titled with what they show, the interval method and the runs per method (`counts`), and `note` where the runs
    are too few for a percentile bootstrap."""
    from rliable import plot_utils

    plt = _plt()
    what = f"95 % stratified-bootstrap CIs over runs; {counts}" + (f"\n{note}" if note else "")
    methods = [m for m in points if m in cis]
    if methods:
        fig, _ = plot_utils.plot_interval_estimates(
            {m: points[m] for m in methods},
            {m: cis[m] for m in methods},
            metric_names=list(agg.METRICS),
            algorithms=methods,
            xlabel="Normalized Score",
            subfigure_width=3.4,
            max_ticks=3,
            xlabel_y_coordinate=-0.45,
            row_height=max(0.35, 0.3 + 0.05 * len(methods)),
        )
        fig.suptitle(  # above the metric titles, which rliable draws above the axes
            f"Aggregate normalized scores: point estimate and {what}",
            fontsize="small",
            y=1.0 + 0.45 / fig.get_figheight(),
            va="bottom",
        )
        fig.savefig(writer.path("figure2-intervals.png"), dpi=120, bbox_inches="tight")
        plt.close(fig)
    fig = profiles_figure(taus, profiles, profile_cis)
    fig.axes[0].set_title(f"Score distributions; bands: {what}", fontsize="small")
    fig.savefig(writer.path("figure2-profiles.png"), dpi=120, bbox_inches="tight")
    plt.close(fig)


def profiles_figure(taus, profiles, profile_cis):
    """Figure 2's score distributions: one line per method and its 95 % band, each artist labelled with the method
    whose data it draws (the legend is built from the artists, never from a separate list)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for method, profile in profiles.items():
        (line,) = ax.plot(taus, profile, lw=2, label=method)
        if method in profile_cis:
            low, high = profile_cis[method]
            ax.fill_between(taus, low, high, color=line.get_color(), alpha=0.15, lw=0, label=f"{method}: 95 % CI")
    ax.set_xlabel(r"Normalized Score ($\tau$)")
    ax.set_ylabel(r"Fraction of runs with score $> \tau$")
    ax.set_ylim(0, 1.02)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def penalty_off(df):
    """Methods whose options ask for an uncertainty penalty that the model could not apply (recorded per row)."""
    if "penalty_active" not in df.columns:
        return []
    asked = df["options"].map(lambda o: bool(json.loads(o).get("uncertainty_coef", 0)) if isinstance(o, str) else 0)
    return sorted(set(df.loc[asked & (df["penalty_active"] == False), "method"]))  # noqa: E712 (None: unknown)


def planning_ms_plot(df, writer):
    """planning-ms.png: one bar per method, the mean planning ms per step over its episodes; error bars the std over
    those episodes; each bar labelled with its episode count (the title says so)."""
    plt = _plt()
    g = df.groupby("method", sort=False)["ms_per_step"]
    means, stds, counts = g.mean(), g.std(ddof=0).fillna(0), g.count()
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(means)), 3.4))
    ax.bar(range(len(means)), means.values, yerr=stds.values, capsize=3, color="tab:blue")
    for x, n in enumerate(counts.values):  # each bar's episodes at its foot, clear of the error bar
        ax.annotate(f"{n} ep", (x, 0), xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(means)), means.index, rotation=20, ha="right", fontsize="small")
    ax.set_ylabel("planning ms / step")
    ax.set_title(
        "bars: mean planning ms per step over episodes;\nerror bars: std over episodes; labels: episodes per bar",
        fontsize="small",
    )
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(writer.path("planning-ms.png"), dpi=120, bbox_inches="tight")
    plt.close(fig)
    return means, stds


def sweep_points(df, runs):
    """Figure 5's data: {(task, agent): {key: [(value, mean, std, n)]}, and the policy reference per (task, agent)},
    from Dream-MPC rows whose options differ from the defaults in at most one of SWEEP_KEYS (and nothing else)."""
    from dream_mpc.options import defaults
    from dream_mpc.registry import planners

    base = defaults(planners.get("dream").Options)
    d = df[df["planner"] == "dream"]
    points, reference = {}, {}
    for (task, agent, options), g in d.groupby(["task", "agent", "options"], sort=False):
        opt = json.loads(options)
        diff = [k for k in base if k in opt and opt[k] != base[k]]
        if len(diff) > 1 or (diff and diff[0] not in agg.SWEEP_KEYS):
            continue
        v = g.assign(run=agg.run_ids(g, runs)).groupby("run")["return"].mean().to_numpy()
        keys = diff or list(agg.SWEEP_KEYS)  # the defaults belong to every curve
        for k in keys:
            points.setdefault((task, agent), {}).setdefault(k, []).append(
                (opt.get(k, base[k]), float(v.mean()), float(v.std()), len(v))
            )
    for task, agent in points:
        p = df[(df["planner"] == "policy") & (df["task"] == task) & (df["agent"] == agent)]
        if len(p):
            reference[(task, agent)] = float(p["return"].mean())
    if not any(len(v) > 1 for curves in points.values() for v in curves.values()):
        return {}, {}
    return points, reference


def sweep_plot(points, reference, writer):
    plt = _plt()
    from dream_mpc.options import defaults
    from dream_mpc.registry import planners

    base = defaults(planners.get("dream").Options)
    rows = list(points)
    fig, axes = plt.subplots(
        len(rows), len(agg.SWEEP_KEYS), figsize=(3.2 * len(agg.SWEEP_KEYS), 2.6 * len(rows)), squeeze=False
    )
    for i, row in enumerate(rows):
        for j, key in enumerate(agg.SWEEP_KEYS):
            ax = axes[i][j]
            pts = sorted(points[row].get(key, []))
            if pts:
                x, m, s = (np.array(v, dtype=float) for v in list(zip(*pts))[:3])
                ax.errorbar(x, m, yerr=s, marker="o", capsize=3, label="Dream-MPC")
                ax.axvline(base[key], color="gray", lw=0.8, ls=":")
            if row in reference:
                ax.axhline(reference[row], color="tab:red", ls="--", label=r"policy $\pi_\theta$")
            ax.set_xlabel(key)
            if j == 0:
                ax.set_ylabel(f"{row[0]} ({row[1]})\nreturn", fontsize="small")
            ax.spines[["top", "right"]].set_visible(False)
    axes[0][0].legend(frameon=False, fontsize="small")
    runs = sorted({n for curves in points.values() for pts in curves.values() for *_, n in pts})
    fig.suptitle(
        f"points: mean return over runs; error bars: std over runs; runs per point: {', '.join(map(str, runs))}",
        fontsize="small",
    )
    fig.tight_layout()
    fig.savefig(writer.path("sweep.png"), dpi=120)
    plt.close(fig)


def latency_plot(data, writer):
    """The curves of scripts/latency.py: ms per step (and model evaluations per step) vs each varied quantity."""
    plt = _plt()
    curves = data.get("curves", {})
    fig, axes = plt.subplots(1, max(1, len(curves)), figsize=(3.6 * max(1, len(curves)), 3.2), squeeze=False)
    for ax, (name, by_planner) in zip(axes[0], curves.items()):
        for planner, pts in by_planner.items():
            x = [p["x"] for p in pts]
            (line,) = ax.plot(x, [p["ms"] for p in pts], marker="o", label=planner)
            for p in pts:
                ax.annotate(
                    f"{p['evals']}",
                    (p["x"], p["ms"]),
                    fontsize=6,
                    color=line.get_color(),
                    textcoords="offset points",
                    xytext=(2, 3),
                )
        ax.set_xlabel(name)
        ax.set_ylabel("planning ms / step")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0][0].legend(frameon=False, fontsize="small")
    fig.suptitle("labels: model evaluations per step", fontsize="small")
    fig.tight_layout()
    fig.savefig(writer.path("latency.png"), dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------------- the report
def build(
    folders,
    out,
    runs=("train_seed",),
    baseline=None,
    compare=None,
    tdmpc2_csv=(),
    bmpc_json=(),
    latency=None,
    reps=2000,
    overwrite=False,
    baseline_step=None,
):
    """Write every output to `out`; returns a dict of what was computed (for tests and scripts)."""
    rows = read_records(folders)
    if not rows:
        raise UserError(f"no evaluation records (episodes-*.jsonl) under {', '.join(map(str, folders))}")
    df = records.to_frame(rows)
    df["method"] = agg.method_labels(df)
    writer = Writer(out, overwrite)
    df.drop(columns=["method"]).to_csv(writer.path("episodes.csv"), index=False)
    runs = tuple(runs)
    methods = list(dict.fromkeys(df["method"]))
    md = [
        "# Evaluation report\n",
        f"Records: {len(df)} episodes from {', '.join(map(str, folders))}; {df['task'].nunique()} tasks, "
        f"{len(methods)} methods, checkpoints: {', '.join(sorted(df['checkpoint'].unique()))}.\n",
        f"Runs (the unit of every interval): **{' x '.join(runs)}**"
        + (
            " — (training seed, evaluation seed) pairs, because the checkpoints have a single training seed each; "
            "with several training seeds use the default `--runs train_seed`."
            if runs != ("train_seed",)
            else "."
        )
        + " Scores are each suite's normalized score (DMControl return/1000, HumanoidBench "
        "(x - random)/(target - random), Meta-World success).\n",
    ]
    # figure 2
    matrices, tasks, notes = agg.score_matrices(df, runs, methods)
    result = {"matrices": matrices, "tasks": tasks, "notes": notes}
    md.append("## Aggregate metrics (figure 2)\n")
    usable = {m: x for m, x in matrices.items() if x.size}
    if usable and tasks:
        points, cis = agg.aggregate_intervals(usable, reps=reps)
        taus, profiles, profile_cis = agg.performance_profiles(usable, reps=reps)
        counts = "runs per task: " + ", ".join(f"{m} {len(x)}" for m, x in usable.items())
        note = agg.bootstrap_note(agg.with_intervals(usable))
        figure2(points, cis, taus, profiles, profile_cis, writer, counts, note)
        result.update(points=points, cis=cis, profiles=profiles, taus=taus, bootstrap_note=note)
        lines = [
            "| method | runs per task | " + " | ".join(agg.METRICS) + " |",
            "|---|---|" + "---|" * len(agg.METRICS),
        ]
        agg_rows = [["method", "metric", "point", "ci_low", "ci_high", "runs", "tasks"]]
        for m in usable:
            n = len(usable[m])
            if m in cis:
                cells = [
                    f"{points[m][i]:.3f} [{cis[m][0, i]:.3f}, {cis[m][1, i]:.3f}]" for i in range(len(agg.METRICS))
                ]
            else:
                cells = [f"{points[m][i]:.3f} (n={n}: no interval)" for i in range(len(agg.METRICS))]
            lines.append(f"| {m} | {n} | " + " | ".join(cells) + " |")
            agg_rows += [
                [m, name, points[m][i], *(cis[m][:, i] if m in cis else ("", "")), n, len(tasks)]
                for i, name in enumerate(agg.METRICS)
            ]
        with open(writer.path("aggregates.csv"), "w", newline="") as f:
            csv.writer(f).writerows(agg_rows)
        md += [
            f"Over {len(tasks)} tasks ({', '.join(tasks)}); point estimate [95 % stratified-bootstrap CI, "
            f"{reps} resamples of runs within each task, percentile method (rliable)]; the runs per task beside "
            "each method. Optimality gap: lower is better.\n",
            "\n".join(lines) + "\n",
        ]
        if note:
            md.append(
                f"**These intervals are descriptive only**: {note}. A percentile bootstrap of n runs is too narrow "
                f"(its spread is the plug-in one, too small by √((n-1)/n), with normal quantiles; at 3 runs its "
                f"interval is the [min, max] of the runs, which covers 75 %); rliable's intervals are kept because "
                f"these aggregates have no closed-form interval (dream_mpc/evaluation/intervals.py).\n"
            )
        if cis:
            md.append("![aggregate intervals](figure2-intervals.png)\n")
        md.append("![score distributions](figure2-profiles.png)\n")
        single = [m for m in usable if m not in cis]
        if single:
            md.append(
                f"**Intervals cannot be estimated** for {', '.join(single)}: one run per task, so the bootstrap has "
                "nothing to resample; no interval is shown (the points only, and no band in the score distributions). "
                "Evaluate more training seeds (or use `--runs train_seed,seed` with several evaluation seeds) for "
                "intervals.\n"
            )
            result["single_run"] = single
        pairs = [tuple(compare)] if compare else [(m, baseline) for m in usable if baseline in usable and m != baseline]
        pairs = [(x, y) for x, y in pairs if x in usable and y in usable]
        if pairs:
            p_points, p_cis = agg.probability_of_improvement(usable, pairs, reps=reps)
            result["poi"] = (p_points, p_cis)
            md.append("Probability of improvement P(X > Y) [95 % stratified-bootstrap CI] (runs per task of X, Y):\n")
            poi_lines = []
            for (x, y), (k, v) in zip(pairs, p_points.items()):
                ci = (
                    f"[{float(np.ravel(p_cis[k][0])[0]):.3f}, {float(np.ravel(p_cis[k][1])[0]):.3f}]"
                    if k in p_cis
                    else "(no interval: a method with 1 run per task)"
                )
                n = f"(n={len(usable[x])}, {len(usable[y])})"
                poi_lines.append(f"- P({k.replace(',', ' > ')}) = {float(np.ravel(v)[0]):.3f} {ci} {n}")
            md.append("\n".join(poi_lines) + ("\n\n" + f"({note}.)" if note else "") + "\n")
    else:
        md.append("No task was run by every method: no aggregate.\n")
    if notes:
        md.append("Left out of the aggregates:\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    off = penalty_off(df)
    if off:
        result["penalty_off"] = off
        md.append(
            "**The uncertainty penalty did nothing** for "
            + ", ".join(off)
            + ": the model has a single value head, so there is no ensemble spread to penalise, whatever "
            "`uncertainty_coef` the options say.\n"
        )
    # paired differences
    if baseline and baseline in methods:
        paired = agg.paired_differences(df, baseline, runs=runs)
        result["paired"] = paired
        md.append(f"## Paired differences to {baseline}\n")
        md.append(
            "Mean return difference on the same episodes: the same task, checkpoint, evaluation seed and episode "
            "index, which start from the same initial state (the environment is seeded per evaluation seed and every "
            "episode is reset, recorded or skipped). The differences are averaged within each run and the 95 % "
            "interval is Student's t over the runs' means (approximately normal per-run means; "
            "dream_mpc/evaluation/intervals.py): runs, not episodes, are the independent unit; with one run there "
            "is no interval. Better or worse with confidence only where the interval excludes 0.\n"
        )
        md.append(
            "| task | method | difference [95 % CI], n runs | episodes | with confidence |\n"
            "|---|---|---|---|---|\n"
            + "\n".join(
                f"| {t} | {m} | {iv.text(1)} | {iv.episodes} | "
                f"{({1: 'better', -1: 'worse'}).get(iv.verdict(), 'no' if iv.defined else '– (no interval)')} |"
                for (t, m), iv in paired.items()
                if m != baseline
            )
            + "\n"
        )
    # tables 8-13
    published = read_tdmpc2_csv(tdmpc2_csv, baseline_step) if tdmpc2_csv else {}
    for algo, tasks_ in (read_bmpc_json(bmpc_json, baseline_step) if bmpc_json else {}).items():
        published.setdefault(algo, {}).update(tasks_)
    by_suite = baselines_by_suite(published) if published else {}
    result["published"] = published
    md.append("## Per-task results (tables 8-13)\n")
    for suite in list(dict.fromkeys(df["suite"])) + [s for s in by_suite if s not in set(df["suite"])]:
        cells, cols, missing = paper_tables.task_table(df, suite, runs, by_suite.get(suite))
        if not cells:
            continue
        rows_ = paper_tables.table_rows(cells, cols, suite)
        title = SUITE_TITLES.get(suite, suite)
        what = "success" if suite == "metaworld" else "episode return"
        writer.text(f"table-{suite}.md", paper_tables.to_markdown(rows_, cols, "Task") + "\n")
        writer.text(f"table-{suite}.tex", paper_tables.to_latex(rows_, cols, "Task") + "\n")
        with open(writer.path(f"table-{suite}.csv"), "w", newline="") as f:
            csv.writer(f).writerows(paper_tables.to_csv_rows(cells, cols))
        result.setdefault("tables", {})[suite] = (cells, cols, missing)
        md += [
            f"### {title}\n",
            f"Mean {what} ± std over runs (each run: the mean over its episodes); Mean row: "
            f"mean ± std over the task means (only for methods with every task). Best **bold**, second best "
            f"<u>underlined</u>. Published baselines: their own seeds (BMPC's files give means only).\n",
            paper_tables.to_markdown(rows_, cols, "Task") + "\n",
            f"Files: table-{suite}.md, table-{suite}.csv, table-{suite}.tex\n",
        ]
        if missing:
            md.append(
                "Missing cells (fewer runs than the others; not filled in, not averaged over fewer silently):"
                "\n\n" + "\n".join(f"- {m}" for m in missing) + "\n"
            )
    # planning time
    means, stds = planning_ms_plot(df, writer)
    md += [
        "## Planning time\n",
        "Planning ms per step (mean ± std over episodes) and non-finite plans replaced by the policy mean:\n",
        "| method | ms / step | non-finite plans |\n|---|---|---|\n"
        + "\n".join(
            f"| {m} | {means[m]:.2f} ± {stds[m]:.2f} | {int(df.loc[df['method'] == m, 'nonfinite'].sum())} |"
            for m in means.index
        )
        + "\n",
        "![planning ms per step](planning-ms.png)\n",
    ]
    # figure 5
    points, reference = sweep_points(df, runs)
    if points:
        sweep_plot(points, reference, writer)
        result["sweep"] = (points, reference)
        md += [
            "## Parameter sweep (figure 5)\n",
            "Dream-MPC return (mean ± std over runs) when one of "
            "num_candidates, iterations, horizon is varied and the others stay at their defaults (dotted line); "
            "dashed: the policy prior alone.\n",
            "![parameter sweep](sweep.png)\n",
        ]
    # latency
    if latency:
        data = json.loads(Path(latency).read_text())
        latency_plot(data, writer)
        md += ["## Latency (tables 2, 15)\n", data.get("table_md", "") + "\n", "![latency](latency.png)\n"]
    md += exploitation.section(rows, writer)  # figure 15, where the records hold predictions (appendix D.3)
    writer.text("report.md", "\n".join(md))
    result["written"] = writer.written
    result["frame"] = df
    print(f"wrote {out}/report.md and {len(writer.written) - 1} more files")
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "folders",
        nargs="+",
        help="result folders (results_dir of evaluate.py), record files, or a report's episodes.csv",
    )
    p.add_argument("--out", required=True)
    p.add_argument("--runs", default="train_seed", help="the resampled unit: train_seed, or train_seed,seed")
    p.add_argument("--baseline", default=None, help='method for paired differences, e.g. "policy (tdmpc2)"')
    p.add_argument("--compare", nargs=2, default=None, metavar=("X", "Y"), help="probability of improvement X > Y")
    p.add_argument("--tdmpc2-csv", nargs="*", default=[], help="folders of TD-MPC2's published CSVs (one per algo)")
    p.add_argument("--bmpc-json", nargs="*", default=[], help="BMPC's published JSON result files")
    p.add_argument("--baseline-step", type=int, default=None, help="published values at this step (default: last)")
    p.add_argument("--latency", default=None, help="JSON written by scripts/latency.py")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--overwrite", action="store_true", help="replace files under results/ that git tracks")
    a = p.parse_args(argv)
    runs = tuple(x.strip() for x in a.runs.split(",") if x.strip())
    bad = [r for r in runs if r not in records.ROW_FIELDS]
    if bad:
        raise UserError(f"--runs: unknown column {bad[0]!r}; use train_seed or train_seed,seed")
    return build(
        a.folders,
        a.out,
        runs,
        a.baseline,
        a.compare,
        a.tdmpc2_csv,
        a.bmpc_json,
        a.latency,
        a.reps,
        a.overwrite,
        a.baseline_step,
    )


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
