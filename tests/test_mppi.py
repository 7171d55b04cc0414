"""MPPI: finite, in-bound actions, and the optimum of an analytic problem."""

import torch

from dream_mpc import config
from dream_mpc.planners.mppi import MPPIPlanner
from tests.toy_models import LinearQuadraticModel


def make_planner(model, **overrides):
    cfg = config.load(["task=cartpole-swingup", "threads=1"] + [f"{k}={v}" for k, v in overrides.items()])
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
    """With a vanishing sampling std and no policy sequences, every sample is the initial mean, so the plan's mean is
    exactly where MPPI started: the previous mean shifted one step (t0=False), or zero at an episode's start."""
    torch.manual_seed(0)
    model = LinearQuadraticModel(policy_std=0.5)
    planner = make_planner(model, horizon=3, iterations=2, num_pi_trajs=0, min_std=0, max_std=1e-6)
    z = torch.zeros(1, 3)
    planner.plan(z, t0=True, eval_mode=True)
    assert planner._prev_mean.shape == (3, 1, 2)
    prev = torch.tensor([[[0.1, -0.2]], [[0.3, 0.4]], [[-0.5, 0.6]]])
    planner._prev_mean = prev.clone()
    a_eval, info = planner.plan(z, t0=False, eval_mode=True)
    torch.testing.assert_close(info["mppi_mean"], prev[1], atol=1e-5, rtol=0)  # the shifted first step
    torch.testing.assert_close(planner._prev_mean[:2], prev[1:], atol=1e-5, rtol=0)
    torch.testing.assert_close(planner._prev_mean[2], torch.zeros(1, 2), atol=1e-5, rtol=0)  # new last step
    torch.testing.assert_close(a_eval, info["mean"].clamp(-1, 1))
    planner._prev_mean = prev.clone()
    _, info = planner.plan(z, t0=True, eval_mode=True)  # an episode's start ignores it
    torch.testing.assert_close(info["mppi_mean"], torch.zeros(1, 2), atol=1e-5, rtol=0)
    planner = make_planner(model, horizon=3, iterations=2)
    a_train, info = planner.plan(z, t0=False, eval_mode=False)
    assert not torch.allclose(a_train, info["mean"])
    assert a_train.abs().max() <= 1


def test_mppi_with_nan_values_never_returns_nan():
    """NaN predicted returns rank as 0 (as TD-MPC2's nan_to_num), so the plan stays finite without a fallback."""
    model = LinearQuadraticModel(nan_reward=True, policy_std=0.3)
    planner = make_planner(model, horizon=2, iterations=2)
    action, info = planner.plan(torch.randn(2, 3), t0=True, eval_mode=False)
    assert torch.isfinite(action).all() and action.abs().max() <= 1 and torch.isfinite(info["mppi_mean"]).all()
    assert planner.nonfinite_count == 0


def test_shared_first_step_equals_the_repeated_latent():
    """MPPI's first step computes the first-layer products on z once per latent: the same numbers as repeating it,
    for a single-task and a multi-task model (whose task embedding joins z)."""
    from tdmpc2.planning import TDMPC2Planning
    from tdmpc2.world_model import WorldModel

    for overrides in (["task=walker-walk"], ["task=mt30", "model_size=19"]):
        cfg = config.load([*overrides, "threads=1", "mlp_dim=32", "latent_dim=16", "enc_dim=16", "task_dim=8"])
        n_tasks = len(cfg.tasks) if cfg.multitask else 1
        config.set_env_dims(cfg, (24,), 6, 500, *(([6] * n_tasks, [500] * n_tasks) if cfg.multitask else ()))
        model = TDMPC2Planning(WorldModel(cfg).eval())
        torch.manual_seed(0)
        z, a = torch.randn(3, cfg.latent_dim), torch.rand(3, 7, cfg.action_dim) * 2 - 1
        task = torch.tensor([0, 1, 2]) if cfg.multitask else None
        rows = None if task is None else task.repeat_interleave(7)
        with torch.no_grad():
            nxt, rew = model.step_and_reward_shared(z, a, task)
            zr, ar = z.repeat_interleave(7, 0), a.reshape(21, -1)
            torch.testing.assert_close(nxt, model.step(zr, ar, rows), rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(rew, model.reward(zr, ar, rows), rtol=1e-5, atol=1e-6)
