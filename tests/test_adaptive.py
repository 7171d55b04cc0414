"""Adaptive planning (dream_mpc/adaptive.py) against closed forms on an analytic world model.

With value scales 0 and horizon 1, J(a0, a1) = -k |a0 - c|^2 - |z0|^2 / 2 (tests/toy_models.py): a concave
quadratic whose gradient step has a closed form, a0' - c = (1 - 2 k alpha)(a0 - c).
"""

import pytest
import torch

from dream_mpc import adaptive, config
from dream_mpc.planners.dream import DreamMPCPlanner
from dream_mpc.planners.grad import GradMPCPlanner
from tests.toy_models import LinearQuadraticModel

GAMMA = 0.9
C = 0.3  # the reward's target action


def make_planner(model=None, clip=1e6, **dream):
    cfg = config.load(["task=cartpole-swingup", "threads=1"])
    cfg.dream.grad_clip_norm = clip  # no clipping: the closed forms hold
    dream = {"horizon": 1, "uncertainty_coef": 0.0, "reuse": 0.0, **dream}
    for k, v in dream.items():
        setattr(cfg.dream, k, v)
    model = model or LinearQuadraticModel(scales=(0.0, 0.0, 0.0), target=C)
    return DreamMPCPlanner(model, cfg, GAMMA), model


def J_of(planner, model, z, a):
    with torch.no_grad():
        return planner.objective(model, z, a, None, GAMMA)


def test_fixed_overshoots_where_backtracking_takes_the_armijo_step():
    z = torch.zeros(6, 3)
    a = torch.rand(6, 2, 2, generator=torch.Generator().manual_seed(0)) * 0.6  # a0 in [0, 0.6]: no clamping
    fixed, model = make_planner(lr=1.5)
    new, J = fixed.optimise(z, a.clone(), None, GAMMA, B=1)
    torch.testing.assert_close(new[:, 0], C - 2 * (a[:, 0] - C))  # 1 - 2 k alpha = -2: J gets worse
    assert (J < J_of(fixed, model, z, a)).all()
    back, _ = make_planner(lr=1.5, step_rule="backtracking")
    new, J = back.optimise(z, a.clone(), None, GAMMA, B=1)
    # alpha = 1.5 fails the Armijo test (|a0 - c| doubles); alpha / 2 = 0.75 passes: a0' - c = -(a0 - c) / 2
    torch.testing.assert_close(new[:, 0], C - 0.5 * (a[:, 0] - C))
    torch.testing.assert_close(new[:, 1], a[:, 1])  # the terminal action has no gradient (zero value)
    torch.testing.assert_close(J, J_of(back, model, z, new))
    assert back.last_search.iterations == 1 and back.last_search.evaluations == 1 + 2 + 1  # start, 2 tries, end


@pytest.mark.parametrize("rule", ["backtracking", "normalized"])
def test_adaptive_rules_never_return_a_lower_J_than_the_start(rule):
    # value and uncertainty on: J is no longer a plain quadratic, and big steps hit the [-1, 1] bounds
    model = LinearQuadraticModel(scales=(0.5, 1.0, 1.5), target=C)
    planner, _ = make_planner(model, clip=20.0, horizon=3, lr=3.0, iterations=4, uncertainty_coef=0.05, step_rule=rule)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(64, 3, generator=g)
    a = torch.rand(64, 4, 2, generator=g) * 2 - 1
    start = J_of(planner, model, z, a)
    new, J = planner.optimise(z, a.clone(), None, GAMMA, B=8)
    torch.testing.assert_close(J, J_of(planner, model, z, new))  # the J returned is the J of the actions returned
    assert (J >= start).all()
    assert (J > start + 1e-3).float().mean() > 0.5  # and most candidates did improve
    fixed, _ = make_planner(model, clip=20.0, horizon=3, lr=3.0, iterations=4, uncertainty_coef=0.05)
    _, J_fixed = fixed.optimise(z, a.clone(), None, GAMMA, B=8)
    assert (J_fixed < start).any()  # the same step size fixed does lose J somewhere: the test can tell


