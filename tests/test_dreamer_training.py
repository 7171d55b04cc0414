"""`agent=dreamer` end to end: the agent contract (acting with the recurrent filter carried and reset, its acting
state through a stop and a resume, updates from the trainer's buffer on pixels and states, the `dreamer.*` config
block), the trainer's episode schedule, a stopped and resumed run equal to the uninterrupted one, and the command
lines (train, resume, evaluate with every planner).

In-process runs use cartpole-swingup with episodes cut to EPISODE steps and a tiny model, as tests/test_faults.py
does for TD-MPC2."""

import copy
import io
import os

import pytest
import torch
from conftest import WORK_DIR, assert_same_state, run_script, send_stops

from dream_mpc import checkpoint, config, runtime
from dream_mpc.agent import EpisodeSchedule
from dream_mpc.envs import make_env
from dream_mpc.errors import UserError
from dream_mpc.training.buffer import Buffer
from dream_mpc.training.logger import Logger
from dream_mpc.training.trainer import OnlineTrainer, Stopped
from dreamer.family import DreamerAgent

SIZES = [
    "dreamer.belief_size=16",
    "dreamer.state_size=4",
    "dreamer.hidden_size=16",
    "dreamer.embedding_size=16",
    "dreamer.cnn_depth=4",
    "dreamer.imagination_horizon=3",
    "dreamer.batch_size=3",
    "dreamer.chunk_length=6",
]
TINY = ["agent=dreamer", "task=cartpole-swingup", "device=cpu", "threads=1", "eval_episodes=1", *SIZES]
EPISODE = 40


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_cfg(overrides=(), cwd=None):
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)  # work_dir is <cwd>/logs/...
    try:
        return config.load([*TINY, *overrides])
    finally:
        os.chdir(old)


def short_env(cfg, episode=EPISODE):
    env = make_env(cfg)
    env.max_episode_steps = episode
    config.set_env_dims(cfg, env.observation_space.shape, env.action_space.shape[0], episode)
    return env


def random_episode(env, g):
    """An episode of random actions as trainer rows (row t: obs_t, action_{t-1}, reward_{t-1}), and its
    time-major (obs, actions, rewards)."""
    nan = torch.tensor(float("nan"))
    obs = env.reset()
    rows = [{"obs": obs, "action": torch.full((env.action_space.shape[0],), float("nan")), "reward": nan,
             "terminated": nan}]  # fmt: skip
    done = False
    while not done:
        action = torch.rand(env.action_space.shape[0], generator=g) * 2 - 1
        obs, reward, done, info = env.step(action)
        rows.append({"obs": obs, "action": action, "reward": reward, "terminated": info["terminated"]})
    return rows


# ---------------------------------------------------------------------------------------------------- contract
def test_the_config_block_is_the_agents_and_bad_values_are_one_line_errors():
    cfg = load_cfg()
    assert DreamerAgent.sequence_length(cfg) == 6 and DreamerAgent.batch_size(cfg) == 3
    assert DreamerAgent.schedule(cfg) == EpisodeSchedule(seed_episodes=5, updates_per_episode=100)
    assert cfg.dreamer.belief_size == 16 and cfg.dreamer.free_nats == 3.0  # set, and table 16's default
    for bad, match in (
        ("dreamer.belief_size=0", "dreamer.belief_size=0 is not allowed"),
        ("dreamer.free_nats_mode=clamp", "dreamer.free_nats_mode='clamp' is not allowed.*per_step, batch_mean"),
        ("dreamer.chunk_length=1", "dreamer.chunk_length=1 is not allowed"),
        ("dreamer.beleif_size=8", "unknown dreamer option 'beleif_size'.*belief_size"),
    ):
        with pytest.raises(UserError, match=match) as err:
            load_cfg([bad])
        assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="agent=dreamer is single-task; task=mt30 is a multi-task set"):
        config.load(["agent=dreamer", "task=mt30"])
    cfg = load_cfg(["dreamer.chunk_length=50"])
    short_env(cfg)
    with pytest.raises(UserError, match="dreamer.chunk_length=50 is longer than an episode of cartpole-swingup"):
        DreamerAgent(cfg)


