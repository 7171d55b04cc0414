"""The agent contract (dream_mpc/agent.py), one suite for every agent family: TD-MPC2, BMPC, Dreamer and the test
plug-in's recurrent agent (tests/plugins/toy_plugin.py), each checked by `dream_mpc.contract` on a real task (every
planner that fits acts, the acting state round-trips, plans are scored, it learns from the trainer's buffer and
comes back from its own file acting the same); the acting state round-trips under several planners; the checker
names what a broken family breaks, and runs as a command."""

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


@pytest.mark.parametrize("family", list(SIZES))
def test_every_family_holds_every_point_of_the_contract(family):
    from dream_mpc.contract import check_family
    from dream_mpc.registry import planners

    results = list(check_family([*SIZES[family], *SEARCH], steps=3))
    assert [(point, problem) for point, problem, _ in results] == [
        (point, None) for point in ("acts", "state", "records", "learns", "files")
    ]
    acted = results[0][2].split("; ")[0]
    assert acted == "acted: " + ", ".join(planners.names())  # every model here has a policy and a value


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


def test_the_checker_names_what_a_broken_family_breaks(toy):
    """A family whose actions leave [-1, 1] fails `acts`; one whose `act` bypasses its planner fails `records`; the
    other points still hold, each checked on its own."""
    from dream_mpc.contract import check_family
    from dream_mpc.registry import agents

    class Overshoots(toy.RecurrentAgent):
        def act(self, obs, t0=False, eval_mode=False, task=None):
            return 2 * super().act(obs, t0, eval_mode, task).sign()

    class Bypasses(toy.RecurrentAgent):
        def act(self, obs, t0=False, eval_mode=False, task=None):
            self.last_plan_info = {}
            return torch.zeros(self.cfg.action_dim)

    agents.register("toy_overshoots", Overshoots)
    agents.register("toy_bypasses", Bypasses)
    base = [x for x in SIZES["toy_rnn"] if not x.startswith("agent=")]
    found = {name: {p: problem for p, problem, _ in check_family([f"agent={name}", *base])} for name in agents.names()
             if name in ("toy_overshoots", "toy_bypasses")}  # fmt: skip
    assert "outside [-1, 1]" in found["toy_overshoots"]["acts"] and found["toy_overshoots"]["learns"] is None
    assert "acted through no `agent.planner.plan` call" in found["toy_bypasses"]["records"]
    assert found["toy_bypasses"]["acts"] is None and found["toy_bypasses"]["files"] is None


def test_the_checker_runs_as_a_command(tmp_path):
    import os
    import subprocess

    from conftest import CHILD_ENV, ROOT

    env = {**CHILD_ENV, "DREAM_MPC_PLUGINS": "toy_plugin", "PYTHONPATH": os.pathsep.join([str(PLUGINS), str(ROOT)])}
    run = [sys.executable, "-m", "dream_mpc.contract", *SIZES["toy_rnn"]]
    done = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "5 of 5 points hold", done.stderr[-2000:]
    assert "refused" not in done.stdout and not list(tmp_path.iterdir())  # nothing left behind
    bad = subprocess.run([*run, "toy.nope=1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


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