def test_normalized_steps_converge_to_the_optimum():
    planner, model = make_planner(lr=0.5, iterations=40, step_rule="normalized")
    z = torch.zeros(3, 3)
    a = torch.tensor([[[-0.9, 0.8], [0.0, 0.0]], [[0.9, 0.9], [0.1, 0.1]], [[0.3, -1.0], [0.5, 0.5]]])
    new, _ = planner.optimise(z, a, None, GAMMA, B=1)
    torch.testing.assert_close(new[:, 0], torch.full((3, 2), C), atol=2e-3, rtol=0)


def test_early_stopping_stops_at_the_iteration_the_closed_form_predicts():
    # |z0|^2 / 2 = 1/2 and |a0 - c|^2 = 1/2; alpha = 1/4 halves a0 - c per step, so J_n = -(1 + 4^-n) / 2 and the
    # relative gain of step n is 3/4 * 4^-(n-1) / (1 + 4^-(n-1)): 0.375, 0.15, 0.044, 0.0115: below 0.02 at n = 4
    planner, model = make_planner(lr=0.25, iterations=50, tol=0.02)
    z = torch.tensor([[1.0, 0.0, 0.0]])
    a = torch.tensor([[[C + 0.5, C + 0.5], [0.0, 0.0]]])
    new, J = planner.optimise(z, a, None, GAMMA, B=1)
    assert planner.last_search.iterations == 4
    torch.testing.assert_close(new[0, 0], torch.full((2,), C + 0.5 / 2**4))
    torch.testing.assert_close(J, torch.tensor([[-(1 + 4.0**-4) / 2]]))
    capped, _ = make_planner(lr=0.25, iterations=2, tol=0.02)
    capped.optimise(z, a, None, GAMMA, B=1)
    assert capped.last_search.iterations == 2  # dream.iterations stays the cap


class ListClock:
    """Returns the given times (ms) in turn, as seconds: what the planner reads, without waiting on anything."""

    def __init__(self, *ms):
        self.times, self.reads = list(ms), 0

    def __call__(self, device=None):
        self.reads += 1
        return self.times.pop(0) / 1000


def test_budget_stops_before_the_slowest_iteration_would_overrun():
    planner, _ = make_planner(lr=0.1, budget_ms=5.0, num_candidates=3)
    # the plan starts at 0; decisions after each evaluation at 1.0, 1.5, 3.0, 3.2, 4.0 ms. The slowest iteration so
    # far (1.5 ms) predicts the next: 1.5 + 0.5, 3.0 + 1.5, 3.2 + 1.5 fit in 5 ms, 4.0 + 1.5 does not. (Predicting
    # with the last iteration, 4.0 + 0.8, would have gone on.)
    planner.clock = ListClock(0.0, 1.0, 1.5, 3.0, 3.2, 4.0)
    planner.plan(torch.tensor([[0.2, -0.1, 0.4]]), t0=True, eval_mode=True)
    assert planner.last_search.iterations == 4 and planner.last_search.evaluations == 5
    assert planner.last_search.iteration_s == pytest.approx(1.5e-3)
    assert planner.clock.reads == 6 and not planner.clock.times


def test_budget_runs_the_first_iteration_and_respects_its_cap():
    planner, _ = make_planner(budget_ms=0.5)
    planner.clock = ListClock(0.0, 2.0, 4.0)  # over budget from the first decision on
    planner.plan(torch.zeros(1, 3), t0=True, eval_mode=True)
    assert planner.last_search.iterations == 1  # the first iteration always runs
    capped, _ = make_planner(budget_ms=1000.0, budget_iterations=3)
    capped.clock = ListClock(*range(10))
    capped.plan(torch.zeros(1, 3), t0=True, eval_mode=True)
    assert capped.last_search.iterations == 3


def plan_with_clock(planner, *ms, t0=False):
    planner.clock = ListClock(*ms)
    planner.plan(torch.zeros(1, 3), t0=t0, eval_mode=True)
    assert not planner.clock.times  # every scripted time was read: the plan made exactly the decisions scripted
    return planner.last_search