def test_the_recurrent_state_is_carried_across_act_calls_and_reset_at_t0():
    """With planner=policy in eval mode the agent's action is the actor's mode on the filtered state: the same as
    the networks' own `Dreamer.act` with the state carried by hand, and not the same as with a fresh state."""
    cfg = load_cfg(["planner=policy", "dreamer.eval_action=mean"])  # the mode of an untrained actor sits at +-1
    env = short_env(cfg)
    torch.manual_seed(0)
    agent = DreamerAgent(cfg)
    obs = [env.reset()] + [env.step(torch.rand(1) * 2 - 1)[0] for _ in range(3)]
    state = agent.dreamer.initial_state(1)
    for t, o in enumerate(obs):
        torch.manual_seed(t)
        mine = agent.act(o, t0=t == 0, eval_mode=True)
        torch.manual_seed(t)
        expected, state = agent.dreamer.act(o.unsqueeze(0), state)
        assert mine.shape == (1,) and torch.equal(mine, expected[0])
        assert torch.equal(agent.acting_state()["filter"]["h"], state["h"])
    torch.manual_seed(3)
    fresh, _ = agent.dreamer.act(obs[3].unsqueeze(0), agent.dreamer.initial_state(1))
    assert not torch.allclose(fresh[0], mine)  # the carried state matters
    torch.manual_seed(3)
    assert torch.equal(agent.act(obs[3], t0=True, eval_mode=True), fresh[0])  # t0: back to the zero state
    # exploration: noise outside eval mode only, and one noise (cem adds its own: the agent adds none)
    assert agent._agent_noise() == 0.3
    agent.set_planner("cem")
    assert agent.planner.opt.expl_noise == 0.3 and agent._agent_noise() == 0.0


def test_the_acting_state_survives_a_checkpoint_and_a_new_process():
    """acting_state() mid-episode, written and read as a checkpoint is (weights_only), loaded into a freshly built
    agent: its next action is the original's; load_acting_state(None) is an episode's start."""
    cfg = load_cfg(["planner=dream", "dream.horizon=3"])
    env = short_env(cfg)
    torch.manual_seed(0)
    agent = DreamerAgent(cfg)
    obs = env.reset()
    for t in range(3):
        obs = env.step(agent.act(obs, t0=t == 0))[0]
    f = io.BytesIO()
    torch.save({"model": agent.weights_state(), "agent": agent.state_dict(), "acting": agent.acting_state()}, f)
    f.seek(0)
    saved = torch.load(f, weights_only=True)
    other = DreamerAgent(copy.deepcopy(cfg))
    other.load_weights_state(saved["model"])
    other.load_state_dict(saved["agent"])
    other.load_acting_state(saved["acting"])
    torch.manual_seed(9)
    one = agent.act(obs)
    torch.manual_seed(9)
    two = other.act(obs)
    h = agent.acting_state()["filter"]["h"]
    assert torch.equal(one, two) and torch.equal(other.acting_state()["filter"]["h"], h)
    other.load_acting_state(None)
    assert other.acting_state()["filter"] is None
    torch.manual_seed(9)
    other.act(obs)
    assert not torch.allclose(other.acting_state()["filter"]["h"], h)  # from a zero state: another belief


