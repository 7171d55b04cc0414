"""DreamMPCPlanner against closed forms on an analytic world model, and its guarantees on a real one."""

import pytest
import torch

from dream_mpc import config
from dream_mpc.objective import Objective
from dream_mpc.planners.dream import DreamMPCPlanner
from dream_mpc.planners.grad import GradMPCPlanner, HybridGradMPCPlanner
from tests.toy_models import LinearQuadraticModel

GAMMA = 0.9


def make_cfg(action_dim=2, **dream):
    cfg = config.load(["task=cartpole-swingup", "threads=1"])
    for k, v in dream.items():
        setattr(cfg.dream, k, v)
    return cfg


def closed_form_gradient(model, z0, a, lam, gamma=GAMMA):
    """dJ/da for horizon 1 with actions (a0, a1), derived by hand for LinearQuadraticModel."""
    s = model.scales.detach()
    s_bar, s_std = s.mean(), s.std()
    a0, a1 = a[:, 0], a[:, 1]
    B1 = model.B.detach().sum(0)  # B^T 1
    x0 = z0.sum(-1, keepdim=True) + a0.sum(-1, keepdim=True)
    x1 = z0.sum(-1, keepdim=True) + a0 @ B1.unsqueeze(-1) + a1.sum(-1, keepdim=True)
    du = 2 * s_bar.abs() * s_std  # d(|mean| std)/dx = 2 |s_bar| s_std x
    g0 = -2 * model.k * (a0 - model.c) + gamma * s_bar * B1 - lam * du * (x0 + x1 * B1)
    g1 = gamma * s_bar * torch.ones_like(a1) - lam * du * x1 * torch.ones_like(a1)
    return torch.stack([g0, g1], 1)


def closed_form_objective(model, z0, a, lam, gamma=GAMMA):
    s = model.scales.detach()
    a0, a1 = a[:, 0], a[:, 1]
    z1 = z0 + a0 @ model.B.detach().T
    r = -model.k * (a0 - model.c).pow(2).sum(-1) - 0.5 * z0.pow(2).sum(-1)
    x0, x1 = z0.sum(-1) + a0.sum(-1), z1.sum(-1) + a1.sum(-1)
    u = s.mean().abs() * s.std() * (x0**2 + x1**2)
    return (r + gamma * s.mean() * x1 - lam * u).unsqueeze(-1)


@pytest.mark.parametrize("lam", [0.0, 0.05])
def test_one_gradient_step_has_the_closed_form(lam):
    model = LinearQuadraticModel()
    planner = DreamMPCPlanner(model, make_cfg(horizon=1, uncertainty_coef=lam, lr=0.05), GAMMA)
    torch.manual_seed(0)
    z0 = 0.3 * torch.randn(4, 3)
    a = 0.5 * torch.rand(4, 2, 2) - 0.25
    J = planner.objective(model, z0, a, None, GAMMA)
    torch.testing.assert_close(J, closed_form_objective(model, z0, a, lam))
    new, J_new = planner.optimise(z0, a, None, GAMMA, B=1)
    expected = a + 0.05 * closed_form_gradient(model, z0, a, lam)
    torch.testing.assert_close(new, expected)
    torch.testing.assert_close(J_new, closed_form_objective(model, z0, expected, lam))  # scored after the step


def test_plan_executes_the_best_optimised_first_action():
    model = LinearQuadraticModel(policy_std=0.3)
    planner = DreamMPCPlanner(model, make_cfg(horizon=1, num_candidates=6, uncertainty_coef=0.0, reuse=0.0), GAMMA)
    z = torch.tensor([[0.2, -0.1, 0.4]])
    torch.manual_seed(1)
    action, info = planner.plan(z, t0=True, eval_mode=True)
    torch.manual_seed(1)
    start = planner.policy_candidates(z, None)
    stepped = (start + planner.lr * closed_form_gradient(model, z.expand(6, 3), start, 0.0)).clamp(-1, 1)
    J = closed_form_objective(model, z.expand(6, 3), stepped, 0.0).squeeze(-1)
    best = J.argmax()
    torch.testing.assert_close(action, stepped[best, 0].unsqueeze(0))
    torch.testing.assert_close(info["value"], J[best].view(1, 1))
    torch.testing.assert_close(info["mean"], stepped[:, 0].mean(0, keepdim=True))
    torch.testing.assert_close(info["std"], stepped[:, 0].std(0, keepdim=True).clamp(0.05, 2))


