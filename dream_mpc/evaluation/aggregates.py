"""Statistics over evaluation records (records.py) with rliable: score matrices, IQM / mean / median /
optimality gap with stratified-bootstrap confidence intervals, performance profiles, probability of improvement,
and paired per-episode differences (the paper's per-task tables are scripts/paper_tables.py's).

The resampled unit is the *run*: by default a training seed (`runs=("train_seed",)`). A run's score on a task is
the mean normalized score (the suite's `normalized_score`: DMControl return/1000, HumanoidBench
(x - random)/(target - random), Meta-World success) over all its episodes and evaluation seeds, so the score matrix
of a method is (runs x tasks) and rliable's stratified bootstrap resamples runs within each task; episodes are
never resampled. With one training seed per checkpoint (the bundled agents) `runs=("train_seed", "seed")` treats
(training seed, evaluation seed) pairs as runs, and the report says so.
Intervals are intervals.py's: rliable's bootstrap only for methods with at least 2 runs per task, with a note below
`intervals.MIN_BOOTSTRAP_RUNS` (`bootstrap_note`).
"""

import json

import numpy as np

from dream_mpc.evaluation import intervals

METRICS = ("Median", "IQM", "Mean", "Optimality Gap")
SWEEP_KEYS = ("num_candidates", "iterations", "horizon")


# --------------------------------------------------------------------------------------------- methods
LABEL_FIELDS = ("planning_dtype", "device", "eval_noise")  # job fields besides the options that name a method


def varying_keys(settings):
    """The keys whose values differ between the settings (dicts; a key one of them lacks counts as None there)."""
    names = set().union(*map(set, settings))
    return {k for k in names if len({json.dumps(s.get(k), default=str) for s in settings}) > 1}


def method_labels(df):
    """A method name per row: `<planner> (<agent>)`, plus whatever else of the job differs between rows of the same
    planner and agent on the same task (an option, `planning_dtype`, `device`, `eval_noise`), e.g.
    `dream (tdmpc2) horizon=5`, so that a parameter sweep gives one method per point and runs that differ in anything
    that changes their numbers are never averaged together. (What differs only between tasks, like the discount, does
    not split a method.)"""
    fields = [c for c in LABEL_FIELDS if c in df.columns]

    def settings(row):
        s = json.loads(row["options"]) if isinstance(row["options"], str) else {}
        s.update({c: row[c] for c in fields})
        return s

    sets = [settings(r) for _, r in df.iterrows()]
    keys = [json.dumps(x, sort_keys=True, default=str) for x in sets]
    varying = {}  # (agent, planner) -> keys that differ between the settings used on one task
    seen = {}
    for (agent, planner, task), key in zip(zip(df["agent"], df["planner"], df["task"]), keys):
        seen.setdefault((agent, planner, task), {})[key] = json.loads(key)
    for (agent, planner, _), group in seen.items():
        varying.setdefault((agent, planner), set()).update(varying_keys(list(group.values())))
    labels = []
    for agent, planner, s in zip(df["agent"], df["planner"], sets):
        extra = " ".join(f"{k}={s.get(k)}" for k in sorted(varying[(agent, planner)]))
        labels.append(f"{planner} ({agent})" + (f" {extra}" if extra else ""))
    return labels


def run_ids(df, runs=("train_seed",)):
    """The run (resampled unit) of each row, named by the `runs` columns: 'train_seed=1' or 'train_seed=1,seed=2'."""
    cols = df[list(runs)].astype(object).where(df[list(runs)].notna(), None)
    return [",".join(f"{k}={x}" for k, x in zip(runs, v)) for v in cols.values]


# --------------------------------------------------------------------------------------------- matrices
def run_task_scores(df, value="score", runs=("train_seed",)):
    """DataFrame (method, task, run) -> mean of `value` over that run's episodes (and evaluation seeds)."""
    df = df.copy()
    df["method"] = method_labels(df)
    df["run"] = run_ids(df, runs)
    return df.groupby(["method", "task", "run"], sort=False)[value].mean().reset_index()


def score_matrices(df, runs=("train_seed",), methods=None):
    """{method: (runs x tasks) matrix} over the tasks every method has, keeping only the runs that have every one of
    those tasks; and a list of what was left out (so the report can say it, never averaging fewer silently)."""
    cells = run_task_scores(df, "score", runs)
    methods = methods or list(dict.fromkeys(cells["method"]))
    tasks = sorted(set.intersection(*(set(cells.loc[cells["method"] == m, "task"]) for m in methods)))
    all_tasks = sorted(set(cells["task"]))
    notes = [f"task {t} left out of the aggregates: not run by every method" for t in all_tasks if t not in tasks]
    matrices = {}
    for m in methods:
        c = cells[(cells["method"] == m) & cells["task"].isin(tasks)]
        table = c.pivot_table(index="run", columns="task", values="score", aggfunc="mean").reindex(columns=tasks)
        complete = table.dropna()
        for i in np.flatnonzero(table.isna().any(axis=1).to_numpy()):
            run, missing = table.index[i], [t for t, gap in zip(tasks, table.iloc[i].isna()) if gap]
            notes.append(f"{m}: run {run} left out of the aggregates: no episodes on {', '.join(missing)}")
        matrices[m] = complete.to_numpy(dtype=float)
    return matrices, tasks, notes