@pytest.mark.parametrize("obs", ["state", "rgb"])
def test_first_update_from_the_trainers_buffer(obs):
    """Chunks sampled from the buffer reach `Dreamer.update` as the trainer's rows mean them: L observations, the
    action taken at each and the reward after it (row t of the buffer holds a_{t-1}, r_{t-1}); pixels stay uint8."""
    L = 6
    cfg = load_cfg([f"obs={obs}", f"dreamer.chunk_length={L}"])
    env = short_env(cfg, episode=L - 1)  # one valid chunk: the whole episode
    torch.manual_seed(0)
    agent = DreamerAgent(cfg)
    twin = copy.deepcopy(agent)
    buffer = Buffer(cfg, DreamerAgent.sequence_length(cfg), DreamerAgent.batch_size(cfg))
    rows = random_episode(env, torch.Generator().manual_seed(1))
    buffer.add(rows)
    stored = buffer._fields["obs"]
    assert stored.dtype == (torch.uint8 if obs == "rgb" else torch.float32)
    assert stored.shape[1:] == ((3, 64, 64) if obs == "rgb" else (5,))  # Dreamer reads one frame
    torch.manual_seed(2)
    metrics = agent.update(buffer)
    assert {"obs_loss", "reward_loss", "kl", "actor_loss", "value_loss"} <= set(metrics)
    assert all(v == v and abs(v) < float("inf") for v in metrics.values())
    B = cfg.dreamer.batch_size
    expected = {
        "obs": torch.stack([r["obs"] for r in rows]).unsqueeze(1).expand(L, B, *stored.shape[1:]),
        "action": torch.stack([r["action"] for r in rows[1:]] + [torch.zeros(1)]).unsqueeze(1).expand(L, B, 1),
        "reward": torch.stack([r["reward"] for r in rows[1:]] + [torch.tensor(0.0)]).unsqueeze(1).expand(L, B),
    }
    torch.manual_seed(2)
    torch.randint(1, (B,))  # the buffer's draw of start rows
    assert twin.dreamer.update(expected) == metrics
    changed = [not torch.equal(a, b) for a, b in zip(agent.model.parameters(), twin.model.parameters())]
    assert not any(changed)  # the same update step, bit for bit


# ---------------------------------------------------------------------------------------------------- training
def short_trainer(cwd, overrides=(), stop_at=(), stop_in_update=()):
    """An in-process Dreamer trainer in `cwd` on EPISODE-step episodes, stopped by SIGTERM as `send_stops` says."""
    cfg = load_cfg(["planner=dream", "dream.horizon=3", *overrides], cwd=cwd)
    runtime.setup(cfg)
    env = short_env(cfg)
    family = DreamerAgent
    buffer = Buffer(cfg, family.sequence_length(cfg), family.batch_size(cfg))
    return send_stops(OnlineTrainer(cfg, env, family(cfg), buffer, Logger(cfg)), stop_at, stop_in_update)


ARGS = ["steps=200", "eval_freq=100", f"save_freq={EPISODE}", "dreamer.seed_episodes=2", "dreamer.collect_interval=3"]


def test_the_episode_schedule_seeds_randomly_then_updates_after_each_episode(tmp_path):
    run = short_trainer(tmp_path, ARGS[:1] + ["steps=120", *ARGS[1:]])
    calls = []
    act, update = run.agent.act, run.agent.update
    run.agent.act = lambda obs, **kw: calls.append(("act", run._step, kw.get("t0"))) or act(obs, **kw)
    run.agent.update = lambda buffer, **kw: calls.append(("update", run._step)) or update(buffer, **kw)
    run.eval = lambda: {"episode_reward": 0.0}  # training steps only
    run.train()
    acted = [c for c in calls if c[0] == "act"]
    updates = [c for c in calls if c[0] == "update"]
    # 2 random episodes (steps 0..79), then the agent acts from step 80 (t0 at each episode's start) to 120
    assert [c for c in acted if c[2]] == [("act", 80, True), ("act", 120, True)] and len(acted) == 41
    # 3 updates after each episode from the second on: at the ends of the episodes that end at steps 80 and 120
    assert updates == [("update", 80)] * 3 + [("update", 120)] * 3