def test_budget_takes_no_step_once_a_steady_iteration_is_known_not_to_fit():
    """A budget the candidates alone spend: once a steady iteration has been timed, plans take no gradient step (the
    overrun is the fixed part's excess, not an iteration more). The warm-up plans (cold: here 200 ms iterations)
    are probes whose times are left out; the estimate is the steady one (2 ms), not the cold one, so a budget of
    5 ms with a 1 ms fixed part takes steps at once after the warm-up."""
    planner, _ = make_planner(budget_ms=0.5)
    for i in range(adaptive.WARMUP_PLANS):  # cold plans: one step each (a probe), 200 ms: left out of the estimate
        s = plan_with_clock(planner, 0.0, 1.0, 201.0, t0=i == 0)
        assert s.iterations == 1 and s.iteration_s == pytest.approx(0.2)
    assert planner.iteration_times.estimate() == 0.0  # nothing steady timed yet: the next plan probes too
    s = plan_with_clock(planner, 0.0, 1.0, 3.0)  # the first steady iteration: 2 ms
    assert s.iterations == 1 and planner.iteration_times.estimate() == pytest.approx(2e-3)
    s = plan_with_clock(planner, 10.0, 11.0)  # the candidates took 1 ms, a 2 ms step cannot fit in 0.5 ms
    assert s.iterations == 0 and s.evaluations == 1  # scored, no graph built
    assert s.known_iteration_s == pytest.approx(2e-3)
    wide, _ = make_planner(budget_ms=4.5)  # the same timings with room for one steady iteration, not two
    for i in range(adaptive.WARMUP_PLANS):
        plan_with_clock(wide, 0.0, 1.0, 201.0, t0=i == 0)
    plan_with_clock(wide, 0.0, 1.0, 3.0)
    # entry 0; the fixed part ends at 1 ms (1 + 2 fits in 4.5, read twice: before scoring and at the first decision);
    # after the step, 3 ms (3 + 2 does not fit)
    s = plan_with_clock(wide, 0.0, 1.0, 1.0, 3.0)
    assert s.iterations == 1 and s.evaluations == 2


def test_the_iteration_estimate_is_a_median_that_never_fades():
    """One slow iteration (another process took the core) does not move the estimate; plans without a step do not
    fade it (the old rule forgot it at 1 % a plan: at 20 ms no step was taken for ~200 plans); a step is retried
    (a probe) only every PROBE_EVERY plans without one, and its time joins the median."""
    times = adaptive.IterationTimes(warmup=0, window=5, probe_every=50)

    class Search:
        def __init__(self, *s):
            self.iteration_times = list(s)

    times.record(Search(0.007, 0.008, 0.150, 0.007))  # one outlier among steady 7-8 ms iterations
    assert times.estimate() == pytest.approx(0.0075)
    for _ in range(49):
        times.record(Search())
        assert times.estimate() == pytest.approx(0.0075)  # not forgotten
    times.record(Search())
    assert times.estimate() == 0.0  # the 50th plan in a row without a step: probe
    times.record(Search(0.003))
    assert times.estimate() == pytest.approx(0.007)  # the probe's time enters the window of the last 5


def test_budget_probes_again_after_probe_every_plans_without_a_step():
    planner, _ = make_planner(budget_ms=0.5)
    for i in range(adaptive.WARMUP_PLANS + 1):
        plan_with_clock(planner, 0.0, 1.0, 3.0, t0=i == 0)
    steps = [plan_with_clock(planner, 0.0, 1.0).iterations for _ in range(adaptive.PROBE_EVERY)]
    assert steps == [0] * adaptive.PROBE_EVERY
    assert plan_with_clock(planner, 0.0, 1.0, 3.0).iterations == 1  # the probe
    assert plan_with_clock(planner, 0.0, 1.0).iterations == 0


def test_grad_mpc_takes_the_adaptive_options():
    cfg = config.load(["task=cartpole-swingup", "threads=1", "grad.step_rule=backtracking", "grad.tol=0.01"])
    planner = GradMPCPlanner(LinearQuadraticModel(), cfg, GAMMA)
    assert planner.opt.step_rule == "backtracking" and planner.opt.tol == 0.01 and planner.opt.reuse == 0.0
    action, info = planner.plan(torch.zeros(2, 3), t0=True, eval_mode=True)
    assert planner.last_search is not None and torch.isfinite(info["value"]).all()


def test_bad_adaptive_options_are_one_line_errors():
    from dream_mpc.errors import UserError

    with pytest.raises(UserError, match="dream.step_rule must be one of fixed, backtracking, normalized"):
        config.load(["task=cartpole-swingup", "dream.step_rule=linesearch"])
    with pytest.raises(UserError, match="dream.budget_ms must be a number >= 0"):
        config.load(["task=cartpole-swingup", "dream.budget_ms=-1"])
