"""ESNR (eq. 17) and the gradient statistics against hand computations, and scripts/analyze_gradients.py's
gradients against closed forms through the true pendulum."""

import csv
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from dream_mpc import config
from dream_mpc.errors import UserError
from dream_mpc.gradient_stats import esnr, gradient_stats, median, signal_and_noise
from dream_mpc.models.pendulum import DT, PendulumModel, angle_normalize
from dream_mpc.planner import make_planner

ROOT = Path(__file__).resolve().parents[1]


def test_esnr_of_fixed_vectors_by_hand():
    # condition 1: draws (1, 0), (3, 2): mean (2, 1), |mean|^2 = 5; unbiased variances 2 and 2 (trace 4), K = 2:
    # signal 5 - 4 / 2 = 3, ratio 3 / 4 (the plug-in 5 / 4)
    # condition 2: draws (0, 1), (0, -1), (0, 3): mean (0, 1), |mean|^2 = 1; variances 0 and 4, K = 3:
    # signal 1 - 4 / 3 = -1 / 3, ratio -1 / 12 (the plug-in 1 / 4)
    c1 = torch.tensor([[1.0, 0.0], [3.0, 2.0], [1.0, 0.0]])[:2]
    c2 = torch.tensor([[0.0, 1.0], [0.0, -1.0], [0.0, 3.0]])
    assert esnr(c1.unsqueeze(0)) == pytest.approx(0.75)
    assert esnr(c1.unsqueeze(0), unbiased=False) == pytest.approx(1.25)
    assert esnr(c2.unsqueeze(0)) == pytest.approx(-1 / 12)
    assert esnr(c2.unsqueeze(0), unbiased=False) == pytest.approx(0.25)
    both = torch.stack([torch.cat([c1, c1[:1]]), c2])  # three draws each: c1 with (1, 0) twice
    # c1 with draws (1,0), (3,2), (1,0): mean (5/3, 2/3), |mean|^2 = 29/9; variances 4/3 and 4/3 (trace 8/3):
    # ratio (29/9 - 8/9) / (8/3) = 7/8
    assert esnr(both) == pytest.approx((7 / 8 - 1 / 12) / 2)
    third = torch.tensor([[[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]])  # identical draws: no noise, an infinite ratio
    stats = gradient_stats(torch.cat([both, torch.cat([third, both[:1]])]))
    # ratios 7/8, -1/12, inf, 7/8: the true median of four is the mean of the middle two (7/8, 7/8)
    assert stats["esnr"] == float("inf") and stats["esnr_median"] == pytest.approx(7 / 8)
    assert stats["esnr_plugin"] == float("inf")


def test_median_is_the_mean_of_the_two_middle_values_for_an_even_length():
    x = torch.tensor([4.0, 1.0, 10.0, 2.0])  # sorted 1, 2, 4, 10: the median is 3 (torch.median says 2)
    assert float(median(x)) == 3.0 and float(torch.median(x)) == 2.0
    assert float(median(torch.tensor([5.0, -1.0, 3.0]))) == 3.0
    # through gradient_stats: four conditions whose ratios are 1/2 - 1/2, 2 - 1/2, 8 - 1/2, 32 - 1/2 (K = 2)
    rows = []
    for signal in (0.5, 2.0, 8.0, 32.0):
        # two draws m +- e with |e|^2 = 1/2: trace of the unbiased covariance 2 |e|^2 = 1, |mean|^2 = signal
        m = torch.tensor([signal**0.5, 0.0])
        e = torch.tensor([0.0, 0.5**0.5])
        rows.append(torch.stack([m + e, m - e]))
    stats = gradient_stats(torch.stack(rows))
    assert stats["esnr_median"] == pytest.approx((1.5 + 7.5) / 2)  # the lower median would say 1.5
    assert stats["esnr"] == pytest.approx((0 + 1.5 + 7.5 + 31.5) / 4)


def test_unbiased_signal_centres_on_zero_without_signal_where_the_plugin_sits_at_trace_over_k():
    torch.manual_seed(0)
    C, K, D = 4000, 8, 5
    L = torch.tensor(
        [[1.0, 0, 0, 0, 0], [0.5, 2.0, 0, 0, 0], [-0.3, 0.2, 0.7, 0, 0], [0, 0, 0, 0.4, 0], [0.1, 0, 0, 0.3, 1.5]]
    )
    trace = float((L @ L.T).trace())
    draws = torch.randn(C, K, D) @ L.T  # zero mean, covariance L L^T
    signal, noise = signal_and_noise(draws)
    plugin, _ = signal_and_noise(draws, unbiased=False)
    se = float(signal.std()) / C**0.5
    assert abs(float(signal.mean())) < 4 * se  # E = 0
    assert float(plugin.mean()) == pytest.approx(trace / K, rel=0.05)  # E = tr(Sigma) / K
    assert float(noise.mean()) == pytest.approx(trace, rel=0.03)
    # the ratios: the plug-in ESNR is the unbiased one plus exactly 1/K; the unbiased one is near 0 (a ratio is
    # not unbiased: with m and S independent, E = E|m|^2 E[1/tr S] - 1/K >= 0 by Jensen, here about 0.1/K from
    # tr(S)'s few degrees of freedom, 7 x 5 draws; at 64 draws it is negligible)
    assert esnr(draws, unbiased=False) == pytest.approx(esnr(draws) + 1 / K)
    assert 0 <= esnr(draws) < 0.15 / K
    # with a signal: the unbiased numerator recovers |mu|^2 from K = 4 draws, the plug-in is tr(Sigma) / 4 above it
    mu = torch.tensor([1.0, -0.5, 0.0, 0.25, 0.0])
    draws = mu + torch.randn(C, 4, D) @ L.T
    signal, _ = signal_and_noise(draws)
    plugin, _ = signal_and_noise(draws, unbiased=False)
    assert float(signal.mean()) == pytest.approx(float(mu.pow(2).sum()), abs=4 * float(signal.std()) / C**0.5)
    assert float(plugin.mean() - signal.mean()) == pytest.approx(trace / 4, rel=0.05)


def test_esnr_of_gaussian_draws_is_mean_norm_over_trace_of_covariance():
    torch.manual_seed(0)
    mean = torch.tensor([1.0, -2.0, 0.5])
    L = torch.tensor([[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [-0.3, 0.2, 0.7]])
    cov = L @ L.T
    draws = mean + torch.randn(4, 50_000, 3) @ L.T
    expected = mean.pow(2).sum() / cov.trace()  # 5.25 / 5.87
    assert esnr(draws) == pytest.approx(float(expected), rel=0.02)
    stats = gradient_stats(draws)
    assert stats["var_within"] == pytest.approx(float(cov.trace()), rel=0.02)
    assert stats["var_total"] == pytest.approx(float(cov.trace()), rel=0.02)  # same distribution in every condition


def test_gradient_stats_by_hand():
    g = torch.tensor([[[3.0, 4.0], [0.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]])  # 2 conditions x 2 draws
    stats = gradient_stats(g)
    assert stats["norm"] == pytest.approx((5 + 0 + 1 + 1) / 4)
    assert stats["var_within"] == pytest.approx((4.5 + 8.0 + 0.0) / 2)  # condition 1: var 4.5 and 8; condition 2: 0
    # all four draws (3, 4), (0, 0), (1, 0), (1, 0): mean (1.25, 1); squared deviations 1.75^2 + 1.25^2 + 2 x 0.25^2
    # = 4.75 and 3^2 + 3 x 1^2 = 12, over 3 (unbiased)
    assert stats["var_total"] == pytest.approx((4.75 + 12) / 3)


def test_esnr_needs_two_draws():
    with pytest.raises(ValueError, match="draws >= 2"):
        esnr(torch.ones(3, 1, 2))


def load_script():
    spec = importlib.util.spec_from_file_location("analyze_gradients", ROOT / "scripts" / "analyze_gradients.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_gradients_have_the_closed_form_through_the_true_model():
    script = load_script()
    cfg = config.load(["task=gym-pendulum", "threads=1", "grad.num_candidates=8"])
    cfg.obs_shape, cfg.action_dim, cfg.episode_length = {"state": (3,)}, 1, 200
    model = PendulumModel()
    planner = make_planner("grad", model, cfg, 0.99)
    z = torch.tensor([[2.0, 0.3], [-0.4, -0.8]])
    # H = 1: R = r(z0, a0) = -(angle^2 + 0.1 thdot^2 + 0.001 (2 a0)^2), so dR/da0 = -0.008 a0
    torch.manual_seed(3)
    g, first = script.gradients(planner, model, z, 1, "return")
    torch.manual_seed(3)
    a = planner.initial_candidates(z, None, t0=True, reanalyze=False)
    assert g.shape == (2, 8, 1)
    torch.testing.assert_close(g, -0.008 * a[:, :1].reshape(2, 8, 1))
    torch.testing.assert_close(first, a[:, 0].reshape(2, 8, 1))
    stats = script.first_action_stats(first)
    assert stats["saturated"] == pytest.approx(float((a[:, 0].abs() > 0.99).float().mean()))
    # H = 2: a0 also moves z1: thdot1 = thdot0 + (15 sin th0 + 3 u0) dt, th1 = th0 + thdot1 dt, u0 = 2 a0
    torch.manual_seed(3)
    planner.opt.horizon = planner.horizon = planner.seq_len = 2
    g, _ = script.gradients(planner, model, z, 2, "return")
    torch.manual_seed(3)
    a = planner.initial_candidates(z, None, t0=True, reanalyze=False).double()
    th0, thdot0 = z[:, 0].double().repeat_interleave(8), z[:, 1].double().repeat_interleave(8)
    thdot1 = thdot0 + (15 * torch.sin(th0) + 6 * a[:, 0, 0]) * DT
    th1 = th0 + thdot1 * DT
    dthdot1 = 6 * DT  # d thdot1 / d a0 (no clip: |thdot1| < 8)
    dr1 = -(2 * angle_normalize(th1) * dthdot1 * DT + 0.2 * thdot1 * dthdot1)
    expected = torch.stack([dr1 - 0.008 * a[:, 0, 0], -0.008 * a[:, 1, 0]], -1).reshape(2, 8, 2).float()
    torch.testing.assert_close(g, expected, rtol=1e-4, atol=1e-6)
    assert math.isfinite(gradient_stats(g)["esnr"])


@pytest.mark.slow
def test_script_writes_its_table_reproducibly_and_never_overwrites(tmp_path):
    script = load_script()
    small = ["--horizons", "1", "3", "--seeds", "2", "--states", "3", "--draws", "4"]
    script.main([*small, "--out", str(tmp_path / "a")])
    script.main([*small, "--out", str(tmp_path / "b")])
    rows = list(csv.DictReader(open(tmp_path / "a" / "gradients.csv")))
    assert len(rows) == 2 * 2 * 2 * 2  # seeds x models x methods x horizons
    assert (tmp_path / "a" / "gradients.csv").read_text() == (tmp_path / "b" / "gradients.csv").read_text()
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())["summary"]
    assert len(summary) == 8 and all(r["seeds"] == 2 for r in summary)
    assert (tmp_path / "a" / "fig13_gradients.png").stat().st_size > 0
    assert (tmp_path / "a" / "fig14_esnr.png").stat().st_size > 0
    with pytest.raises(UserError, match="already holds results"):
        script.main([*small, "--out", str(tmp_path / "a")])


def test_script_on_the_dreamer_agent_uses_its_familys_action_repeat_and_planner_options(tmp_path):
    script = load_script()
    small = ["--horizons", "1", "4", "--seeds", "1", "--states", "2", "--draws", "3"]
    script.main(["--checkpoint", "agents/analysis/gym-pendulum-dreamer.pt", *small, "--out", str(tmp_path / "d")])
    out = json.loads((tmp_path / "d" / "summary.json").read_text())
    setup, summary = out["setup"], out["summary"]
    assert setup["agent"] == "dreamer" and setup["action_repeat"] == 2 and setup["discount"] == pytest.approx(0.99)
    # appendix D's Dream-MPC: a shared proposal with action noise 0.2, independent imagination noise per candidate
    dream = setup["planners"]["dream"]
    assert (dream["proposal"], dream["action_noise"], dream["imagination"]) == ("shared", 0.2, "independent")
    assert len(summary) == 2 * 2 * 2 and all(math.isfinite(r["esnr_mean"]) for r in summary)
    learned = [r for r in summary if r["model"] == "learned"]
    assert all(r["var_within_mean"] > 0 for r in learned)  # the RSSM's sampling noise is part of a draw
