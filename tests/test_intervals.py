"""dream_mpc/evaluation/intervals.py: the intervals mean what they say.

Simulation: 1,000 synthetic experiments per number of runs n, normal per-run values with a known mean (numpy seed
fixed); a nominal 95 % interval must hold the true mean in 93-97 % of them (a binomial proportion of 1,000 has a
standard deviation of 0.7 points at 95 %, so the band is about +-3 of them). The Student-t interval passes at every
n; the percentile bootstrap that the project used before fails at n = 3 (it is the [min, max] of the three runs).
"""

import numpy as np
import pytest

from dream_mpc.evaluation import intervals

EXPERIMENTS = 1000
TRUE_MEAN = 26.5


def coverage(method, n):
    rng = np.random.default_rng(n)  # a fixed seed per n
    hits = 0
    for _ in range(EXPERIMENTS):
        x = rng.normal(TRUE_MEAN, 4.0, n)
        iv = method(x, rng)
        hits += iv.low <= TRUE_MEAN <= iv.high
    return hits / EXPERIMENTS


def t_method(x, rng):
    return intervals.t_interval(x)


def paired_method(x, rng):
    # each run's value spread over 4 episodes whose mean is the run's value: the per-run means are x again
    episodes = np.repeat(x, 4) + np.tile([-3.0, -1.0, 1.0, 3.0], len(x))
    return intervals.paired(episodes, np.repeat(np.arange(len(x)), 4))


def percentile_bootstrap(x, rng, reps=2000):
    """The interval this project used before: resample the runs with replacement, 2.5 % and 97.5 % percentiles."""
    means = x[rng.integers(0, len(x), (reps, len(x)))].mean(1)
    return intervals.Interval(float(x.mean()), *np.percentile(means, [2.5, 97.5]), len(x))


@pytest.mark.parametrize("method", [t_method, paired_method], ids=["t_interval", "paired"])
@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_the_95_percent_interval_covers_the_true_mean_95_percent_of_the_time(method, n):
    assert 0.93 <= coverage(method, n) <= 0.97


def test_a_percentile_bootstrap_at_three_runs_fails_the_same_check():
    """Why it is not used: with 3 runs its interval is [min, max] of the three (27 equally likely resamples, the
    extremes among them with probability 1/27 > 2.5 %), which holds the mean with probability 1 - 2/8 = 75 %."""
    c = coverage(percentile_bootstrap, 3)
    assert c < 0.93
    assert c == pytest.approx(0.75, abs=0.04)
    assert intervals.percentile_bootstrap_coverage(3) == pytest.approx(0.75, abs=0.005)


def test_the_t_interval_is_the_textbook_one():
    x = np.array([24.0, 26.0, 31.0])
    iv = intervals.t_interval(x)
    half = 4.302652729911275 * np.std(x, ddof=1) / np.sqrt(3)  # t_{0.975, 2}
    assert (iv.mean, iv.low, iv.high, iv.runs) == pytest.approx((27.0, 27.0 - half, 27.0 + half, 3))


def test_paired_differences_average_within_runs_first():
    """Runs, not episodes, are the unit: a run with 9 episodes and one with 1 weigh the same, and the interval's n
    is 2, not 10."""
    d = np.array([10.0] * 9 + [20.0])
    runs = ["a"] * 9 + ["b"]
    iv = intervals.paired(d, runs)
    assert iv.mean == 15.0 and iv.runs == 2 and iv.episodes == 10
    assert iv.low < 10.0 and iv.high > 20.0  # t_{0.975, 1} = 12.7: two runs give a wide interval, as they should


def test_one_run_gives_no_interval_and_says_so():
    iv = intervals.paired([80.0, 85.0], ["seed=1", "seed=1"])
    assert not iv.defined and iv.runs == 1 and iv.verdict() == 0
    assert iv.text() == "+82.5 (n=1: no interval)"
    assert "0.0" not in iv.text()  # never a zero-width interval or a spread of 0


def test_text_and_verdict():
    iv = intervals.Interval(26.5, 25.7, 27.4, 5)
    assert iv.text() == "+26.5 [+25.7, +27.4], n=5" and iv.verdict() == 1
    assert intervals.Interval(-3.0, -5.0, -1.0, 3).verdict() == -1
    assert intervals.Interval(3.0, -1.0, 7.0, 3).verdict() == 0  # the interval holds 0: no claim
    assert intervals.Interval.from_json(iv.to_json()) == iv


def test_the_bootstrap_threshold_is_where_its_coverage_reaches_93_percent():
    n = intervals.MIN_BOOTSTRAP_RUNS
    assert intervals.percentile_bootstrap_coverage(n) == pytest.approx(0.93, abs=0.0015)
    assert intervals.percentile_bootstrap_coverage(n // 2) < 0.91
    assert intervals.bootstrap_caveat(n) is None
    assert intervals.bootstrap_caveat(3) == (
        "n=3 runs per task: too few for a percentile bootstrap (its nominal 95 % interval covers about 75 %; about "
        "93 % needs 20 runs per task)"
    )
    assert intervals.bootstrap_caveat(1) == "n=1 run per task: no interval"