@pytest.mark.slow  # about 11 s on 2 shared cores
def test_stopped_and_resumed_run_is_bitwise_the_uninterrupted_one(tmp_path):
    """Stopped by SIGTERM between two of an episode's updates, in the middle of a planned episode (the filter's state
    and the planner's in the checkpoint) and right at an episode's end (its updates still to run), then resumed to
    the end: weights, optimisers, buffer, RNG states, the episode in progress with the acting state, and the logs
    equal those of the same run never stopped."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole = short_trainer(tmp_path / "a", ARGS)
    whole.train()
    stopped_at = []
    # the 2nd of the 3 updates after the episode that ends at step 80; 130: in an episode (120..160); 160: its end
    for stop, in_update in (((), (2,)), ((130,), ()), ((160,), ()), ((), ())):
        run = short_trainer(tmp_path / "b", ARGS, stop_at=stop, stop_in_update=in_update)
        try:
            run.train()
        except Stopped as stopped:
            assert stopped.code == 143
            saved = checkpoint.read(tmp_path / "b" / WORK_DIR / "models" / "last.pt")
            stopped_at.append((saved["step"], tuple(saved["pending_updates"])))
    assert stopped_at == [(80, (1, False)), (130, (0, False)), (160, (0, False))]
    a, b = (checkpoint.read(tmp_path / d / WORK_DIR / "models" / "last.pt") for d in "ab")
    assert a["step"] == 201 and a["current_episode"]["acting"]["filter"] is not None
    for key in ("model", "agent", "buffer", "rng", "current_episode", "step", "episode", "log_rows", "nonfinite"):
        assert_same_state(a[key], b[key], key)
    assert_same_state(whole.agent.model.state_dict(), run.agent.model.state_dict(), "live model")
    for name in ("train.csv", "eval.csv"):  # the same rows, but for the clocks
        rows = [[line.split(",") for line in (tmp_path / d / WORK_DIR / name).read_text().splitlines()] for d in "ab"]
        clock = {rows[0][0].index(k) for k in ("elapsed_time", "steps_per_second") if k in rows[0][0]}
        strip = [[[v for i, v in enumerate(r) if i not in clock] for r in rs] for rs in rows]
        assert strip[0] == strip[1], name
    assert "obs_loss" in (tmp_path / "a" / WORK_DIR / "train.csv").read_text().splitlines()[0]  # updates' metrics


# ---------------------------------------------------------------------------------------------------- command lines
@pytest.mark.slow
def test_train_on_pixels_resume_and_evaluate_with_every_planner(tmp_path):
    """The issue's commands at a tiny size: walker-run from pixels with planner=dream trains and checkpoints; the
    same command with more steps resumes; evaluate.py runs the file with cem, dream, grad, hybrid and policy."""
    sizes = [s for s in SIZES if "chunk" not in s] + ["dreamer.chunk_length=8", "dreamer.batch_size=2"]
    train = ["agent=dreamer", "task=walker-run", "obs=rgb", "planner=dream", "device=cpu", "threads=1",
             "eval_episodes=1", "eval_freq=100000", "dreamer.seed_episodes=1", "dreamer.collect_interval=2",
             "dream.horizon=3", *sizes]  # fmt: skip
    first = run_script("train.py", [*train, "steps=510"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    last = tmp_path / "logs/walker-run/1/default/models/last.pt"
    ckpt = checkpoint.read(last)
    assert ckpt["step"] == 511 and ckpt["config"]["agent"] == "dreamer"
    assert ckpt["buffer"]["fields"]["obs"].dtype == torch.uint8
    assert ckpt["current_episode"]["acting"]["filter"]["h"].shape == (1, 16)  # planned steps 501..510
    again = run_script("train.py", [*train, "steps=520"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resumed from {last} at step 511" in again.stdout + again.stderr
    assert checkpoint.read(last)["step"] == 521
    planners = "cem,dream,grad,hybrid,policy"
    small = ["cem.num_candidates=16", "cem.iterations=2", "cem.top_k=4", "cem.horizon=3", "grad.num_candidates=4",
             "grad.iterations=2", "dream.horizon=3"]  # fmt: skip
    ev = run_script(
        "evaluate.py",
        ["-m", f"checkpoint={last}", f"planner={planners}", "eval_episodes=1", "threads=1", *small],
        cwd=tmp_path,
    )
    assert ev.returncode == 0, ev.stderr[-2000:]
    for name in planners.split(","):
        assert f"walker-run planner={name}: return" in ev.stdout, ev.stdout[-2000:]
    assert "error" not in ev.stderr.lower(), ev.stderr[-2000:]


def test_a_bad_dreamer_option_on_the_command_line_is_one_line(tmp_path):
    out = run_script("train.py", ["agent=dreamer", "task=cartpole-swingup", "dreamer.kl_scale=-1"], cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert "dreamer.kl_scale=-1" in out.stderr and "not allowed" in out.stderr
