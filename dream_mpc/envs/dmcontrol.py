"""DeepMind Control Suite tasks wrapped as TD-MPC2 wraps them: actions in [-1, 1], action repeat 2, 500-step
episodes, flat float32 state observations (or 3 stacked 64x64 frames), and the old 4-tuple step API."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must be set before dm_control loads mujoco

import functools
from collections import deque

import numpy as np
import torch
from dm_control import suite
from gymnasium.spaces import Box

from dream_mpc.envs import Env, Suite, checked_action
from dream_mpc.registry import suites

TASKS = (
    "acrobot-swingup",
    "cartpole-balance",
    "cartpole-balance-sparse",
    "cartpole-swingup",
    "cartpole-swingup-sparse",
    "cheetah-run",
    "cup-catch",
    "dog-run",
    "dog-stand",
    "dog-trot",
    "dog-walk",
    "finger-spin",
    "finger-turn-easy",
    "finger-turn-hard",
    "fish-swim",
    "hopper-hop",
    "hopper-stand",
    "humanoid-run",
    "humanoid-stand",
    "humanoid-walk",
    "pendulum-swingup",
    "quadruped-run",
    "quadruped-walk",
    "reacher-easy",
    "reacher-hard",
    "walker-run",
    "walker-stand",
    "walker-walk",
)
DOMAIN_ALIASES = {"cup": "ball_in_cup", "pointmass": "point_mass"}
ACTION_REPEAT = 2
EPISODE_LENGTH = 500  # agent steps, i.e. the suite's 1000 control steps
RENDER_SIZE = 384
PIXEL_SIZE, NUM_FRAMES = 64, 3


def suite_names(task):
    """'cup-catch' -> ('ball_in_cup', 'catch'); 'cartpole-swingup-sparse' -> ('cartpole', 'swingup_sparse')."""
    domain, name = task.split("-", 1)
    return DOMAIN_ALIASES.get(domain, domain), name.replace("-", "_")


class DMControl(Env):
    has_success = False  # DMC tasks report no success; info["success"] stays 0

    def __init__(self, task, seed=1, obs="state", frames=NUM_FRAMES):
        domain, name = suite_names(task)
        self._env = suite.load(domain, name, task_kwargs={"random": seed}, visualize_reward=False)
        self.obs_type = obs
        self.frame_stack = frames if obs == "rgb" else 1  # frames per observation (stored once each)
        self.camera_id = 2 if domain == "quadruped" else 0
        self.max_episode_steps = EPISODE_LENGTH
        spec = self._env.action_spec()
        self._low, self._high = spec.minimum.astype(np.float64), spec.maximum.astype(np.float64)
        self.action_space = Box(-1.0, 1.0, spec.shape, dtype=np.float32)
        if obs == "rgb":
            obs_shape = (3 * self.frame_stack, PIXEL_SIZE, PIXEL_SIZE)
            self.observation_space = Box(0, 255, obs_shape, dtype=np.uint8)
        else:
            obs_dim = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
            self.observation_space = Box(-np.inf, np.inf, (obs_dim,), dtype=np.float32)
        # fast offscreen rendering (simulators.md): no shadows, no multisampling, a buffer just big enough
        vis = self._env.physics.model.vis
        vis.quality.shadowsize = 0
        vis.quality.offsamples = 0
        vis.global_.offwidth = vis.global_.offheight = RENDER_SIZE
        self._frames = deque(maxlen=self.frame_stack)
        self._t = 0

    def _obs(self, time_step):
        if self.obs_type == "rgb":
            self._frames.append(self._render(PIXEL_SIZE).transpose(2, 0, 1))
            return torch.from_numpy(np.concatenate(self._frames))
        flat = [np.asarray(v, dtype=np.float32).reshape(-1) for v in time_step.observation.values()]
        return torch.from_numpy(np.concatenate(flat))

    def _render(self, size):
        return self._env.physics.render(size, size, camera_id=self.camera_id)

    def reset(self):
        self._t = 0
        time_step = self._env.reset()
        if self.obs_type == "rgb":
            self._frames.extend([self._render(PIXEL_SIZE).transpose(2, 0, 1)] * (self.frame_stack - 1))
        return self._obs(time_step)

    def step(self, action):
        action = checked_action(action, self.action_space, np.float64)
        scaled = self._low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (self._high - self._low)
        reward = 0.0
        for _ in range(ACTION_REPEAT):
            time_step = self._env.step(scaled)
            reward += time_step.reward or 0.0
        self._t += 1
        done = self._t >= self.max_episode_steps  # time limit only: DMC tasks never terminate
        info = {"success": 0.0, "terminated": torch.tensor(0.0)}
        return self._obs(time_step), torch.tensor(reward, dtype=torch.float32), done, info

    def render(self):
        return self._render(RENDER_SIZE)

    def get_rng_state(self):
        """The task's random state, which draws the initial state of every episode."""
        return self._env.task.random.get_state()

    def set_rng_state(self, state):
        self._env.task.random.set_state(state)


class DMControlSuite(Suite):
    """The 28 standard DMControl tasks TD-MPC2 reports, by TD-MPC2's names ('cup-catch', 'dog-run' ...)."""

    name = "dmcontrol"

    def tasks(self):
        return TASKS

    def make(self, task, cfg):
        return DMControl(task, seed=cfg.seed, obs=cfg.obs, frames=getattr(cfg, "frame_stack", NUM_FRAMES))

    @functools.lru_cache(maxsize=None)
    def dims(self, task):
        """Read from dm_control's specs without stepping the task."""
        env = suite.load(*suite_names(task))
        try:
            obs_dim = sum(int(np.prod(s.shape)) for s in env.observation_spec().values())
            return (obs_dim,), int(env.action_spec().shape[0]), EPISODE_LENGTH
        finally:
            env.close()


suites.register("dmcontrol", DMControlSuite())