def test_batched_planner_equals_a_loop_over_candidates():
    model = LinearQuadraticModel()
    cfg = make_cfg(horizon=2, num_candidates=4, iterations=3, lr=0.5)
    cfg.dream.grad_clip_norm = 0.05  # clipping active: per-candidate clipping keeps candidates independent
    planner = DreamMPCPlanner(model, cfg, GAMMA)
    torch.manual_seed(0)
    z = torch.randn(8, 3)
    a = torch.rand(8, 3, 2) * 2 - 1
    batched, J = planner.optimise(z, a, None, GAMMA, B=2)
    for i in range(8):
        single, Ji = planner.optimise(z[i : i + 1], a[i : i + 1], None, GAMMA, B=1)
        torch.testing.assert_close(batched[i : i + 1], single)
        torch.testing.assert_close(J[i : i + 1], Ji)


def test_reuse_mixes_the_shifted_previous_candidates():
    model = LinearQuadraticModel(policy_std=0.0)  # deterministic policy: candidates are known
    planner = DreamMPCPlanner(model, make_cfg(horizon=3, num_candidates=2, reuse=0.25), GAMMA)
    z = torch.tensor([[0.1, 0.2, -0.3]])
    prev = torch.arange(2 * 4 * 2, dtype=torch.float32).view(1, 2, 4, 2) / 20
    planner._prev = prev
    policy = planner.policy_candidates(z, None)
    init = planner.initial_candidates(z, None, t0=False, reanalyze=False)
    shifted = torch.stack([prev[0, :, 1], prev[0, :, 2], prev[0, :, 3], prev[0, :, 3]], 1)  # last one repeated
    torch.testing.assert_close(init, 0.25 * shifted + 0.75 * policy)
    torch.testing.assert_close(planner.initial_candidates(z, None, t0=True, reanalyze=False), policy)
    planner.reset()
    torch.testing.assert_close(planner.initial_candidates(z, None, t0=False, reanalyze=False), policy)


def test_uncertainty_value_sign_and_gradient():
    values = torch.tensor([[-1.0], [-2.0], [-6.0]], requires_grad=True)  # mean -3, unbiased std sqrt(7)
    u_abs = Objective(1, 0.1, "abs").uncertainty(values)
    u_signed = Objective(1, 0.1, "signed").uncertainty(values)
    torch.testing.assert_close(u_abs, torch.tensor([3 * 7**0.5]))
    torch.testing.assert_close(u_signed, torch.tensor([-3 * 7**0.5]))
    (g,) = torch.autograd.grad(u_abs.sum(), values)
    # d(|m| s)/dv_i = sign(m) s / M + |m| (v_i - m) / ((M - 1) s)
    m, s = -3.0, 7**0.5
    expected = torch.tensor([[-s / 3 + abs(m) * (v - m) / (2 * s)] for v in (-1.0, -2.0, -6.0)])
    torch.testing.assert_close(g, expected)
    assert not Objective(1, 0.1, "abs", uncertainty_grad=False).uncertainty(values).requires_grad


