"""Confidence intervals: the one place where the project's tables, reports, figures and docs get them (the methods
and why: docs/evaluation.md, "Intervals").

**Paired differences over runs** (`paired`, `t_interval`): the per-episode differences are averaged within each run
(a seed: the independent unit), then Student's t interval of the mean of the n per-run means,
mean ± t_{0.975, n-1} · s / √n (s with ddof = 1): exact for normal per-run means, valid at any n >= 2; none with
n < 2 ("n=1: no interval"). **Aggregates over tasks** (rliable's IQM, mean, median, optimality gap, profiles,
probability of improvement) have no closed form and stay rliable's stratified percentile bootstrap over runs, whose
coverage of one mean at n runs is about P(|t_{n-1}| <= z √((n-1)/n)) (`percentile_bootstrap_coverage`: 75 % at 3
runs, [min, max]); `bootstrap_caveat` marks them below `MIN_BOOTSTRAP_RUNS` runs per task.
**Claims**: "better (worse) with confidence" means the interval lies entirely above (below) zero (`Interval.verdict`).
"""

import math
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
MIN_BOOTSTRAP_RUNS = 20  # runs per task from which a percentile bootstrap's coverage reaches ~93 % (see above)
METHOD = "Student-t over runs"


@dataclass(frozen=True)
class Interval:
    """A mean over `runs` runs with its `LEVEL` interval (`low`, `high`; None when there is none) and the episodes
    behind it."""

    mean: float
    low: float | None
    high: float | None
    runs: int
    episodes: int | None = None

    @property
    def defined(self):
        return self.low is not None and self.high is not None

    @property
    def why(self):
        """Why there is no interval (None when there is one)."""
        return None if self.defined else f"n={self.runs}: no interval"

    def verdict(self):
        """+1 better with confidence (the interval above 0), -1 worse with confidence (below 0), 0 otherwise or
        without an interval."""
        if not self.defined:
            return 0
        return 1 if self.low > 0 else -1 if self.high < 0 else 0

    def text(self, digits=1, runs=True):
        """'+26.5 [+25.7, +27.4], n=5', or '+82.5 (n=1: no interval)'."""
        f = f"{{:+.{digits}f}}"
        if not self.defined:
            return f"{f.format(self.mean)} ({self.why})"
        body = f"{f.format(self.mean)} [{f.format(self.low)}, {f.format(self.high)}]"
        return body + (f", n={self.runs}" if runs else "")

    def as_tuple(self):
        return (self.mean, self.low, self.high)

    def to_json(self):
        return {"mean": self.mean, "low": self.low, "high": self.high, "runs": self.runs, "episodes": self.episodes}

    @classmethod
    def from_json(cls, d):
        return cls(d["mean"], d["low"], d["high"], int(d["runs"]), d.get("episodes"))


def t_quantile(n, level=LEVEL):
    """The two-sided `level` quantile of Student's t with n - 1 degrees of freedom (scipy.stats)."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, n - 1))


def t_interval(values, level=LEVEL, episodes=None):
    """Student's t interval of the mean of `values` (one number per run; see the module's docstring)."""
    v = np.asarray(values, dtype=float).ravel()
    n = len(v)
    if n == 0:
        raise ValueError("no runs: nothing to average")
    mean = float(v.mean())
    if n < 2:
        return Interval(mean, None, None, n, episodes)
    half = t_quantile(n, level) * float(v.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, episodes)


def run_means(values, runs):
    """The mean of `values` within each run (`runs`: one label per value), in the order the runs first appear."""
    values, runs = np.asarray(values, dtype=float), list(runs)
    order = list(dict.fromkeys(runs))
    index = {r: i for i, r in enumerate(order)}
    codes = np.array([index[r] for r in runs])
    sums = np.bincount(codes, weights=values, minlength=len(order))
    return sums / np.bincount(codes, minlength=len(order))


def paired(differences, runs, level=LEVEL):
    """The interval of a paired difference: per-episode `differences` (planner - baseline on the same episode) and
    each one's run; averaged within runs, then Student's t over the per-run means."""
    differences = np.asarray(differences, dtype=float)
    return t_interval(run_means(differences, runs), level, episodes=len(differences))


# ------------------------------------------------------------------------------------- the percentile bootstrap
def percentile_bootstrap_coverage(n, level=LEVEL):
    """Approximate coverage of a nominal `level` percentile-bootstrap interval of one mean of n normal runs:
    P(|t_{n-1}| <= z √((n-1)/n)) (the bootstrap's plug-in spread with normal quantiles); at n = 3 it is 75 %, the
    exact coverage of [min, max]."""
    from scipy import stats

    if n < 2:
        return 0.0
    z = float(stats.norm.ppf(0.5 + level / 2))
    return float(2 * stats.t.cdf(z * math.sqrt((n - 1) / n), n - 1) - 1)


def bootstrap_caveat(runs_per_task):
    """None when `runs_per_task` (the fewest runs of any task) is enough for a percentile bootstrap; else the note a
    table or figure carries beside the interval."""
    n = int(runs_per_task)
    if n < 2:
        return f"n={n} run per task: no interval"
    if n >= MIN_BOOTSTRAP_RUNS:
        return None
    return (
        f"n={n} runs per task: too few for a percentile bootstrap (its nominal {100 * LEVEL:.0f} % interval covers "
        f"about {100 * percentile_bootstrap_coverage(n):.0f} %; about 93 % needs {MIN_BOOTSTRAP_RUNS} runs per task)"
    )
