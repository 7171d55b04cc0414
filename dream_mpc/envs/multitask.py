"""Multi-task environments, as TD-MPC2's multi-task models see them.

`MultitaskEnv(tasks, cfg)` holds one env per task (built on first use) and presents them as one env:
observations zero-padded to the largest observation dim, actions of the largest action dim of which each task
takes its first `action_dims[i]` (the model masks the rest), and the active task's episode length. Pick the task
with `set_task(i)` (or `reset(task=i)`); the index is the task id of the official models and datasets.
"""

import types

import numpy as np
import torch
from gymnasium.spaces import Box

from dream_mpc.envs import suite_of
from dream_mpc.errors import UserError


def _single_task_cfg(cfg):
    """What a suite's make() reads (obs type and seed)."""
    return types.SimpleNamespace(obs=getattr(cfg, "obs", "state"), seed=getattr(cfg, "seed", 1))


class MultitaskEnv:
    def __init__(self, tasks, cfg, obs_dims=None, action_dims=None, episode_lengths=None):
        self.tasks = list(tasks)
        self._cfg = _single_task_cfg(cfg)
        if self._cfg.obs != "state":
            raise UserError("multi-task environments are state-based (as TD-MPC2's); use obs=state")
        self._envs = [None] * len(self.tasks)
        if obs_dims is None or action_dims is None or episode_lengths is None:
            dims = [suite_of(t).dims(t) or self._env(i).observation_space.shape for i, t in enumerate(self.tasks)]
            dims = [
                d if len(d) == 3 else (d, self._env(i).action_space.shape[0], self._env(i).max_episode_steps)
                for i, d in enumerate(dims)
            ]
            obs_dims = [int(d[0][0]) for d in dims]
            action_dims = [int(d[1]) for d in dims]
            episode_lengths = [int(d[2]) for d in dims]
        self._obs_dims, self._action_dims = list(obs_dims), list(action_dims)
        self._episode_lengths = list(episode_lengths)
        self.observation_space = Box(-np.inf, np.inf, (max(self._obs_dims),), dtype=np.float32)
        self.action_space = Box(-1.0, 1.0, (max(self._action_dims),), dtype=np.float32)
        self._task = 0

    def _env(self, i):
        if self._envs[i] is None:
            task = self.tasks[i]
            self._envs[i] = suite_of(task).make(task, self._cfg)
        return self._envs[i]

    @property
    def task(self):
        return self._task

    @property
    def env(self):
        return self._env(self._task)

    @property
    def max_episode_steps(self):
        return self._episode_lengths[self._task]

    @property
    def has_success(self):
        return self.env.has_success

    def set_task(self, task):
        if not 0 <= task < len(self.tasks):
            raise UserError(f"task index {task} is out of range: there are {len(self.tasks)} tasks")
        self._task = int(task)

    def _pad(self, obs):
        padded = torch.zeros(self.observation_space.shape, dtype=torch.float32)
        padded[: obs.shape[0]] = obs
        return padded

    def reset(self, task=None):
        if task is not None:
            self.set_task(task)
        return self._pad(self.env.reset())

    def step(self, action):
        action = torch.as_tensor(action)[: self._action_dims[self._task]]
        obs, reward, done, info = self.env.step(action)
        return self._pad(obs), reward, done, info

    def rand_act(self):
        action = torch.zeros(self.action_space.shape)
        action[: self._action_dims[self._task]] = self.env.rand_act()
        return action

    def render(self):
        return self.env.render()

    def get_rng_state(self):
        return [None if env is None else env.get_rng_state() for env in self._envs]

    def set_rng_state(self, state):
        if isinstance(state, tuple):  # one numpy state for every task
            state = [state] * len(self.tasks)
        for i, s in enumerate(state):
            if s is not None:
                self._env(i).set_rng_state(s)


def set_score(normalized):
    """TD-MPC2's multi-task score: 100 x the mean over tasks of each task's mean normalized score (DMControl return
    / 10, Meta-World success x 100). `normalized`: {task: [the suite's normalized score of each episode]}."""
    return 100 * float(np.mean([np.mean(scores) for scores in normalized.values()]))