def test_penalty_without_gradient_only_changes_the_score():
    model = LinearQuadraticModel()
    z0, a = torch.randn(3, 3), torch.rand(3, 2, 2) - 0.5
    with_grad = DreamMPCPlanner(model, make_cfg(horizon=1, uncertainty_coef=0.05), GAMMA)
    no_grad = DreamMPCPlanner(model, make_cfg(horizon=1, uncertainty_coef=0.05, uncertainty_grad=False), GAMMA)
    plain = DreamMPCPlanner(model, make_cfg(horizon=1, uncertainty_coef=0.0), GAMMA)
    a_ng, J_ng = no_grad.optimise(z0, a, None, GAMMA, B=1)
    a_plain, _ = plain.optimise(z0, a, None, GAMMA, B=1)
    a_g, _ = with_grad.optimise(z0, a, None, GAMMA, B=1)
    torch.testing.assert_close(a_ng, a_plain)
    assert not torch.allclose(a_g, a_plain)
    torch.testing.assert_close(J_ng, closed_form_objective(model, z0, a_ng, 0.05))


def test_official_options_score_before_the_step_and_clip_globally():
    model = LinearQuadraticModel()
    planner = DreamMPCPlanner(
        model,
        make_cfg(
            horizon=1, uncertainty_coef=0.0, score_after_step=False, clip="global", clamp_each_step=False, lr=10.0
        ),
        GAMMA,
    )
    z0, a = torch.randn(3, 3), torch.rand(3, 2, 2) - 0.5
    new, J = planner.optimise(z0, a, None, GAMMA, B=1)
    torch.testing.assert_close(J, closed_form_objective(model, z0, a, 0.0))  # J of the initial candidates
    g = closed_form_gradient(model, z0, a, 0.0)
    g = g * min(1.0, 20 / float(g.norm()))  # one norm over all candidates
    torch.testing.assert_close(new, a + 10.0 * g)
    assert new.abs().max() > 1  # not clamped between steps


def test_nonfinite_plan_falls_back_to_the_policy_mean_and_is_counted():
    model = LinearQuadraticModel(nan_reward=True, policy_std=0.2)
    planner = DreamMPCPlanner(model, make_cfg(horizon=2), GAMMA)
    z = torch.randn(3, 3)
    action, _ = planner.plan(z, t0=True, eval_mode=True)
    torch.testing.assert_close(action, torch.tanh(z @ model.W.detach().T))
    assert planner.nonfinite_count == 3 and torch.isfinite(action).all()


def test_planning_leaves_the_world_model_untouched():
    from tdmpc2.agent import TDMPC2

    cfg = config.load(["task=cartpole-swingup", "model_size=1", "planner=dream", "device=cpu", "threads=1"])
    config.set_env_dims(cfg, (5,), 1, 500)
    agent = TDMPC2(cfg)
    before = {k: v.clone() for k, v in agent.model.state_dict().items()}
    for t in range(3):
        action = agent.act(torch.randn(5), t0=t == 0, eval_mode=False)
        assert action.shape == (1,) and action.abs().max() <= 1
    assert all(p.grad is None for p in agent.model.parameters())
    for k, v in agent.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert agent.planner._prev is not None  # reuse state kept between steps


def test_grad_mpc_finds_the_optimum_of_a_concave_problem():
    model = LinearQuadraticModel(scales=(0.0, 0.0, 0.0), k=1.0, target=0.3)  # no value: J = -|a0 - c|^2 - ...
    cfg = make_cfg()
    cfg.grad.horizon, cfg.grad.iterations, cfg.grad.lr = 1, 60, 0.2
    planner = GradMPCPlanner(model, cfg, GAMMA)
    z = torch.zeros(1, 3)
    action, _ = planner.plan(z, t0=True, eval_mode=True)
    # J = -|a0 - c|^2 - |z0|^2/2 (the next latent only enters through a zero value): optimum a0 = c
    torch.testing.assert_close(action, torch.full((1, 2), 0.3), atol=1e-3, rtol=0)


