"""Multi-task: the mt30/mt80 tables against the built envs, the multi-task wrapper (padding, masking, per-task episode
lengths), the offline trainer's evaluation and its official score, offline training from chunks written from real
episodes, and every registered task of every suite building and stepping."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import importlib.util

import numpy as np
import pytest
import torch
from tensordict import TensorDict

from dream_mpc import config
from dream_mpc.envs import all_tasks, make_env, suite_of, task_sets
from dream_mpc.envs.multitask import MultitaskEnv
from dream_mpc.errors import UserError
from dream_mpc.training.logger import Logger
from tdmpc2 import offline

HAVE_MW = importlib.util.find_spec("metaworld") is not None


class _Cfg:
    obs, seed = "state", 1


def test_tables_match_the_built_envs():
    mt80 = task_sets.TASK_SETS["mt80"]
    assert len(task_sets.TASK_SETS["mt30"]) == 30 and len(mt80) == 80 and mt80[:30] == task_sets.TASK_SETS["mt30"]
    assert task_sets.action_dims("reacher-three-easy") == [3] == task_sets.action_dims("reacher-three-hard")
    assert max(task_sets.obs_dims("mt30")) == 24 and max(task_sets.obs_dims("mt80")) == 39
    assert max(task_sets.action_dims("mt80")) == 6
    for task in mt80:
        if task.startswith("mw-") and not HAVE_MW:
            continue
        obs_shape, action_dim, length = suite_of(task).dims(task)  # read from the simulator's specs
        assert (obs_shape[0], action_dim) == task_sets.TASK_DIMS[task], task
        assert length == task_sets.TASK_EPISODE_LENGTHS[task], task
    if HAVE_MW:  # Meta-World's dims are constants: build a few envs to check them
        for task in ("mw-assembly", "mw-hand-insert", "mw-soccer"):
            env = suite_of(task).make(task, _Cfg)
            assert env.reset().shape == (39,) and env.action_space.shape == (4,)


@pytest.mark.skipif(not HAVE_MW, reason="metaworld is not installed")
def test_wrapper_pads_observations_and_masks_actions():
    env = MultitaskEnv(["cartpole-swingup", "walker-walk", "mw-reach"], _Cfg)
    assert env.observation_space.shape == (39,) and env.action_space.shape == (6,)
    assert env._obs_dims == [5, 24, 39] and env._action_dims == [1, 6, 4] and env._episode_lengths == [500, 500, 100]
    obs = env.reset(task=0)
    assert obs.shape == (39,) and torch.all(obs[5:] == 0) and env.max_episode_steps == 500
    # only the first action entry reaches cartpole: the padded entries change nothing
    state = env.get_rng_state()
    env.reset(task=0)
    a = env.step(torch.tensor([0.5, 9, 9, 9, 9, 9]))
    env.set_rng_state(state)
    env.reset(task=0)
    b = env.step(torch.tensor([0.5, -9, 0, 0, 0, 0]))
    assert torch.equal(a[0], b[0]) and a[1] == b[1]
    env.set_task(2)
    obs = env.reset()
    assert obs.shape == (39,) and env.max_episode_steps == 100 and env.has_success
    steps = 0
    done = False
    while not done:
        _, _, done, info = env.step(env.rand_act())
        steps += 1
    assert steps == 100 and "success" in info
    assert env.rand_act()[4:].abs().sum() == 0
    with pytest.raises(UserError, match="out of range"):
        env.set_task(3)


class _ZeroAgent:
    """Acts with zeros and records the task index it was given (no planner: no plan info)."""

    last_plan_info = None

    def __init__(self, action_dim):
        self.action_dim, self.tasks = action_dim, []

    def act(self, obs, t0=False, eval_mode=False, task=None):
        self.tasks.append(task)
        return torch.zeros(self.action_dim)


@pytest.mark.skipif(not HAVE_MW, reason="metaworld is not installed")
def test_offline_evaluation_scores_every_task_as_tdmpc2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the logger's run folder
    tasks = "eval_tasks=[pendulum-swingup,mw-reach]"
    cfg = config.load(["task=mt80", tasks, "eval_episodes=2", "save_csv=false", "enable_wandb=false"])
    env = make_env(cfg)
    agent = _ZeroAgent(cfg.action_dim)
    metrics = offline.OfflineTrainer(cfg, env, agent, None, Logger(cfg)).eval(step=0)
    pend, reach = metrics["pendulum-swingup/episode_reward"], metrics["mw-reach/episode_success"]
    assert metrics["score"] == pytest.approx((pend / 10 + 100 * reach) / 2)  # DMC return / 10, MW success x 100
    assert set(agent.tasks) == {7, task_sets.TASK_SETS["mt80"].index("mw-reach")}
    assert len(agent.tasks) == 2 * 500 + 2 * 100  # each task's own episode length
    with pytest.raises(UserError, match="agent=dreamer is single-task; task=mt80 is a multi-task set.*: bmpc, tdmpc2"):
        config.load(["task=mt80", "agent=dreamer"])


def _write_chunks(path, tasks, episodes_per_task=2):
    """Official chunk format from real random episodes: (N, 501) TensorDicts, row 0 the reset obs with NaN
    action and reward, obs padded to 24 and actions to 6."""
    mt30 = task_sets.TASK_SETS["mt30"]
    env = MultitaskEnv(
        mt30,
        _Cfg,
        obs_dims=task_sets.obs_dims("mt30"),
        action_dims=task_sets.action_dims("mt30"),
        episode_lengths=task_sets.episode_lengths("mt30"),
    )
    for c, task in enumerate(tasks):
        idx = mt30.index(task)
        obs, action, reward = [], [], []
        for _ in range(episodes_per_task):
            o, ep_a, ep_r, ep_o = env.reset(task=idx), [torch.full((6,), float("nan"))], [float("nan")], []
            ep_o.append(o)
            done = False
            while not done:
                a = env.rand_act()
                o, r, done, _ = env.step(a)
                ep_o.append(o), ep_a.append(a), ep_r.append(float(r))
            obs.append(torch.stack(ep_o)), action.append(torch.stack(ep_a)), reward.append(torch.tensor(ep_r))
        n = len(obs)
        td = TensorDict(
            {
                "obs": torch.stack(obs),
                "action": torch.stack(action),
                "reward": torch.stack(reward),
                "task": torch.full((n, 501), idx, dtype=torch.int32),
            },
            batch_size=[n, 501],
        )
        torch.save(td, path / f"chunk_{c}.pt")


def test_offline_training_from_chunks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the run's folder (logs/mt30/...) goes under the test's own directory
    data = tmp_path / "data"
    data.mkdir()
    _write_chunks(data, ["cartpole-swingup", "pendulum-spin"])
    cfg = config.load(
        [
            "task=mt30",
            f"data_dir={data}",
            "model_size=1",
            "steps=4",
            "batch_size=16",
            "eval_freq=0",
            "enable_wandb=false",
            "save_csv=false",
            "save_agent=false",
        ]
    )
    make_env(cfg)
    assert cfg.obs_shape == {"state": (24,)} and cfg.action_dim == 6 and len(cfg.action_dims) == 30
    buffer = offline.load_dataset(cfg, log=lambda *_: None)
    assert buffer.num_episodes == 4 and len(buffer) == 4 * 501
    batch = buffer.sample()
    assert set(batch["task"].tolist()) <= {10, 29} and torch.isfinite(batch["action"]).all()
    assert batch["obs"].shape == (cfg.horizon + 1, 16, 24)
    # the stored episodes are the written ones (pendulum-spin's two episodes follow cartpole's two)
    chunk = offline.read_chunk(data / "chunk_1.pt")
    stored = buffer._fields["reward"][2 * 501 :].reshape(2, 501)
    assert torch.allclose(stored[:, 1:], chunk["reward"][:, 1:]) and torch.equal(
        buffer._fields["task"][-1:].long(), torch.tensor([29])
    )
    offline.train(cfg)  # agent, 4 updates, no evaluation
    with pytest.raises(UserError, match="no dataset chunks"):
        cfg2 = config.load(["task=mt30", f"data_dir={tmp_path / 'empty'}"])
        make_env(cfg2)
        offline.load_dataset(cfg2)


@pytest.mark.slow
def test_every_registered_task_builds_and_steps():
    """Every task of every suite: reset and 2 steps with finite observations of the declared shape."""
    names = [t for t in all_tasks() if task_sets.TASK_SETS.get(t) is None]
    seen, failures = set(), []
    for task in names:
        suite = suite_of(task)
        if suite.name == "humanoid_bench":
            if importlib.util.find_spec("humanoid_bench") is None:
                continue
            from dream_mpc.envs.humanoid_bench import gym_id

            if gym_id(task) in seen:  # the same env with and without -v0
                continue
            seen.add(gym_id(task))
        if suite.name == "metaworld" and not HAVE_MW:
            continue
        try:
            _build_and_step(suite, task)
        except Exception as err:  # noqa: BLE001 - collect every failing task
            failures.append(f"{task}: {type(err).__name__}: {err}")
    assert not failures, "\n".join(failures)


def _build_and_step(suite, task):
    env = suite.make(task, _Cfg)
    obs = env.reset()
    dims = suite.dims(task)
    assert obs.shape == env.observation_space.shape == tuple(dims[0]), task
    assert env.action_space.shape == (dims[1],) and env.max_episode_steps == dims[2], task
    for _ in range(2):
        obs, reward, done, info = env.step(env.rand_act())
        assert torch.isfinite(obs).all() and np.isfinite(float(reward)) and "success" in info, task
    if hasattr(env, "close"):
        env.close()


def test_evaluate_py_on_a_task_set_writes_the_records_of_every_evaluation(tmp_path, capsys):
    """One record format for every evaluation: evaluate.py task=mt80 writes one row per (task, episode)."""
    from dream_mpc import checkpoint, cli
    from dream_mpc.evaluation import records
    from dream_mpc.registry import agents

    cfg = config.load(["task=mt80", "model_size=1", "device=cpu"])
    make_env(cfg)
    torch.manual_seed(0)
    checkpoint.save(tmp_path / "mt80.pt", agents.get("tdmpc2")(cfg))
    argv = ["task=mt80", f"checkpoint={tmp_path / 'mt80.pt'}", "planner=policy", "eval_episodes=2", "device=cpu"]
    argv += ["eval_tasks=[pendulum-swingup]", f"results_dir={tmp_path / 'r'}"]
    cli.run(cli.evaluate_job, argv)
    rows = records.collect([tmp_path / "r"])
    assert [(r["task"], r["episode"], r["planner"]) for r in rows] == [
        ("pendulum-swingup", i, "policy") for i in (0, 1)
    ]
    assert all(r["agent"] == "tdmpc2" and r["length"] == 500 for r in rows)  # DMControl: 500 agent steps
    score = f"normalized score {100 * np.mean([r['score'] for r in rows]):.1f} over 1 tasks"  # DMC: return / 10
    assert score in capsys.readouterr().out
    cli.run(cli.evaluate_job, argv)  # all recorded: nothing runs, the set's score is read from the records
    out = capsys.readouterr().out
    assert "all 2 episodes already recorded" in out and score in out and len(records.collect([tmp_path / "r"])) == 2
