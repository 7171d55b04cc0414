"""An agent family checked against the contract (dream_mpc/agent.py), as gymnasium's `check_env` checks an env:

    python -m dream_mpc.contract agent=<name> [task=<task> key=value ...]

builds the family on a real task of a registered suite (plug-ins load as for train.py) and prints one line per point:

  acts     every registered planner that fits its world model acts: actions of the env's shape, finite, in [-1, 1],
           on the CPU, across episode starts, in eval and exploration mode, with `last_plan_info` set; the planners
           that need what the model lacks are refused with one line (`make_planner`)
  state    the acting state round-trips: restored with the random state, the same actions follow
  records  acting goes through `agent.planner.plan` (model-exploitation records score its plans)
  learns   `sequence_length` >= 2 rows, and an update from the trainer's buffer of two real episodes gives finite
           float metrics
  files    `checkpoint.save`, then `load_agent` from the file alone: the same family, acting the same

Exit 0 when every point holds, 1 when one does not (2: a mistake in the command line). `check_family` is the same
as a function: tests/test_contract.py runs it on every built-in family and on the test plug-ins.
"""

import sys
import tempfile
from pathlib import Path

import torch

from dream_mpc.errors import UserError, first_line

STEPS = 4  # acting steps per episode start and mode


def check_family(overrides=(), steps=STEPS):
    """(point, problem or None, detail) for each point, as it is checked, for the family the overrides choose."""
    from dream_mpc import config
    from dream_mpc.envs import make_env
    from dream_mpc.registry import agents

    cfg = config.load(list(overrides))
    if cfg.multitask:
        raise UserError(f"the contract is checked on one task: pick one of {cfg.task}'s, e.g. task={cfg.tasks[0]}")
    env = make_env(cfg)
    torch.manual_seed(0)
    agent = agents.get(cfg.agent)(cfg)
    for point in (_acts, _state, _records, _learns, _files):
        try:
            problem, detail = point(agent, env, steps)
        except Broken as err:
            problem, detail = str(err), None
        except Exception as err:  # noqa: BLE001 - whatever breaks is the point's finding
            problem, detail = f"{type(err).__name__}: {first_line(err)}", None
        yield point.__name__[1:], problem, detail


class Broken(Exception):
    """A point of the contract that does not hold (what is wrong, in one line)."""


def _require(holds, what):
    if not holds:
        raise Broken(what)


def _act(agent, env, obs, t0, eval_mode):
    """One action, checked against the contract; returns it (or raises Broken naming what is wrong)."""
    action = agent.act(obs, t0=t0, eval_mode=eval_mode)
    shape = tuple(env.action_space.shape)
    _require(torch.is_tensor(action), f"act returned {type(action).__name__}, not a tensor")
    _require(action.device.type == "cpu", f"act returned an action on {action.device}, not on the CPU")
    _require(tuple(action.shape) == shape, f"act returned shape {tuple(action.shape)}, the env takes {shape}")
    _require(torch.isfinite(action).all(), f"act returned a non-finite action {action.tolist()}")
    _require(action.abs().max() <= 1, f"act returned {action.tolist()}, outside [-1, 1]")
    _require(agent.last_plan_info is not None, "act left last_plan_info None (set it to the planner's info)")
    return action


def _episode_start(agent, env, steps, eval_mode):
    obs = env.reset()
    for t in range(steps):
        obs = env.step(_act(agent, env, obs, t == 0, eval_mode))[0]
    return obs


def _acts(agent, env, steps):
    from dream_mpc.registry import planners

    chosen, acted, refused = agent.planner.name, [], []
    for name in planners.names():
        try:
            agent.set_planner(name)
        except UserError:  # needs what the world model lacks: refused with one line, as it should be
            refused.append(name)
            continue
        for eval_mode in (True, False):
            _episode_start(agent, env, steps, eval_mode)
        acted.append(name)
    agent.set_planner(chosen)
    return None, f"acted: {', '.join(acted)}" + (f"; refused: {', '.join(refused)}" if refused else "")


