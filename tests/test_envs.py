"""The DMControl wrapper against the raw suite: task names, obs layout, action repeat, time limit, pixels, errors."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before dm_control is imported: headless rendering

import numpy as np
import pytest
import torch
from dm_control import suite

from dream_mpc import config
from dream_mpc.envs import dmcontrol, make_env
from dream_mpc.envs.dmcontrol import DMControl, suite_names
from dream_mpc.errors import UserError


def test_every_task_name_maps_to_a_suite_task():
    assert suite_names("cup-catch") == ("ball_in_cup", "catch")
    assert suite_names("pointmass-easy") == ("point_mass", "easy")
    assert suite_names("cartpole-swingup-sparse") == ("cartpole", "swingup_sparse")
    assert suite_names("finger-turn-hard") == ("finger", "turn_hard")
    assert len(dmcontrol.TASKS) == 28
    for task in dmcontrol.TASKS:
        assert suite_names(task) in suite.ALL_TASKS, task


@pytest.mark.parametrize("task, obs_dim, action_dim", [("cartpole-swingup", 5, 1), ("walker-walk", 24, 6)])
def test_make_env_fills_dims(task, obs_dim, action_dim):
    cfg = config.load([f"task={task}"])
    env = make_env(cfg)
    obs = env.reset()
    assert obs.shape == (obs_dim,) and obs.dtype == torch.float32
    assert cfg.obs_shape == {"state": (obs_dim,)} and cfg.action_dim == action_dim
    assert cfg.episode_length == 500 and cfg.seed_steps == 2500
    assert env.rand_act().shape == (action_dim,)


def test_action_repeat_sums_rewards_and_obs_follow_the_spec_order():
    env = DMControl("walker-walk", seed=3)
    raw = suite.load("walker", "walk", task_kwargs={"random": 3})
    obs, time_step = env.reset(), raw.reset()
    expected = np.concatenate([np.asarray(v).reshape(-1) for v in time_step.observation.values()])
    np.testing.assert_allclose(obs.numpy(), expected, rtol=1e-6)
    rng = np.random.default_rng(0)
    for _ in range(20):
        action = rng.uniform(-1, 1, 6).astype(np.float32)
        obs, reward, done, info = env.step(torch.from_numpy(action))
        time_steps = [raw.step(action) for _ in range(2)]
        assert reward.item() == pytest.approx(sum(ts.reward for ts in time_steps), rel=1e-5)
        assert not done and info["success"] == 0.0 and info["terminated"].item() == 0.0
    expected = np.concatenate([np.asarray(v).reshape(-1) for v in time_steps[-1].observation.values()])
    np.testing.assert_allclose(obs.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_episode_is_500_steps_then_done():
    env = DMControl("cartpole-swingup", seed=1)
    env.reset()
    dones = [env.step(env.rand_act())[2] for _ in range(500)]
    assert dones == [False] * 499 + [True]
    env.reset()
    assert env.step(env.rand_act())[2] is False


def test_nan_action_is_rejected():
    env = DMControl("cartpole-swingup")
    env.reset()
    with pytest.raises(ValueError, match="non-finite action"):
        env.step(torch.tensor([float("nan")]))


def test_rgb_observation_stacks_three_frames():
    cfg = config.load(["task=cartpole-swingup", "obs=rgb"])
    env = make_env(cfg)
    obs = env.reset()
    assert obs.shape == (9, 64, 64) and obs.dtype == torch.uint8 and cfg.obs_shape == {"rgb": (9, 64, 64)}
    assert torch.equal(obs[:3], obs[3:6]) and torch.equal(obs[3:6], obs[6:])
    frames = [env.step(torch.ones(1))[0] for _ in range(5)]
    assert torch.equal(frames[-1][:6], frames[-2][3:])  # oldest first: each step drops the first frame
    assert not torch.equal(frames[-1][6:], obs[6:])  # the cart has moved
    assert env.render().shape == (384, 384, 3)


def test_unknown_task_lists_the_closest_names():
    with pytest.raises(UserError, match=r"unknown task 'walker-wlk'. Valid tasks, closest first: walker-walk"):
        config.load(["task=walker-wlk"])
    cfg = config.load(["task=walker-walk"])
    cfg.task = "cheetah-runn"  # make_env's own check, for configs built without config.load
    with pytest.raises(UserError, match=r"closest first: cheetah-run,"):
        make_env(cfg)
    cfg = config.load(["task=mt30"])
    env = make_env(cfg)  # a multi-task set: one env over its tasks, the dims from the tables (nothing built yet)
    assert env.tasks[:2] == ["walker-stand", "walker-walk"] and cfg.obs_shape == {"state": (24,)}
    assert cfg.action_dim == 6 and len(cfg.action_dims) == len(cfg.episode_lengths) == 30
