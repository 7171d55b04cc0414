"""The HumanoidBench suite: names, dims, no action repeat (against the raw env), falls, success bar, normalized
score, seeding (reach's goal), pixels from the task camera, a missing package."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import importlib.util
import sys

import numpy as np
import pytest
import torch

from dream_mpc.envs import humanoid_bench as hb
from dream_mpc.envs import suite_of
from dream_mpc.errors import UserError

HAVE_HB = importlib.util.find_spec("humanoid_bench") is not None
needs_hb = pytest.mark.skipif(
    not HAVE_HB,
    reason="HumanoidBench is not installed: `make install` puts "
    "../shared/vendor/humanoid-bench on sys.path, or " + hb.INSTALL,
)


def test_names_with_and_without_version():
    assert hb.parse("humanoid_h1hand-run-v0") == ("h1hand", "run") == hb.parse("humanoid_h1hand-run")
    assert hb.parse("humanoid_h1-balance_simple-v0") == ("h1", "balance_simple")
    assert hb.gym_id("humanoid_h1-balance_hard") == "h1-balance_hard-v0"
    assert len(hb.task_names()) == 2 * 10 * 2
    assert suite_of("humanoid_h1hand-stair-v0").name == "humanoid_bench"
    with pytest.raises(UserError, match="humanoid_h1hand-run"):
        hb.parse("humanoid_h1hand-runn-v0")


def test_normalized_score_uses_the_published_constants():
    suite = suite_of("humanoid_h1hand-run-v0")
    assert suite.normalized_score("humanoid_h1hand-run-v0", 700.0, 1.0) == pytest.approx(1.0)
    assert suite.normalized_score("humanoid_h1hand-run-v0", 1.927, 0.0) == pytest.approx(0.0)
    # reach: (6000 - (-50.024)) / (12000 + 50.024); h1 has its own random score
    assert suite.normalized_score("humanoid_h1hand-reach", 6000.0, 0) == pytest.approx(6050.024 / 12050.024)
    assert suite.normalized_score("humanoid_h1-reach-v0", 260.302, 0) == pytest.approx(0.0)
    assert suite.dims("humanoid_h1hand-run-v0") == ((151,), 61, 1000)


def test_missing_package_is_a_one_line_user_error(monkeypatch):
    monkeypatch.delitem(sys.modules, "humanoid_bench.env", raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        hb.importlib.util, "find_spec", lambda name, *a: None if name == "humanoid_bench" else real(name, *a)
    )
    with pytest.raises(UserError) as err:
        hb.HumanoidBench("humanoid_h1-run-v0")
    assert str(err.value).count("\n") == 0 and hb.INSTALL in str(err.value)


@needs_hb
def test_no_action_repeat_matches_the_raw_env_and_falls_terminate():
    import gymnasium as gym

    env = hb.HumanoidBench("humanoid_h1-run-v0", seed=0)
    obs = env.reset()
    assert obs.shape == (51,) and env.action_space.shape == (19,) and env.max_episode_steps == 1000
    raw = gym.make("h1-run-v0", render_mode=None, disable_env_checker=True).unwrapped
    raw.reset(seed=0)
    raw.set_state(env._env.data.qpos.copy(), env._env.data.qvel.copy())
    rng = np.random.default_rng(0)
    for _ in range(3):
        action = rng.uniform(-1, 1, 19).astype(np.float32)
        obs, reward, done, info = env.step(torch.from_numpy(action))
        raw_obs, raw_reward, *_ = raw.step(action)
        np.testing.assert_allclose(obs.numpy(), raw_obs.astype(np.float32), rtol=1e-5, atol=1e-6)
        assert reward.item() == pytest.approx(raw_reward, rel=1e-5)
    # random actions make H1 fall within a few hundred steps: the episode ends, flagged as a termination
    for t in range(1000):
        obs, reward, done, info = env.step(env.rand_act())
        if done:
            break
    assert done and info["terminated"].item() == 1.0 and env._env.data.qpos[2] < 0.2 and t < 997
    assert env.step(env.rand_act())[3]["past_limit"] == 1.0
    env.close()


@needs_hb
def test_success_once_the_return_reaches_the_bar():
    env = hb.HumanoidBench("humanoid_h1-stand", seed=1)
    assert env.success_bar == 800.0
    env.success_bar = 2.0  # each standing step earns about 0.8
    env.reset()
    infos = [env.step(torch.zeros(19))[3] for _ in range(4)]
    assert [i["success"] for i in infos] == [0.0, 0.0, 1.0, 1.0]


@needs_hb
def test_reach_goal_is_seeded_privately_and_resumable():
    first = hb.HumanoidBench("humanoid_h1-reach-v0", seed=3)
    global_before = np.random.get_state()[1].copy()
    first.reset()
    goal = first._env.task.goal.copy()
    np.testing.assert_array_equal(np.random.get_state()[1], global_before)  # NumPy's global generator untouched
    second = hb.HumanoidBench("humanoid_h1-reach", seed=3)
    second.reset()
    np.testing.assert_array_equal(second._env.task.goal, goal)
    state = first.get_rng_state()
    obs = first.reset()
    goal2 = first._env.task.goal.copy()
    assert not np.allclose(goal, goal2)
    first.set_rng_state(state)
    assert torch.equal(first.reset(), obs) and np.array_equal(first._env.task.goal, goal2)


@needs_hb
def test_rgb_from_the_task_camera():
    env = hb.HumanoidBench("humanoid_h1-walk-v0", seed=1, obs="rgb")
    obs = env.reset()
    assert obs.shape == (9, 64, 64) and obs.dtype == torch.uint8 and torch.equal(obs[:3], obs[6:])
    assert obs.float().std() > 5  # the robot and the floor, not a blank frame
    assert env.render().shape == (384, 384, 3)
    nxt = env.step(env.rand_act())[0]
    assert torch.equal(nxt[:6], obs[3:])
    env.close()
