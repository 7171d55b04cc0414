"""Gymnasium's classic-control Pendulum-v1 as the task `gym-pendulum` (the paper's gradient analysis, appendix D.2).

Conventions: state observations (cos theta, sin theta, theta_dot) as float32, actions in [-1, 1] scaled to
gymnasium's torque range [-2, 2], 200 simulator steps an episode (gymnasium's TimeLimit), never terminates.
Rewards are gymnasium's own, -(angle^2 + 0.1 theta_dot^2 + 0.001 torque^2) per simulator step, so a return lies in
[-16.27 x 200, 0]; `normalized_score` maps the random policy's mean return to 0 and RETURN_TARGET to 1.

Action repeat: one agent step is `action_repeat` simulator steps with the same torque, their rewards summed and the
last observation returned; an episode is 200 / action_repeat agent steps (200 simulator steps whatever the repeat,
so returns stay comparable). The suite uses no repeat (1, gymnasium's own step) unless the run's agent family
declares one (`Agent.action_repeat`, in `cfg.action_repeat`): the Dream-MPC paper runs its Dreamer agents with
table 16's action repeat 2 (appendix D), and its gradient analysis (D.2) with "the default hyperparameters of table
16".
Initial states come from gymnasium's reset (theta ~ U[-pi, pi], theta_dot ~ U[-1, 1]) drawn by the env's own
generator, seeded with cfg.seed and saved by get_rng_state. Pixels are not offered (gymnasium draws this env with
pygame, which we do not depend on): obs=rgb is a one-line error.
"""

import numpy as np
import torch
from gymnasium.spaces import Box

from dream_mpc.envs import Env, Suite, checked_action
from dream_mpc.errors import UserError
from dream_mpc.registry import suites

TASK = "gym-pendulum"
EPISODE_LENGTH = 200  # gymnasium's max_episode_steps for Pendulum-v1 (simulator steps)
MAX_TORQUE = 2.0
# mean return of uniform random actions over 1,000 episodes (seed 0, measured with this wrapper), and the return
# we call solved: -150 is what converged SAC/TD3 agents reach on Pendulum-v1 from its random starts
RETURN_RANDOM = -1229.9
RETURN_TARGET = -150.0


def _generator_state(state):
    """A generator state dict from what set_rng_state may receive: our own dict, or a legacy RandomState tuple
    (one seed for every env alike)."""
    if isinstance(state, tuple):
        return {
            "bit_generator": "MT19937",
            "state": {"key": np.asarray(state[1], dtype=np.uint32), "pos": int(state[2])},
        }
    return state


class Pendulum(Env):
    has_success = False

    def __init__(self, seed=1, obs="state", action_repeat=1):
        if obs != "state":
            raise UserError(f"obs={obs} is not supported by {TASK}: it has state observations only; use obs=state")
        if action_repeat < 1 or EPISODE_LENGTH % action_repeat:
            raise UserError(f"action_repeat={action_repeat}: it must divide the {EPISODE_LENGTH}-step episode")
        from gymnasium.envs.classic_control.pendulum import PendulumEnv

        self._env = PendulumEnv()  # unwrapped: our own time limit, no env checker
        self._env.np_random = np.random.Generator(np.random.MT19937(seed))
        self.obs_type, self.action_repeat = obs, action_repeat
        self.max_episode_steps = EPISODE_LENGTH // action_repeat
        self.action_space = Box(-1.0, 1.0, (1,), dtype=np.float32)
        self.observation_space = Box(-np.inf, np.inf, (3,), dtype=np.float32)
        self._t = 0

    def reset(self):
        self._t = 0
        obs, _ = self._env.reset()  # no seed: draws from the generator set above
        return torch.from_numpy(np.asarray(obs, dtype=np.float32))

    def step(self, action):
        action = checked_action(action, self.action_space, np.float32)
        torque = np.clip(action, -1.0, 1.0) * MAX_TORQUE
        reward = 0.0
        for _ in range(self.action_repeat):
            obs, r, _, _, _ = self._env.step(torque)
            reward += float(r)
        self._t += 1
        done = self._t >= self.max_episode_steps
        info = {"success": 0.0, "terminated": torch.tensor(0.0)}
        return torch.from_numpy(np.asarray(obs, dtype=np.float32)), torch.tensor(float(reward)), done, info

    @property
    def state(self):
        """The simulator's true state (theta, theta_dot), float64."""
        return np.array(self._env.state, dtype=np.float64)

    def render(self):
        try:
            import pygame  # noqa: F401
        except ImportError:
            raise UserError(f"{TASK} renders through pygame, which is not installed: pip install pygame") from None
        self._env.render_mode = "rgb_array"
        return self._env.render()

    def get_rng_state(self):
        """The state of the generator that draws every episode's initial state."""
        return self._env.np_random.bit_generator.state

    def set_rng_state(self, state):
        self._env.np_random.bit_generator.state = _generator_state(state)


class PendulumSuite(Suite):
    name = "pendulum"

    def tasks(self):
        return (TASK,)

    @staticmethod
    def action_repeat(cfg):
        """The action repeat of a run: its agent family's (`cfg.action_repeat`), else 1."""
        return getattr(cfg, "action_repeat", None) or 1

    def make(self, task, cfg):
        return Pendulum(seed=cfg.seed, obs=cfg.obs, action_repeat=self.action_repeat(cfg))

    def dims(self, task):
        """Without a config: the episode length without action repeat (a Dreamer run's env says 100)."""
        return (3,), 1, EPISODE_LENGTH

    def normalized_score(self, task, episode_return, success):
        """0 for the random policy's mean return, 1 at RETURN_TARGET (unclipped, as HumanoidBench's)."""
        return (episode_return - RETURN_RANDOM) / (RETURN_TARGET - RETURN_RANDOM)


suites.register("pendulum", PendulumSuite())
