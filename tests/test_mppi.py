"""MPPI: finite, in-bound actions, and the optimum of an analytic problem."""
import torch

from tdmpc2 import config
from tdmpc2.mppi import MPPIPlanner
from tests.toy_models import LinearQuadraticModel


def make_planner(model, **overrides):
    cfg = config.load(["task=cartpole-swingup", "threads=1"] + [f"{k}={v}" for k, v in overrides.items()])
    cfg.action_dim = model.cfg.action_dim
    return MPPIPlanner(model, cfg, 0.9)


def test_mppi_finds_the_optimum_of_a_quadratic_reward():
    torch.manual_seed(0)
    model = LinearQuadraticModel(scales=(0.0, 0.0, 0.0), k=5.0, target=0.3, policy_std=0.5)
    planner = make_planner(model, horizon=1, iterations=8)
    z = torch.zeros(4, 3)
    action, info = planner.plan(z, t0=True, eval_mode=True)
    assert action.shape == (4, 2) and torch.isfinite(action).all() and action.abs().max() <= 1
    torch.testing.assert_close(info["mppi_mean"], torch.full((4, 2), 0.3), atol=0.05, rtol=0)
    torch.testing.assert_close(action, torch.full((4, 2), 0.3), atol=0.1, rtol=0)


def test_mppi_warm_starts_from_the_shifted_mean_and_adds_noise_only_outside_eval():
    torch.manual_seed(0)
    model = LinearQuadraticModel(policy_std=0.5)
    planner = make_planner(model, horizon=3, iterations=2)
    z = torch.zeros(1, 3)
    planner.plan(z, t0=True, eval_mode=True)
    prev = planner._prev_mean.clone()
    assert prev.shape == (3, 1, 2)
    torch.manual_seed(1)
    a_eval, info = planner.plan(z, t0=False, eval_mode=True)
    torch.testing.assert_close(a_eval, info["mean"].clamp(-1, 1))
    a_train, info = planner.plan(z, t0=False, eval_mode=False)
    assert not torch.allclose(a_train, info["mean"])
    assert a_train.abs().max() <= 1


def test_mppi_with_nan_values_never_returns_nan():
    model = LinearQuadraticModel(nan_reward=True, policy_std=0.3)
    planner = make_planner(model, horizon=2, iterations=2)
    action, _ = planner.plan(torch.randn(2, 3), t0=True, eval_mode=False)
    assert torch.isfinite(action).all()