def test_hybrid_is_one_policy_candidate_with_horizon_one():
    model = LinearQuadraticModel(policy_std=0.0)
    planner = HybridGradMPCPlanner(model, make_cfg(), GAMMA)
    assert planner.num_candidates == 1 and planner.horizon == 1 and planner.reuse == 0
    z = torch.tensor([[0.3, 0.1, 0.0]])
    action, _ = planner.plan(z, t0=True, eval_mode=True)
    start = planner.policy_candidates(z, None)
    expected = (start + 0.1 * closed_form_gradient(model, z, start, 0.0)).clamp(-1, 1)[:, 0]
    torch.testing.assert_close(action, expected)


def pixel_cfg(task, planner):
    """A small pixel agent (8 channels, latent 16 x 8) with a small MPPI."""
    overrides = ["obs=rgb", "num_channels=8", "latent_dim=128", "mlp_dim=64", "num_samples=32", "num_elites=4"]
    return config.load([f"task={task}", *overrides, f"planner={planner}", "device=cpu", "threads=1"])


@pytest.mark.parametrize("planner", ["dream", "mppi"])
def test_pixel_agent_plans_from_stacked_frames(planner):
    from tdmpc2.agent import TDMPC2

    cfg = pixel_cfg("cartpole-swingup", planner)
    config.set_env_dims(cfg, (9, 64, 64), 1, 500)
    agent = TDMPC2(cfg)
    frames = torch.randint(0, 255, (9, 64, 64), dtype=torch.uint8)
    action = agent.act(frames, t0=True, eval_mode=True)
    assert action.shape == (1,) and torch.isfinite(action).all()
    assert agent.nonfinite_actions == 0 and agent.planner.nonfinite_count == 0  # act() hides NaNs: check none came


def test_pixel_config_with_mismatched_latent_is_a_clear_error():
    from dream_mpc.errors import UserError
    from tdmpc2.world_model import WorldModel

    cfg = config.load(["task=cartpole-swingup", "obs=rgb", "model_size=1"])
    config.set_env_dims(cfg, (9, 64, 64), 1, 500)
    with pytest.raises(UserError, match="latent_dim = 16 \\* num_channels"):
        WorldModel(cfg)


def test_each_nan_guard_holds_on_its_own():
    """Two separate guards, each tested alone: the planner falls back to the policy mean (above), and the agent
    replaces a non-finite action that a planner lets through by the policy mean, counting it."""
    from tdmpc2.agent import TDMPC2

    cfg = config.load(["task=cartpole-swingup", "model_size=1", "planner=dream", "device=cpu", "threads=1"])
    config.set_env_dims(cfg, (5,), 1, 500)
    agent = TDMPC2(cfg)
    obs = torch.randn(5)

    def leaky_plan(z, **kwargs):  # a planner without a fallback of its own
        return torch.full((z.shape[0], 1), float("nan")), {"value": torch.zeros(z.shape[0], 1)}

    agent.planner.plan = leaky_plan
    action = agent.act(obs, t0=True, eval_mode=True)
    with torch.no_grad():
        mean = agent.model.pi(agent.model.encode(obs.unsqueeze(0)))[1]["mean"][0]
    torch.testing.assert_close(action, mean)
    assert agent.nonfinite_actions == 1


@pytest.mark.parametrize("planner", ["dream", "mppi"])
def test_planners_act_from_meta_world_pixels(planner):
    """The paper's pixel protocol extends to Meta-World: a pixel agent plans on the corner2 camera's stacked frames."""
    from dream_mpc.envs import make_env
    from tdmpc2.agent import TDMPC2

    cfg = pixel_cfg("mw-button-press", planner)
    env = make_env(cfg)
    agent = TDMPC2(cfg)
    obs = env.reset()
    assert obs.shape == (9, 64, 64) and obs.dtype == torch.uint8
    for t in range(2):
        action = agent.act(obs, t0=t == 0, eval_mode=True)
        obs, reward, done, info = env.step(action)
    assert action.shape == (4,) and agent.nonfinite_actions == 0 and agent.planner.nonfinite_count == 0
