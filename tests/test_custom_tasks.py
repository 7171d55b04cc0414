"""TD-MPC2's 11 custom DMControl tasks: dims, model changes, and every reward against a value computed by hand from
a physics state set through qpos/qvel (dm_control's tolerance: linear 1 - (1 - v) d / m, gaussian v ** ((d / m) ** 2)
with v = 0.1, where d is the distance to the bounds and m the margin)."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest
import torch

from dream_mpc import config
from dream_mpc.envs import make_env, suite_of
from dream_mpc.envs.dmcontrol import DMControl
from dream_mpc.envs.dmcontrol_custom import TASKS


def _env(task):
    env = DMControl(task, seed=1)
    env.reset()
    return env._env.physics, env._env.task


def _set(physics, qpos=None, qvel=None):
    with physics.reset_context():
        physics.data.qpos[:] = 0 if qpos is None else qpos
        physics.data.qvel[:] = 0 if qvel is None else qvel


def _gauss(d, m):
    return 0.1 ** ((d / m) ** 2)


EXPECTED_DIMS = {
    "walker-walk-backwards": (24, 6),
    "walker-run-backwards": (24, 6),
    "cheetah-run-backwards": (17, 6),
    "cheetah-run-front": (17, 6),
    "cheetah-run-back": (17, 6),
    "cheetah-jump": (17, 6),
    "hopper-hop-backwards": (15, 4),
    "reacher-three-easy": (8, 3),
    "reacher-three-hard": (8, 3),
    "cup-spin": (8, 2),
    "pendulum-spin": (3, 1),
}


@pytest.mark.parametrize("task", TASKS)
def test_dims_and_episode(task):
    obs_dim, action_dim = EXPECTED_DIMS[task]
    cfg = config.load([f"task={task}"])
    env = make_env(cfg)
    obs, reward, done, info = env.step(torch.zeros(action_dim)) if env.reset() is not None else None
    assert obs.shape == (obs_dim,) and cfg.action_dim == action_dim and cfg.episode_length == 500
    assert suite_of(task).dims(task) == ((obs_dim,), action_dim, 500)
    assert env._env._step_limit == 1000 and torch.isfinite(reward)


def test_model_changes():
    physics, _ = _env("walker-walk-backwards")
    assert physics.named.model.geom_size["floor", 0] == 500
    physics, _ = _env("cheetah-run-back")
    assert physics.named.model.geom_size["ground", 0] == 200
    physics, _ = _env("reacher-three-easy")
    assert physics.model.nu == 3 and physics.model.njnt == 3
    np.testing.assert_allclose(np.rad2deg(physics.named.model.jnt_range[["shoulder1", "wrist"]]), [[-80, 80]] * 2)
    assert not physics.named.model.jnt_limited["shoulder0"]
    _set(physics)
    np.testing.assert_allclose(physics.named.data.geom_xpos["finger", :2], [0.27, 0.0], atol=1e-9)  # 3 x 0.09


def test_pendulum_spin():
    physics, task = _env("pendulum-spin")
    for omega, expected in [(9.0, 1.0), (-12.0, 1.0), (-4.5, 0.5), (6.75, 0.75), (0.0, 0.0)]:
        _set(physics, qvel=[omega])
        assert task.get_reward(physics) == pytest.approx(expected)


def test_cheetah_run_backwards():
    physics, task = _env("cheetah-run-backwards")
    for vx, expected in [(-4.0, 0.5), (-8.0, 1.0), (-10.0, 1.0), (2.0, 0.0), (-2.0, 0.25)]:
        _set(physics, qvel=[vx] + [0] * 8)
        assert physics.speed() == pytest.approx(vx)
        assert task.get_reward(physics) == pytest.approx(expected)


def test_cheetah_run_front_back_and_jump():
    # rootz 0.6 lifts the whole cheetah: torso 0.7 + 0.6, bfoot 0.7 - 0.25 - 0.14 + 0.6, ffoot 0.7 - 0.24 - 0.18 + 0.6
    torso, bfoot, ffoot = 1.3, 0.91, 0.88
    for goal in ("cheetah-run-front", "cheetah-run-back", "cheetah-jump"):
        physics, task = _env(goal)
        _set(physics, qpos=[0, 0.6] + [0] * 7, qvel=[3.0] + [0] * 8)
        np.testing.assert_allclose(
            physics.named.data.xpos[["torso", "bfoot", "ffoot"], "z"], [torso, bfoot, ffoot], atol=1e-9
        )
        lifted = bfoot if goal == "cheetah-run-front" else ffoot
        if goal != "cheetah-jump":
            up = (3 * _gauss(1.2 - lifted, 0.6) + 2 * 1.0) / 5
            run = 1 - 3.0 / 6.0  # speed 3 of 6, linear to 0 at 0
            assert task.get_reward(physics) == pytest.approx(up * (5 * run + 1) / 6)
        else:
            _set(physics, qpos=[0, 0.6] + [0] * 7, qvel=[0.75] + [0] * 8)
            still = 1 - 0.25 / 0.5  # 0.25 beyond the bound 0.5, margin 0.5, linear to 0
            stands = [(5 * _gauss(1.2 - (torso + foot) / 2, 0.6) + still) / 6 for foot in (bfoot, ffoot)]
            assert task.get_reward(physics) == pytest.approx(sum(stands) / 2)


def test_walker_backwards():
    for task_name, vx, expected_move in [
        ("walker-walk-backwards", -0.5, 0.5),
        ("walker-walk-backwards", -1.5, 1.0),
        ("walker-walk-backwards", 0.5, 0.0),
        ("walker-run-backwards", -4.0, 0.5),
        ("walker-run-backwards", -6.0, 0.75),
    ]:
        physics, task = _env(task_name)
        _set(physics, qvel=[0, vx] + [0] * 7)  # upright at the model's pose: torso at 1.3 >= 1.2, upright 1
        assert physics.torso_height() == pytest.approx(1.3) and physics.torso_upright() == pytest.approx(1.0)
        assert physics.horizontal_velocity() == pytest.approx(vx)
        assert task.get_reward(physics) == pytest.approx((5 * expected_move + 1) / 6)
    _set(physics, qpos=[-0.4, 0, 0] + [0] * 6, qvel=[0, -8.0] + [0] * 7)  # torso lowered to 0.9: standing gaussian
    standing = _gauss(0.3, 0.6)
    assert task.get_reward(physics) == pytest.approx((3 * standing + 1) / 4)


def test_hopper_hop_backwards():
    physics, task = _env("hopper-hop-backwards")
    _set(physics, qvel=[-0.75] + [0] * 6)
    assert 0.6 <= physics.height() <= 2
    assert task.get_reward(physics) == pytest.approx(0.75)  # 0.25 past the bound -1, margin 0.5, 0.5 at the margin
    _set(physics, qvel=[-1.2] + [0] * 6)
    assert task.get_reward(physics) == pytest.approx(1.0)
    _set(physics, qpos=[0, 0, np.pi / 2] + [0] * 4, qvel=[-1.2] + [0] * 6)  # lying: torso and foot level
    assert physics.height() < 0.6
    assert task.get_reward(physics) == 0.0


@pytest.mark.parametrize(
    "task_name, offset, expected",
    [
        ("reacher-three-easy", 0.05, 1.0),
        ("reacher-three-hard", 0.05, 0.0),
        ("reacher-three-hard", 0.02, 1.0),
        ("reacher-three-easy", 0.07, 0.0),
    ],
)
def test_reacher_three(task_name, offset, expected):
    physics, task = _env(task_name)
    physics.named.model.geom_pos["target", ["x", "y"]] = [0.27 - offset, 0.0]
    _set(physics)  # arm straight along x: the finger at 0.27; hit within 0.05 + 0.01 (easy) or 0.015 + 0.01 (hard)
    assert task.get_reward(physics) == expected


def test_cup_spin_reward_and_start():
    physics, task = _env("cup-spin")
    _set(physics)
    target = physics.named.data.site_xpos["target", ["x", "z"]]
    # the ball 0.375 right of the target, at its height (ball body starts at z 0.2), moving at (3, -4): speed 5
    qpos = physics.data.qpos.copy()
    qpos[[2, 3]] = [target[0] + 0.375, target[1] - 0.2]
    qvel = np.zeros(4)
    qvel[[2, 3]] = [3.0, -4.0]
    _set(physics, qpos=qpos, qvel=qvel)
    assert physics.in_target() == 0.0
    far, fast = 1 - 0.5 * 0.125 / 0.25, 1 - 0.5 * 1 / 3
    assert task.get_reward(physics) == pytest.approx((far + 2 * fast) / 3)
    env = DMControl("cup-spin", seed=5)
    in_cup = []
    for _ in range(40):
        env.reset()
        in_cup.append(env._env.physics.in_target())
        assert env._env.physics.data.ncon == 0
    assert np.mean(in_cup) >= 0.75  # 90% start in the cup (catch's start has the ball below it)
