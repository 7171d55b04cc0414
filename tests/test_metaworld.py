"""The Meta-World v3 suite against the raw metaworld env: names, the discarded zero step, action repeat, fresh goals,
seeding, the 100-step limit, success at the last step and at any step, faults, pixels, a missing package."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("metaworld")

from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE  # noqa: E402

from dream_mpc import config  # noqa: E402
from dream_mpc.envs import make_env, suite_of  # noqa: E402
from dream_mpc.envs import metaworld as mw  # noqa: E402
from dream_mpc.envs.task_sets import TASK_SETS  # noqa: E402
from dream_mpc.errors import UserError  # noqa: E402


def _raw(name, seed):
    """The raw goal-observable env, configured as the suite says it configures it."""
    env = ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[f"{name}-v3-goal-observable"](seed=seed)
    env.np_random = np.random.Generator(np.random.MT19937(seed))
    env._freeze_rand_vec, env.seeded_rand_vec = False, True
    return env


def test_fifty_tasks_named_as_tdmpc2_and_in_mt80():
    assert len(mw.TASKS) == 50
    assert {f"{t[3:]}-v3-goal-observable" for t in mw.TASKS} == set(ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE)
    assert set(mw.TASKS) == {t for t in TASK_SETS["mt80"] if t.startswith("mw-")}
    assert suite_of("mw-assembly").name == "metaworld"


def test_reset_discards_a_zero_step_and_action_repeat_sums_rewards():
    env, raw = mw.MetaWorld("mw-push", seed=4), _raw("push", 4)
    obs = env.reset()
    raw_obs, _ = raw.reset()
    np.testing.assert_allclose(obs.numpy(), raw_obs.astype(np.float32))  # the pre-step obs is returned
    raw.step(np.zeros(4, np.float32))
    rng = np.random.default_rng(0)
    for _ in range(5):
        action = rng.uniform(-1, 1, 4).astype(np.float32)
        obs, reward, done, info = env.step(torch.from_numpy(action))
        results = [raw.step(action) for _ in range(2)]
        assert reward.item() == pytest.approx(sum(float(r[1]) for r in results), rel=1e-5)
        np.testing.assert_allclose(obs.numpy(), results[-1][0].astype(np.float32), rtol=1e-6)
        assert info["success"] == float(results[-1][4]["success"]) and not done
    assert raw.curr_path_length == 11  # 1 zero step + 5 x 2


def test_fresh_goal_every_reset_reproducible_by_seed_and_rng_state():
    env = mw.MetaWorld("mw-reach", seed=2)
    goals = [env.reset()[-3:] for _ in range(3)]
    assert not torch.equal(goals[0], goals[1]) and not torch.equal(goals[1], goals[2])
    again = mw.MetaWorld("mw-reach", seed=2)
    assert all(torch.equal(g, again.reset()[-3:]) for g in goals)
    state = env.get_rng_state()
    nxt = env.reset()
    env.set_rng_state(state)
    assert torch.equal(env.reset(), nxt)
    env.set_rng_state(np.random.RandomState(7).get_state())  # one seed for every env alike
    first = env.reset()
    env.set_rng_state(np.random.RandomState(7).get_state())
    assert torch.equal(env.reset(), first)


def test_episode_is_100_steps_and_stepping_past_it_is_flagged():
    env = mw.MetaWorld("mw-button-press", seed=1)
    env.reset()
    dones = [env.step(env.rand_act())[2] for _ in range(100)]
    assert dones == [False] * 99 + [True]
    assert env._env.curr_path_length == 201
    obs, reward, done, info = env.step(env.rand_act())
    assert done and info["past_limit"] == 1.0 and reward.item() == 0.0 and env._env.curr_path_length == 201


def test_success_last_step_and_any_step():
    from metaworld.policies import SawyerButtonPressV3Policy

    policy = SawyerButtonPressV3Policy()
    env = mw.MetaWorld("mw-button-press", seed=1)
    obs, successes = env.reset(), []
    for _ in range(100):
        action = np.clip(policy.get_action(obs.numpy()), -1, 1).astype(np.float32)
        obs, _, done, info = env.step(torch.from_numpy(action))
        successes.append(info["success"])
        assert info["success_any"] == max(successes)
    assert done and 0 < successes.index(1.0) < 99 and info["success"] == 1.0
    # any-step success outlives a later failure; the last step's success does not
    env.reset()
    env._success_any = 1.0
    _, _, _, info = env.step(torch.zeros(4))
    assert info["success"] == 0.0 and info["success_any"] == 1.0


def test_simulator_instability_ends_the_episode_with_finite_obs():
    env = mw.MetaWorld("mw-reach", seed=1)
    before = env.reset()
    env._env.data.qvel[:] = np.nan
    obs, reward, done, info = env.step(torch.zeros(4))
    assert done and info["instability"] == 1.0 and reward.item() == 0.0
    assert torch.isfinite(obs).all() and obs.shape == before.shape
    assert torch.isfinite(env.reset()).all()  # the next episode starts clean


def test_nonfinite_action_never_reaches_the_simulator():
    env = mw.MetaWorld("mw-reach", seed=1)
    env.reset()
    with pytest.raises(ValueError, match="non-finite"):
        env.step(torch.tensor([0.0, float("nan"), 0.0, 0.0]))


def test_make_env_and_pixels():
    cfg = config.load(["task=mw-window-open"])
    env = make_env(cfg)
    assert cfg.obs_shape == {"state": (39,)} and cfg.action_dim == 4 and cfg.episode_length == 100
    assert env.has_success and env.render().shape == (384, 384, 3)
    pix = mw.MetaWorld("mw-window-open", seed=1, obs="rgb")
    obs = pix.reset()
    assert obs.shape == (9, 64, 64) and obs.dtype == torch.uint8 and torch.equal(obs[:3], obs[6:])
    frames = [pix.step(torch.ones(4))[0] for _ in range(3)]
    assert torch.equal(frames[-1][:6], frames[-2][3:]) and not torch.equal(frames[-1][6:], obs[6:])
    # upright: the plain backdrop fills the top rows, the table and the robot's base the bottom ones
    image = frames[-1][6:].float().mean(0)
    assert image[:6].std() < 1.0 < 5.0 < image[-6:].std()
    pix.close()


def test_missing_package_is_a_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "metaworld.env_dict", None)
    with pytest.raises(UserError, match="pip install 'metaworld"):
        mw.MetaWorld("mw-reach")


def test_unknown_task_lists_close_names():
    with pytest.raises(UserError, match="mw-button-press"):
        mw.MetaWorld("mw-buton-press")