# --------------------------------------------------------------------------------------------- rliable
def aggregate_func(scores):
    from rliable import metrics

    return np.array(
        [
            metrics.aggregate_median(scores),
            metrics.aggregate_iqm(scores),
            metrics.aggregate_mean(scores),
            metrics.aggregate_optimality_gap(scores),
        ]
    )


def with_intervals(matrices):
    """The methods whose score matrices have at least 2 runs per task: the only ones a bootstrap can give an interval
    (with one run every resample is the run itself, a zero-width interval that means nothing)."""
    return {m: x for m, x in matrices.items() if len(x) >= 2}


def bootstrap_note(matrices):
    """One line for a table or figure: the runs per task of each method and, where they are fewer than
    intervals.MIN_BOOTSTRAP_RUNS, what that means for the percentile bootstrap's intervals (None: nothing to say)."""
    counts = sorted({len(x) for x in matrices.values()})
    if not counts:
        return None
    caveat = intervals.bootstrap_caveat(min(counts))
    if caveat is None:
        return None
    return caveat if len(counts) == 1 else f"runs per task: {', '.join(map(str, counts))}; fewest: {caveat}"


def aggregate_intervals(matrices, reps=2000, seed=0, method="percentile"):
    """rliable's point estimates and stratified-bootstrap 95 % CIs of (median, IQM, mean, optimality gap) for the
    methods with at least 2 runs per task (`with_intervals`); the others get their point estimates only (no key in
    the CIs)."""
    from rliable import library as rly

    points = {m: aggregate_func(x) for m, x in matrices.items()}
    usable = with_intervals(matrices)
    if not usable:
        return points, {}
    np.random.seed(seed)  # rliable draws its indices from the global numpy stream
    boot_points, cis = rly.get_interval_estimates(usable, aggregate_func, reps=reps, method=method)
    points.update(boot_points)
    return points, cis


def performance_profiles(matrices, taus=None, reps=2000, seed=0):
    """rliable's score distributions (fraction of run x task scores above tau) with their CIs (only for the methods
    with at least 2 runs per task)."""
    from rliable import library as rly

    taus = np.linspace(0, 1.0, 41) if taus is None else np.asarray(taus)
    np.random.seed(seed)
    profiles, cis = rly.create_performance_profile(matrices, taus, reps=reps)
    usable = with_intervals(matrices)
    return taus, profiles, {m: c for m, c in cis.items() if m in usable}


def probability_of_improvement(matrices, pairs, reps=2000, seed=0):
    """P(X > Y) for each (X, Y) pair, with rliable's independent stratified bootstrap CIs; pairs where either side
    has fewer than 2 runs per task get their point estimate and no CI."""
    from rliable import library as rly
    from rliable import metrics

    usable = with_intervals(matrices)
    points = {f"{x},{y}": metrics.probability_of_improvement(matrices[x], matrices[y]) for x, y in pairs}
    boot = {f"{x},{y}": [matrices[x], matrices[y]] for x, y in pairs if x in usable and y in usable}
    if not boot:
        return points, {}
    np.random.seed(seed)
    boot_points, cis = rly.get_interval_estimates(boot, metrics.probability_of_improvement, reps=reps)
    points.update(boot_points)
    return points, cis


# --------------------------------------------------------------------------------------------- paired
def paired_differences(df, baseline, value="return", runs=("train_seed",), by=("task", "method")):
    """Per `by` group (default (task, method), over all checkpoints of the task): the mean difference to `baseline`
    on the same episodes, i.e. the same (task, checkpoint, eval noise, evaluation seed, episode): those start from
    the same initial state. The differences are averaged within each run (the `runs` columns), and the interval is
    Student's t over those per-run means (dream_mpc/evaluation/intervals.py; none with one run), never a resampling
    of single episodes. Returns {group: intervals.Interval} (with its runs and episodes); the baseline itself gets
    zeros."""
    df = df.copy()
    if "method" not in df:
        df["method"] = method_labels(df)
    df["run"] = run_ids(df, runs)
    key = ["task", "checkpoint", "eval_noise", "seed", "episode"]
    base = df[df["method"] == baseline].drop_duplicates(key).set_index(key)[value]
    out = {}
    for group, g in df.groupby(list(by), sort=False):
        idx = g.set_index(key).index
        have = idx.isin(base.index)
        if not have.any():
            continue
        d = g[value].to_numpy(dtype=float)[have] - base.loc[idx[have]].to_numpy(dtype=float)
        out[group] = intervals.paired(d, g["run"].to_numpy()[have])
    return out
