"""The agent contract (dream_mpc/agent.py), one suite for every agent family: TD-MPC2, BMPC, Dreamer and the test
plug-in's recurrent agent (tests/plugins/toy_plugin.py). Every registered planner acts through each of them
(finite actions in [-1, 1], in eval and exploration mode, across an episode start); the acting state (a planner's
warm start, a recurrent filter) round-trips, so acting goes on as if never interrupted; each agent updates from the
trainer's buffer and comes back from its own checkpoint file acting the same."""

import sys

import pytest
import torch
from conftest import PLUGINS, TINY

EPISODE = 30
# each family's smallest useful size (and cheap planner searches where a default would be slow to test)
SIZES = {
    "tdmpc2": [*TINY, "agent=tdmpc2"],
    "bmpc": [*TINY, "agent=bmpc"],
    "dreamer": [
        "agent=dreamer",
        "task=cartpole-swingup",
        "device=cpu",
        "dreamer.belief_size=16",
        "dreamer.state_size=4",
        "dreamer.hidden_size=16",
        "dreamer.embedding_size=16",
        "dreamer.imagination_horizon=3",
        "dreamer.batch_size=3",
        "dreamer.chunk_length=6",
    ],
    "toy_rnn": ["agent=toy_rnn", "task=toy-reach", "device=cpu", "horizon=3"],
}
SEARCH = ["cem.num_candidates=64", "cem.top_k=8", "cem.iterations=2", "grad.num_candidates=8", "grad.iterations=2"]


@pytest.fixture(scope="module", autouse=True)
def one_thread_and_the_plugin(toy):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def planner_names():
    sys.path.insert(0, str(PLUGINS))
    import toy_plugin  # noqa: F401

    from dream_mpc.registry import planners

    return planners.names()


def build(family, planner="policy"):
    from dream_mpc import config
    from dream_mpc.envs import task_dims
    from dream_mpc.registry import agents

    cfg = config.load([*SIZES[family], f"planner={planner}", *SEARCH])
    obs_shape, action_dim, _ = task_dims(cfg.task)
    config.set_env_dims(cfg, obs_shape, action_dim, EPISODE)
    torch.manual_seed(0)
    return agents.get(family)(cfg)


def observation(agent, seed):
    return torch.randn(agent.cfg.obs_shape[agent.cfg.obs], generator=torch.Generator().manual_seed(seed))


def check(action, agent):
    assert action.shape == (agent.cfg.action_dim,)
    assert torch.isfinite(action).all() and action.abs().max() <= 1


@pytest.mark.parametrize("planner", planner_names())
@pytest.mark.parametrize("family", list(SIZES))
def test_every_planner_acts_through_every_agent_family(family, planner):
    agent = build(family, planner)
    for episode in range(2):  # an episode start resets what acting carries
        for t in range(3):
            check(agent.act(observation(agent, t), t0=t == 0, eval_mode=episode == 0), agent)
    agent.reset()
    check(agent.act(observation(agent, 9), t0=True, eval_mode=True), agent)
    assert agent.nonfinite_actions == 0 and agent.planner.nonfinite_count == 0


@pytest.mark.parametrize("planner", ["dream", "mppi", "cem"])
@pytest.mark.parametrize("family", list(SIZES))
def test_the_acting_state_round_trips(family, planner):
    """Acting, saving the acting state and the random state, acting on: restored, the same actions follow."""
    agent = build(family, planner)
    for t in range(3):
        agent.act(observation(agent, t), t0=t == 0)
    state, rng = agent.acting_state(), torch.get_rng_state()
    first = [agent.act(observation(agent, 10 + t)) for t in range(2)]
    agent.load_acting_state(None)  # as at an episode's start: the carried state is gone
    agent.load_acting_state(state)
    torch.set_rng_state(rng)
    again = [agent.act(observation(agent, 10 + t)) for t in range(2)]
    for a, b in zip(first, again):
        assert torch.equal(a, b)


def episode(agent, length=EPISODE):
    """One random episode as the trainer stores it: row 0 the reset observation (NaN action and reward), then a row
    per step, with what the agent stores per step beside them (`buffer_extras`, BMPC's plan targets: NaN when the
    step was not planned)."""
    A = agent.cfg.action_dim
    extras = getattr(agent, "buffer_extras", None)
    rows = []
    for t in range(length + 1):
        nan = torch.full((1,), float("nan"))
        row = {
            "obs": observation(agent, 100 + t),
            "action": torch.full((A,), float("nan")) if t == 0 else torch.rand(A) * 2 - 1,
            "reward": nan if t == 0 else torch.rand(1),
            "terminated": nan if t == 0 else torch.zeros(1),
        }
        if extras is not None:
            row.update(extras(planned=False))
        rows.append(row)
    return rows


@pytest.mark.parametrize("family", list(SIZES))
def test_every_agent_updates_from_the_trainers_buffer_and_reloads_from_its_file(family, tmp_path):
    from dream_mpc import checkpoint
    from dream_mpc.training.buffer import Buffer

    agent = build(family)
    cls = type(agent)
    buffer = Buffer(agent.cfg, cls.sequence_length(agent.cfg), cls.batch_size(agent.cfg))
    buffer.add(episode(agent))
    buffer.add(episode(agent))
    metrics = agent.update(buffer)
    assert metrics and all(torch.isfinite(torch.as_tensor(float(v))) for v in metrics.values())
    checkpoint.save(tmp_path / "agent.pt", agent, step=1)
    loaded = checkpoint.load_agent(tmp_path / "agent.pt", device="cpu")
    assert type(loaded) is cls
    obs, actions = observation(agent, 7), []
    for acting in (agent, loaded):
        torch.manual_seed(1)  # the same random state (Dreamer's filter samples its posterior state)
        actions.append(acting.act(obs, t0=True, eval_mode=True))
    assert torch.equal(*actions)


def test_a_model_without_a_policy_is_refused_the_planners_that_need_one():
    """Capabilities: a world model says it has no policy prior (a PETS-like model); planners that need one are
    refused with one line naming those that fit, and those that fit plan."""
    from dream_mpc import config
    from dream_mpc.errors import UserError
    from dream_mpc.planner import make_planner
    from tests.toy_models import IntegratorModel

    class NoPolicy(IntegratorModel):
        has_policy = False

    cfg = config.load(["task=cartpole-swingup", "cem.terminal_value=false", *SEARCH])
    with pytest.raises(UserError, match="planner=policy needs a policy") as err:
        make_planner("policy", NoPolicy(), cfg, 0.9)
    fits = str(err.value).split("planners that fit it: ")[1].split(", ")
    assert {"cem", "grad"} <= set(fits) and not {"dream", "mppi", "policy", "cem_policy"} & set(fits)
    for name in ("cem", "grad"):
        action, _ = make_planner(name, NoPolicy(), cfg, 0.9).plan(torch.zeros(2, 2), t0=True, eval_mode=True)
        assert action.shape == (2, 2) and torch.isfinite(action).all()
