"""The adaptive comparison measures the anytime mode as it runs: each plan reports its own search effort.

With an injected clock the planner's decisions are known in advance: a 0.5 ms budget, a fixed part of 1 ms and 2 ms
iterations take one (probe) step in each warm-up plan and the first steady one, and none after (a 2 ms step cannot
fit). The plan info says so plan by plan (`iterations`, `evaluations`), evaluate.py's records average it per
episode, and scripts/compare_adaptive.py reads the records. (An older harness reset `planner.last_search` after
every plan, which made every plan the first one: one step each, whatever the budget.)"""

import sys

import pytest
import torch

from dream_mpc import adaptive
from tests.conftest import ROOT
from tests.test_adaptive import ListClock, make_planner

sys.path.insert(0, str(ROOT / "scripts"))
import compare_adaptive  # noqa: E402
import compare_planners  # noqa: E402

PROBES = adaptive.WARMUP_PLANS + 1  # plans that take a step before a steady iteration is known


def clocks(plans):
    """The clock of each plan: entry 0; then, for a probe, its first decision at 1 ms and the next at 3 ms; once an
    iteration is known, the check before scoring at 1 ms (2 more ms cannot fit in 0.5)."""
    return [ListClock(0.0, 1.0, 3.0) if i < PROBES else ListClock(0.0, 1.0) for i in range(plans)]


def run(planner, plans):
    """(iterations, evaluations) of each plan as its info reports them, checked against the search itself."""
    taken = []
    for i, clock in enumerate(clocks(plans)):
        planner.clock = clock
        _, info = planner.plan(torch.zeros(1, 3), t0=i == 0, eval_mode=True)
        assert not clock.times  # the plan made exactly the decisions scripted
        assert (info["iterations"], info["evaluations"]) == (
            planner.last_search.iterations,
            planner.last_search.evaluations,
        )
        taken.append((info["iterations"], info["evaluations"]))
    return taken


def test_each_plan_reports_exactly_the_steps_it_took():
    plans = 12
    planner, _ = make_planner(budget_ms=0.5)
    taken = run(planner, plans)
    assert [it for it, _ in taken] == [1] * PROBES + [0] * (plans - PROBES)  # the budget remembered its iteration
    assert planner.iteration_times.estimate() == pytest.approx(2e-3)


def test_fixed_step_plans_report_the_configured_search():
    planner, _ = make_planner(iterations=3)
    infos = [planner.plan(torch.zeros(1, 3), eval_mode=True)[1] for _ in range(2)]
    assert [(i["iterations"], i["evaluations"]) for i in infos] == [(3, 4), (3, 4)]


@pytest.mark.slow  # two real episodes of the bundled cartpole agent (~30 s)
def test_the_comparison_records_the_search_of_each_episode(tmp_path, monkeypatch):
    """compare_adaptive.py through evaluate.py's records: the fixed step takes its one step a plan; a budget too small
    for any step takes only the warm-up probes and a probe every hundred plans."""
    monkeypatch.chdir(tmp_path)  # the jobs' work folders
    out = tmp_path / "adaptive"
    compare_adaptive.main(
        [
            "--checkpoints",
            str(ROOT / "agents" / "cartpole-swingup-tdmpc2-1M.pt"),
            "--variants",
            "fixed=",
            "tiny budget=dream.budget_ms=0.001",
            "--seeds",
            "1",
            "--episodes",
            "1",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    rows = {r["planner"]: r for r in compare_planners.read_rows(out / "episodes.csv")}
    assert (rows["fixed"]["iterations"], rows["fixed"]["evaluations"]) == (1.0, 2.0)
    assert 0 < rows["tiny budget"]["iterations"] < 0.05  # probes only
    assert sorted(p.name for p in (out / "records").iterdir()) == ["variant-0", "variant-1"]
    assert "iterations / step" in (out / "table.md").read_text()
