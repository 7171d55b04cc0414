"""Environment suites. One module a suite; each registers a `Suite` instance with `dream_mpc.registry.suites`.

Every env has the 4-tuple API of TD-MPC2's wrappers: `reset() -> obs`, `step(action) -> (obs, reward, done, info)`
with torch tensors, `info["success"]` (float) and `info["terminated"]` (tensor), plus `rand_act()`, `render()`,
`max_episode_steps`, `observation_space`, `action_space`, `has_success`, and `get_rng_state()` /
`set_rng_state()` for resuming. The trainer and the evaluator see nothing else.

Optional info keys some suites add (docs/suites.md): `success_any` (Meta-World: success at any step of the episode;
`success` is the current step's, so the last step's value is the episode's), `instability` (1.0: a simulator
fault ended the episode) and `past_limit` (1.0: stepped after the episode ended; the simulator was not touched).
A termination (`info["terminated"]`, e.g. a HumanoidBench fall) ends the episode; only episodic=true makes it
terminal for the TD target.
"""

import torch

from dream_mpc.errors import UserError, unknown
from dream_mpc.registry import suites


class Suite:
    """A benchmark suite: its task names, how to build one task's env, and its scoring conventions."""

    name = ""
    install = None  # the command that installs the suite's package, shown when it is missing

    def tasks(self):
        """Every task name of the suite (names are unique across suites)."""
        raise NotImplementedError

    def make(self, task, cfg):
        """The env of `task` for the config (cfg.obs, cfg.seed ...)."""
        raise NotImplementedError

    def dims(self, task):
        """(observation shape, action dim, episode length) without stepping the env; None if unknown here."""
        return None

    def normalized_score(self, task, episode_return, success):
        """The suite's score in [0, 1] (roughly) for aggregate statistics: DMControl return / 1000 by default."""
        return episode_return / 1000.0


class Env:
    """What every suite's env shares: a uniform random action in [-1, 1] from torch's global generator (seeded, and
    saved with checkpoints), used for the seed steps."""

    def rand_act(self):
        return torch.rand(self.action_space.shape) * 2 - 1


def _all():
    return {task: suite for _, suite in suites.items() for task in suite.tasks()}


def all_tasks():
    """Every single task of every registered suite, then the multi-task sets."""
    from dream_mpc.envs.task_sets import TASK_SETS

    return sorted(_all()) + sorted(TASK_SETS)


def task_set(name):
    """The task list of a multi-task set (mt30, mt80), in the order of the official task ids; None otherwise."""
    from dream_mpc.envs.task_sets import TASK_SETS

    return list(TASK_SETS[name]) if name in TASK_SETS else None


def is_task(name):
    return name in _all() or task_set(name) is not None


def suite_of(task):
    """The suite that owns `task`, or a UserError listing the closest task names of every suite."""
    owners = _all()
    if task not in owners:
        err = unknown("task", task, all_tasks())
        raise UserError(f"{err} (suites: {', '.join(suites.names())})")
    return owners[task]


def task_dims(task):
    """(observation shape, action dim, episode length) of a single task, or None when it cannot be told cheaply."""
    return suite_of(task).dims(task)


def make_env(cfg):
    """The env for cfg.task (a multi-task set: one env over its tasks, dims from the tables, envs built on first use:
    envs/multitask.py); fills in cfg's env-dependent keys (obs_shape, action_dim, episode_length ...)."""
    from dream_mpc.envs import task_sets
    from dream_mpc.envs.multitask import MultitaskEnv

    names = task_set(cfg.task)
    if names is None:
        env = suite_of(cfg.task).make(cfg.task, cfg)
        set_env_dims(cfg, env.observation_space.shape, env.action_space.shape[0], env.max_episode_steps)
    else:
        actions, lengths = task_sets.action_dims(cfg.task), task_sets.episode_lengths(cfg.task)
        env = MultitaskEnv(names, cfg, task_sets.obs_dims(cfg.task), actions, lengths)
        set_env_dims(cfg, env.observation_space.shape, max(actions), max(lengths), actions, lengths)
    return env


def set_env_dims(cfg, obs_shape, action_dim, episode_length, action_dims=None, episode_lengths=None):
    """Fill in what comes from the environment (or a checkpoint) and the heuristics that depend on it."""
    cfg.obs_shape = {cfg.obs: tuple(obs_shape)}
    cfg.action_dim = int(action_dim)
    cfg.episode_length = int(episode_length)
    if cfg.get("seed_steps") is None or cfg.get("_seed_steps_heuristic"):
        cfg.seed_steps = max(1000, 5 * cfg.episode_length)
        cfg._seed_steps_heuristic = True
    if cfg.multitask:
        cfg.action_dims = list(action_dims)
        cfg.episode_lengths = list(episode_lengths)
    return cfg


def checked_action(action, space, dtype):
    """The action as a numpy array of the env's shape, or a ValueError: a wrong shape or a non-finite value never
    reaches a simulator (the agent replaces non-finite actions before; this is the last check)."""
    import numpy as np

    action = np.asarray(action, dtype=dtype)
    if action.shape != space.shape:
        raise ValueError(f"action must have shape {space.shape}, got {action.shape}")
    if not np.isfinite(action).all():
        raise ValueError(f"non-finite action {action.tolist()}: the simulator only takes finite actions")
    return action
