"""The gym-pendulum suite against gymnasium's Pendulum-v1, and the torch ground-truth model against both."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from dream_mpc import config
from dream_mpc.envs import make_env, suite_of
from dream_mpc.envs.pendulum import RETURN_RANDOM, RETURN_TARGET, Pendulum
from dream_mpc.errors import UserError
from dream_mpc.models.pendulum import PendulumModel, angle_normalize
from dream_mpc.planner import make_planner
from dream_mpc.registry import planners

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------- the suite
def test_make_env_fills_dims_and_steps_200_times():
    cfg = config.load(["task=gym-pendulum"])
    env = make_env(cfg)
    obs = env.reset()
    assert obs.shape == (3,) and obs.dtype == torch.float32
    assert cfg.obs_shape == {"state": (3,)} and cfg.action_dim == 1 and cfg.episode_length == 200
    assert suite_of("gym-pendulum").dims("gym-pendulum") == ((3,), 1, 200)
    steps = [env.step(env.rand_act()) for _ in range(200)]
    assert [s[2] for s in steps] == [False] * 199 + [True]
    obs, reward, _, info = steps[0]
    assert obs.shape == (3,) and reward.shape == () and info["success"] == 0.0 and info["terminated"].item() == 0.0


def test_initial_states_are_gymnasiums_reset_distribution_and_seeded():
    a, b, c = Pendulum(seed=5), Pendulum(seed=5), Pendulum(seed=6)
    first = [a.reset() for _ in range(3)]
    assert all(torch.equal(x, b.reset()) for x in first)
    assert not torch.equal(first[0], c.reset())
    states = []
    for _ in range(300):
        a.reset()
        states.append(a.state)
    states = np.array(states)
    assert np.abs(states[:, 0]).max() <= math.pi and np.abs(states[:, 1]).max() <= 1.0
    assert states[:, 0].std() > 1.5 and states[:, 1].std() > 0.5  # U[-pi, pi]: std 1.81; U[-1, 1]: std 0.58


def test_rng_state_round_trip_and_legacy_seed_states():
    env = Pendulum(seed=1)
    state = env.get_rng_state()
    first = env.reset()
    env.set_rng_state(state)
    assert torch.equal(env.reset(), first)
    env.set_rng_state(np.random.RandomState(3).get_state())  # one seed for every env alike
    again = env.reset()
    env.set_rng_state(np.random.RandomState(3).get_state())
    assert torch.equal(env.reset(), again)


def test_actions_are_scaled_to_gymnasiums_torque_range():
    env, raw = Pendulum(seed=2), PendulumEnv()
    env.reset()
    rng = np.random.default_rng(0)
    for action in [1.0, -1.0, 0.3, 1.7, -4.0, *rng.uniform(-1, 1, 20)]:
        raw.state = env.state.copy()
        expected_obs, expected_reward, *_ = raw.step(np.array([2.0 * np.clip(action, -1, 1)], dtype=np.float32))
        obs, reward, _, _ = env.step(torch.tensor([action], dtype=torch.float32))
        np.testing.assert_array_equal(obs.numpy(), expected_obs.astype(np.float32))
        assert reward.item() == pytest.approx(expected_reward, rel=1e-6)
    # a full-torque step from rest at the bottom: reward -(pi^2 + 0.001 * 2^2), speed 3 * 2 * 0.05 = 0.3
    env._env.state = np.array([math.pi, 0.0])
    obs, reward, _, _ = env.step(torch.tensor([1.0]))
    assert reward.item() == pytest.approx(-(math.pi**2 + 0.004), rel=1e-6)
    assert obs[2].item() == pytest.approx(0.3, rel=1e-6)


def test_action_repeat_two_is_two_gymnasium_steps_with_summed_rewards_and_half_the_agent_steps():
    env, raw = Pendulum(seed=4, action_repeat=2), PendulumEnv()
    assert env.max_episode_steps == 100
    env.reset()
    rng = np.random.default_rng(1)
    for t, action in enumerate(rng.uniform(-1, 1, 100)):
        raw.state = env.state.copy()
        torque = np.array([2.0 * action], dtype=np.float32)
        _, r1, *_ = raw.step(torque)
        expected_obs, r2, *_ = raw.step(torque)
        obs, reward, done, _ = env.step(torch.tensor([action], dtype=torch.float32))
        np.testing.assert_array_equal(obs.numpy(), expected_obs.astype(np.float32))
        assert reward.item() == pytest.approx(r1 + r2, rel=1e-6)
        assert done == (t == 99)
    with pytest.raises(UserError, match="must divide"):
        Pendulum(action_repeat=3)


def test_the_suite_gives_dreamer_tables_16_action_repeat_and_the_others_none():
    cfg = config.load(["task=gym-pendulum"])
    env = make_env(cfg)
    assert env.action_repeat == 1 and env.max_episode_steps == 200 and cfg.episode_length == 200
    cfg = config.load(["task=gym-pendulum", "agent=dreamer"])
    env = make_env(cfg)
    assert env.action_repeat == 2 and env.max_episode_steps == 100 and cfg.episode_length == 100


def test_pixels_and_bad_actions_are_one_line_errors():
    cfg = config.load(["task=gym-pendulum", "obs=rgb"])
    with pytest.raises(UserError, match="state observations only") as err:
        make_env(cfg)
    assert "\n" not in str(err.value)
    env = Pendulum()
    env.reset()
    with pytest.raises(ValueError, match="non-finite"):
        env.step(torch.tensor([float("nan")]))


def test_normalized_score_maps_random_to_0_and_target_to_1():
    suite = suite_of("gym-pendulum")
    assert suite.normalized_score("gym-pendulum", RETURN_RANDOM, 0.0) == 0.0
    assert suite.normalized_score("gym-pendulum", RETURN_TARGET, 0.0) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------------- the model
def random_states_and_actions(n, seed=0):
    rng = np.random.default_rng(seed)
    th = rng.uniform(-3 * math.pi, 3 * math.pi, n)  # beyond one turn: angle_normalize matters
    thdot = rng.uniform(-9, 9, n)  # beyond the speed limit: the clip matters
    a = rng.uniform(-1.3, 1.3, n)  # beyond [-1, 1]: the torque clip matters
    return th, thdot, a


def gymnasium_step(th, thdot, a):
    env = PendulumEnv()
    obs, rewards = [], []
    for i in range(len(th)):
        env.state = np.array([th[i], thdot[i]])
        o, r, *_ = env.step(np.array([2.0 * a[i]], dtype=np.float32))
        obs.append(o)
        rewards.append(r)
    return np.array(obs), np.array(rewards)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 2e-5), (torch.float64, 1e-6)])
def test_model_equals_gymnasium_step_on_1000_random_states(dtype, tol):
    th, thdot, a = random_states_and_actions(1000)
    expected_obs, expected_reward = gymnasium_step(th, thdot, a)
    model = PendulumModel(dtype=dtype)
    z = torch.tensor(np.stack([th, thdot], -1), dtype=dtype)
    act = torch.tensor(a, dtype=dtype).unsqueeze(-1)
    next_obs = model.observe(model.step(z, act))
    np.testing.assert_allclose(next_obs.numpy(), expected_obs, rtol=tol, atol=tol)
    np.testing.assert_allclose(model.reward(z, act).squeeze(-1).numpy(), expected_reward, rtol=tol, atol=tol)
    assert (expected_obs[:, 2] == 8.0).any() and (np.abs(a) > 1).any()  # both clips were exercised
    # the state is recovered from an observation up to 2 pi, which changes neither the step nor the reward
    z_back = model.encode(model.observe(z))
    torch.testing.assert_close(model.reward(z_back, act), model.reward(z, act), rtol=tol, atol=tol)
    torch.testing.assert_close(model.observe(model.step(z_back, act)), next_obs, rtol=tol, atol=tol)


def test_model_with_action_repeat_equals_two_gymnasium_steps():
    th, thdot, a = random_states_and_actions(200, seed=1)
    obs1, r1 = gymnasium_step(th, thdot, a)
    th1, thdot1 = np.arctan2(obs1[:, 1], obs1[:, 0]), obs1[:, 2]
    obs2, r2 = gymnasium_step(th1, thdot1, a)
    model = PendulumModel(dtype=torch.float64, action_repeat=2)
    z = torch.tensor(np.stack([th, thdot], -1), dtype=torch.float64)
    act = torch.tensor(a, dtype=torch.float64).unsqueeze(-1)
    np.testing.assert_allclose(model.observe(model.step(z, act)).numpy(), obs2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.reward(z, act).squeeze(-1).numpy(), r1 + r2, rtol=1e-5, atol=1e-5)


def test_clip_gradients_zero_or_straight_through():
    z = torch.tensor([[0.0, 7.99]])  # the speed clip is active after a positive torque
    a = torch.tensor([[1.0]], requires_grad=True)
    for mode, expected in [("zero", 0.0), ("straight_through", 3 * 2 * 0.05)]:
        model = PendulumModel(clip_grad=mode)
        (grad,) = torch.autograd.grad(model.step(z, a)[0, 1], a)
        assert grad.item() == pytest.approx(expected)
    # without any clip active both modes give the exact derivative: d(reward)/da = -0.001 * 2 * (2a)^2' = -0.008 a
    z = torch.tensor([[0.5, 0.0]])
    a = torch.tensor([[0.5]], requires_grad=True)
    (grad,) = torch.autograd.grad(PendulumModel().reward(z, a).sum(), a)
    assert grad.item() == pytest.approx(-0.008 * 0.5)


def test_bad_model_option_is_a_one_line_error():
    with pytest.raises(UserError, match=r"pendulum.clip_grad='sometimes' is not allowed"):
        PendulumModel(clip_grad="sometimes")


def test_values_policy_shapes():
    model = PendulumModel(prior_mean=0.2, prior_std=0.0)
    z = torch.zeros(4, 2)
    assert torch.equal(model.values(z), torch.zeros(1, 4, 1))
    action, mean, std = model.policy(z)
    assert action.shape == (4, 1) and torch.allclose(action, torch.full((4, 1), 0.2))


def planner_cfg(**overrides):
    cfg = config.load(["task=gym-pendulum", "threads=1", *[f"{k}={v}" for k, v in overrides.items()]])
    cfg.obs_shape, cfg.action_dim, cfg.episode_length = {"state": (3,)}, 1, 200
    return cfg


@pytest.mark.parametrize("name", planners.names())
def test_every_planner_plans_through_the_true_model(name):
    torch.manual_seed(0)
    model = PendulumModel()
    planner = make_planner(name, model, planner_cfg(), 0.99)
    z = torch.tensor([[math.pi, 0.0], [0.1, -1.0], [2.0, 5.0]])
    for t0 in (True, False):
        action, info = planner.plan(z, t0=t0, eval_mode=True)
        assert action.shape == (3, 1) and torch.isfinite(action).all() and action.abs().max() <= 1
        assert info["mean"].shape == (3, 1)


def closed_loop(planner, steps, state=(math.pi, 0.0)):
    """(return, final angle) of `steps` steps of gymnasium's Pendulum-v1 from `state`, acting with the planner on
    the true state."""
    env = PendulumEnv()
    env.state = np.array(state)
    total = 0.0
    for t in range(steps):
        action, _ = planner.plan(torch.tensor(env.state, dtype=torch.float32).unsqueeze(0), t0=t == 0, eval_mode=True)
        _, reward, *_ = env.step(2.0 * action[0].numpy())
        total += reward
    return total, float(angle_normalize(torch.tensor(env.state[0])))


@pytest.mark.slow
def test_dream_mpc_through_the_true_model_swings_up_where_the_prior_hangs():
    torch.manual_seed(0)
    steps = 100
    model = PendulumModel()
    prior, angle = closed_loop(make_planner("policy", model, planner_cfg(), 0.99), steps)
    assert prior == pytest.approx(-steps * math.pi**2, rel=1e-9) and abs(angle) == pytest.approx(math.pi)
    # the prior's mean (0) leaves it hanging; gradient steps through the true dynamics swing it up and hold it
    cfg = planner_cfg(**{"dream.horizon": 10, "dream.iterations": 5, "dream.lr": 0.5, "dream.num_candidates": 16})
    dream, angle = closed_loop(make_planner("dream", model, cfg, 0.99), steps)
    assert dream > 0.6 * prior and abs(angle) < 0.3


def test_the_bundled_agent_loads_with_the_suites_episode_length_and_discount():
    from dream_mpc.checkpoint import load_agent

    agent = load_agent(ROOT / "agents" / "analysis" / "gym-pendulum-tdmpc2.pt", device="cpu")
    # 200-step episodes: TD-MPC2's heuristic discount (200 / 5 - 1) / (200 / 5) = 0.975 (not 0.99, a DMC task's)
    assert agent.cfg.episode_length == 200 and agent.discount == pytest.approx(0.975)
    action = agent.act(torch.tensor([1.0, 0.0, 0.0]), t0=True, eval_mode=True)
    assert action.shape == (1,) and action.abs().max() <= 1
