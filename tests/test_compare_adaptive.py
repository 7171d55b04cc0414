"""scripts/compare_adaptive.py's harness measures the anytime mode as it runs, without disturbing it.

With an injected clock the planner's decisions are known in advance: a 0.5 ms budget, a fixed part of 1 ms and 2 ms
iterations take one (probe) step in each warm-up plan and the first steady one, and none after (a 2 ms step cannot
fit). The old harness reset `planner.last_search` after every plan, which made every plan the first one: one step
each, whatever the budget."""

import sys

import pytest
import torch

from dream_mpc import adaptive
from tests.conftest import ROOT
from tests.test_adaptive import ListClock, make_planner

sys.path.insert(0, str(ROOT / "scripts"))
import compare_adaptive  # noqa: E402

PROBES = adaptive.WARMUP_PLANS + 1  # plans that take a step before a steady iteration is known


def clocks(plans):
    """The clock of each plan: entry 0; then, for a probe, its first decision at 1 ms and the next at 3 ms; once an
    iteration is known, the check before scoring at 1 ms (2 more ms cannot fit in 0.5)."""
    return [ListClock(0.0, 1.0, 3.0) if i < PROBES else ListClock(0.0, 1.0) for i in range(plans)]


def run(planner, plans, counter=None):
    taken = []
    for i, clock in enumerate(clocks(plans)):
        planner.clock = clock
        planner.plan(torch.zeros(1, 3), t0=i == 0, eval_mode=True)
        assert not clock.times  # the plan made exactly the decisions scripted
        taken.append((planner.last_search.iterations, planner.last_search.evaluations))
    return taken


def test_the_counter_counts_exactly_the_steps_the_planner_took():
    plans = 12
    alone, _ = make_planner(budget_ms=0.5)
    truth = run(alone, plans)
    assert [it for it, _ in truth] == [1] * PROBES + [0] * (plans - PROBES)  # the budget remembered its iteration
    watched, _ = make_planner(budget_ms=0.5)
    with compare_adaptive.SearchCounter(watched) as counter:
        seen = run(watched, plans)
    assert seen == truth  # the planner behaves as it does unwatched
    assert list(zip(counter.iterations, counter.evaluations)) == truth  # and the counter saw exactly that
    assert "plan" not in watched.__dict__  # the wrapper is gone after the episode
    assert watched.iteration_times.estimate() == alone.iteration_times.estimate() == pytest.approx(2e-3)


def test_fixed_step_plans_are_counted_as_configured():
    planner, _ = make_planner(iterations=3)
    with compare_adaptive.SearchCounter(planner) as counter:
        for _ in range(2):
            planner.plan(torch.zeros(1, 3), eval_mode=True)
    assert counter.iterations == [3, 3] and counter.evaluations == [4, 4]