def _state(agent, env, steps):
    obs = _episode_start(agent, env, steps, eval_mode=False)
    state, rng = agent.acting_state(), torch.get_rng_state()
    first = [agent.act(obs), agent.act(obs)]
    agent.load_acting_state(None)  # as at an episode's start: what acting carried is gone
    agent.load_acting_state(state)
    torch.set_rng_state(rng)
    again = [agent.act(obs), agent.act(obs)]
    same = all(torch.equal(a, b) for a, b in zip(first, again))
    return None if same else "restoring acting_state() did not give the same actions", None


def _records(agent, env, steps):
    from dream_mpc.evaluation.exploitation import ExploitationRecorder

    recorder = ExploitationRecorder(agent)
    obs = env.reset()
    for t in range(steps):
        action = _act(agent, env, obs, t == 0, True)
        recorder.planned()
        obs, reward, *_ = env.step(action)
        recorder.realised(reward)
    record = recorder.summary()
    if record.get("available") is False:
        return f"no exploitation record: {record['reason']}", None
    return None, f"{record['steps']} steps scored"


def _learns(agent, env, steps):
    from dream_mpc.training.buffer import Buffer

    family, cfg = type(agent), agent.cfg
    rows = family.sequence_length(cfg)
    buffer = Buffer(cfg, rows, family.batch_size(cfg), getattr(env, "frame_stack", 1))
    for _ in range(2):
        buffer.add(_random_episode(agent, env))
    metrics = agent.update(buffer)
    bad = [k for k, v in metrics.items() if not (isinstance(v, float) and torch.isfinite(torch.tensor(v)))]
    if bad:
        return f"update() gave metrics that are not finite floats: {', '.join(bad)}", None
    return None, f"sequences of {rows} rows; update metrics: {', '.join(metrics)}"


def _random_episode(agent, env):
    """A whole episode of random actions, stored as the trainer stores it (row 0: the reset observation)."""
    from dream_mpc.training.buffer import episode_row

    extras = getattr(agent, "buffer_extras", None)
    rows, done = [episode_row(env.reset(), agent.cfg.action_dim, extras=extras)], False
    while not done:
        action = env.rand_act()
        obs, reward, done, info = env.step(action)
        rows.append(episode_row(obs, agent.cfg.action_dim, action, reward, info["terminated"], extras))
    return rows


def _files(agent, env, steps):
    from dream_mpc import checkpoint

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "agent.pt"
        checkpoint.save(path, agent, step=1)
        loaded = checkpoint.load_agent(path, device=str(agent.cfg.device))
    if type(loaded) is not type(agent):
        return f"load_agent built {type(loaded).__name__}, not {type(agent).__name__}", None
    obs, actions = env.reset(), []
    for acting in (agent, loaded):
        torch.manual_seed(1)
        actions.append(acting.act(obs, t0=True, eval_mode=True))
    return None if torch.equal(*actions) else "the loaded agent acts differently from the saved one", None


def main(argv):
    from dream_mpc import reproducible_products
    from dream_mpc.registry import load_plugins

    reproducible_products()
    load_plugins()
    results = []
    for point, problem, detail in check_family(argv):  # each line as its point is checked (seconds each)
        print(f"{point:8s} {'ok' if problem is None else 'FAILED'}  {problem or detail or ''}".rstrip(), flush=True)
        results.append((point, problem, detail))
    failed = [point for point, problem, _ in results if problem is not None]
    failures = f"; failed: {', '.join(failed)}" if failed else ""
    print(f"{len(results) - len(failed)} of {len(results)} points hold{failures}")
    return 1 if failed else 0


if __name__ == "__main__":
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    from dream_mpc.errors import run_cli

    run_cli(lambda argv: sys.exit(main(argv)), sys.argv[1:])
