"""HumanoidBench (carlosferrazza/humanoid-bench) locomotion tasks, run as TD-MPC2, BMPC and Dream-MPC run them.

Task names: `humanoid_<robot>-<task>-v0` (or without `-v0`), e.g. `humanoid_h1hand-run-v0`, for the robots h1hand
(61 actions) and h1 (19 actions) and the tasks in TASKS. Conventions:
- no action repeat: the agent steps at HumanoidBench's 50 Hz; episodes are at most 1,000 steps;
- falls end an episode: `done` is True and `info["terminated"]` is 1 (the TD target treats it as terminal only with
  episodic=true; with episodic=false the trainer just starts the next episode);
- success: HumanoidBench reports none; `info["success"]` is 1 once the episode's return so far reaches the task's
  success bar (HumanoidBench's `success_bar`), so the last step's value is the episode's success;
- normalized score: (return - random) / (target - random) with the random and target (= success bar) returns of
  Lee et al. 2025 (SimbaV2), per robot;
- obs=rgb: 3 stacked 64x64 frames of the task's camera, rendered by the env's own `mujoco_renderer`;
- seeding: the env's generator (reset noise) and a private stand-in for NumPy's global generator, which some tasks
  (reach's goal) draw from, are both seeded with cfg.seed and saved by get_rng_state;
- a simulator instability (MuJoCo warning, non-finite observation or reward) ends the episode with
  `info["instability"] = 1.0`; stepping on after the episode ended (a fall, the 1,000-step limit) returns done
  with `info["past_limit"] = 1.0`.

HumanoidBench is not on PyPI: clone it and `pip install --no-deps -e` the clone (INSTALL), or put a
checkout on sys.path (the Makefile writes a `.pth` file for the copy in ../shared/vendor). Its unmodified code is
made to run on MuJoCo 3.3 / gymnasium 1.x from outside: a stand-in `jax` while importing (only a weight converter
uses it) and dm_control's own `index` module in place of its bundled copy.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; before mujoco creates a context

import functools
import importlib.util
import re
import sys
import types
from collections import deque

import numpy as np
import torch
from gymnasium.spaces import Box

from dream_mpc.envs import Env, Suite, checked_action
from dream_mpc.errors import UserError, unknown
from dream_mpc.registry import suites

# not `pip install git+...`: a non-editable install leaves out its data and two subpackages; --no-deps: its pins clash
INSTALL = "git clone https://github.com/carlosferrazza/humanoid-bench.git && pip install --no-deps -e humanoid-bench"
ROBOTS = ("h1hand", "h1")
TASKS = ("balance_hard", "balance_simple", "hurdle", "maze", "reach", "run", "slide", "stair", "walk", "stand")
EPISODE_LENGTH = 1000
PIXEL_SIZE, NUM_FRAMES, RENDER_SIZE = 64, 3, 384
# random-policy returns (Lee et al. 2025, SimbaV2 HB_RANDOM_SCORE) and targets (HumanoidBench's success_bar)
RANDOM_SCORE = {
    "h1hand": {
        "balance_hard": 10.032,
        "balance_simple": 10.17,
        "hurdle": 2.371,
        "maze": 106.233,
        "reach": -50.024,
        "run": 1.927,
        "slide": 3.142,
        "stair": 3.161,
        "walk": 2.505,
        "stand": 11.973,
    },
    "h1": {
        "balance_hard": 9.044,
        "balance_simple": 9.391,
        "hurdle": 2.214,
        "maze": 106.441,
        "reach": 260.302,
        "run": 2.02,
        "slide": 3.191,
        "stair": 3.112,
        "walk": 2.377,
        "stand": 10.545,
    },
}
SUCCESS_BAR = {
    "balance_hard": 800,
    "balance_simple": 800,
    "hurdle": 700,
    "maze": 1200,
    "reach": 12000,
    "run": 700,
    "slide": 700,
    "stair": 700,
    "walk": 700,
    "stand": 800,
}
# observation dims, read from the built envs (tests check them): the robot's state plus the task's objects
OBS_DIMS = {
    "h1hand": {
        "balance_hard": 177,
        "balance_simple": 164,
        "hurdle": 151,
        "maze": 151,
        "reach": 157,
        "run": 151,
        "slide": 151,
        "stair": 151,
        "walk": 151,
        "stand": 151,
    },
    "h1": {
        "balance_hard": 77,
        "balance_simple": 64,
        "hurdle": 51,
        "maze": 51,
        "reach": 57,
        "run": 51,
        "slide": 51,
        "stair": 51,
        "walk": 51,
        "stand": 51,
    },
}
ACTION_DIMS = {"h1hand": 61, "h1": 19}
_NAME = re.compile(r"humanoid_(?P<robot>[a-z0-9]+)-(?P<task>[a-z_]+?)(?P<version>-v0)?")
_INSTABILITY_WARNINGS = ("mjWARN_BADQACC", "mjWARN_BADQPOS", "mjWARN_BADQVEL", "mjWARN_BADCTRL")


def task_names():
    """Every task name: `humanoid_<robot>-<task>-v0` and the same without `-v0`."""
    return tuple(f"humanoid_{robot}-{task}{version}" for robot in ROBOTS for task in TASKS for version in ("-v0", ""))


def parse(task):
    """'humanoid_h1hand-run-v0' or 'humanoid_h1hand-run' -> ('h1hand', 'run'); a UserError for other names."""
    match = _NAME.fullmatch(task)
    if match is None or match["robot"] not in ROBOTS or match["task"] not in TASKS:
        raise unknown("task", task, task_names())
    return match["robot"], match["task"]


def gym_id(task):
    robot, name = parse(task)
    return f"{robot}-{name}-v0"


def import_humanoid_bench():
    """Import HumanoidBench's (unmodified) package so that it runs here; a one-line UserError when it is missing."""
    if "humanoid_bench.env" in sys.modules and getattr(sys.modules["humanoid_bench.env"], "_dream_mpc_ready", False):
        return sys.modules["humanoid_bench"]
    if importlib.util.find_spec("humanoid_bench") is None:
        raise UserError(f"HumanoidBench is not installed; install it with: {INSTALL}")
    stubs = {}
    if importlib.util.find_spec("jax") is None:  # only its weight converter (mjx/flax_to_torch.py) uses jax
        jax, jnp = types.ModuleType("jax"), types.ModuleType("jax.numpy")
        jax.numpy = jnp
        stubs = {"jax": jax, "jax.numpy": jnp}
        sys.modules.update(stubs)
    try:
        import humanoid_bench
        import humanoid_bench.env as hb_env
    finally:
        for name, module in stubs.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    from dm_control.mujoco import index  # its bundled copy of dm_control's indexing predates MuJoCo 3.3's model

    hb_env.index = index
    hb_env._dream_mpc_ready = True
    return humanoid_bench


class HumanoidBench(Env):
    has_success = True

    def __init__(self, task, seed=1, obs="state", frames=NUM_FRAMES):
        self.robot, self.name = parse(task)
        if obs not in ("state", "rgb"):
            raise UserError(f"obs={obs} is not supported by HumanoidBench; use obs=state or obs=rgb")
        import_humanoid_bench()
        import gymnasium as gym
        import mujoco

        self._mujoco = mujoco
        self.task = task
        self.obs_type = obs
        self.frame_stack = frames if obs == "rgb" else 1  # frames per observation (stored once each)
        kwargs = (
            {"render_mode": "rgb_array", "width": PIXEL_SIZE, "height": PIXEL_SIZE}
            if obs == "rgb"
            else {"render_mode": None}
        )
        self._env = gym.make(gym_id(task), disable_env_checker=True, **kwargs).unwrapped  # our own time limit
        env = self._env
        self.success_bar = float(env.task.success_bar)
        self.max_episode_steps = EPISODE_LENGTH
        env.np_random = np.random.Generator(np.random.MT19937(seed))
        self._np_global = np.random.RandomState(seed).get_state()  # the stand-in for np.random while resetting
        self.action_space = Box(-1.0, 1.0, env.action_space.shape, dtype=np.float32)
        if obs == "rgb":
            self.observation_space = Box(0, 255, (3 * self.frame_stack, PIXEL_SIZE, PIXEL_SIZE), dtype=np.uint8)
        else:
            self.observation_space = Box(-np.inf, np.inf, env.observation_space.shape, dtype=np.float32)
        vis = env.model.vis
        vis.quality.shadowsize = 0
        vis.quality.offsamples = 0
        vis.global_.offwidth = max(vis.global_.offwidth, RENDER_SIZE)
        vis.global_.offheight = max(vis.global_.offheight, RENDER_SIZE)
        self._video_renderer = None
        self._warn_ids = [int(getattr(mujoco.mjtWarning, w)) for w in _INSTABILITY_WARNINGS]
        self._frames = deque(maxlen=self.frame_stack)
        self._t, self._return, self._last_obs, self._ended = 0, 0.0, None, False

    # ------------------------------------------------------------------ rendering
    def _pixels(self):
        # the env's renderer (HumanoidBench's own render() calls it with gymnasium 0.29's signature)
        return self._env.mujoco_renderer.render("rgb_array").transpose(2, 0, 1).copy()

    def render(self):
        """A 384x384 frame of the task's camera (for videos)."""
        if self._video_renderer is None:
            from gymnasium.envs.mujoco.mujoco_rendering import MujocoRenderer

            self._video_renderer = MujocoRenderer(
                self._env.model,
                self._env.data,
                width=RENDER_SIZE,
                height=RENDER_SIZE,
                camera_name=self._env.task.camera_name,
            )
        return self._video_renderer.render("rgb_array").copy()

    def _obs(self, state):
        if self.obs_type == "rgb":
            self._frames.append(self._pixels())
            return torch.from_numpy(np.concatenate(self._frames))
        return torch.from_numpy(np.asarray(state, dtype=np.float32))

    # ------------------------------------------------------------------ API
    def reset(self):
        self._ended = False
        self._t, self._return = 0, 0.0
        saved = np.random.get_state()
        np.random.set_state(self._np_global)  # reach's goal (and other tasks' objects) come from np.random
        try:
            state, _ = self._env.reset()
        finally:
            self._np_global = np.random.get_state()
            np.random.set_state(saved)
        self._last_obs = np.asarray(state, dtype=np.float32)
        if self.obs_type == "rgb":
            self._frames.clear()
            self._frames.extend([self._pixels()] * (self.frame_stack - 1))
        return self._obs(state)

    def _warnings(self):
        return sum(int(self._env.data.warning[i].number) for i in self._warn_ids)

    def step(self, action):
        action = checked_action(action, self.action_space, np.float32)
        info = {
            "success": float(self._return >= self.success_bar),
            "terminated": torch.tensor(0.0),
            "instability": 0.0,
            "past_limit": 0.0,
        }
        if self._ended or self._t >= self.max_episode_steps:  # stepped past the episode's end
            info["past_limit"] = 1.0
            return self._stale_obs(), torch.tensor(0.0), True, info
        before = self._warnings()
        try:
            state, reward, terminated, _, _ = self._env.step(np.clip(action, -1.0, 1.0))
            unstable = self._warnings() > before or not np.isfinite(state).all() or not np.isfinite(reward)
        except self._mujoco.FatalError:
            unstable = True
        self._t += 1
        if unstable:
            info["instability"] = 1.0
            self._ended = True
            return self._stale_obs(), torch.tensor(0.0), True, info
        self._last_obs = np.asarray(state, dtype=np.float32)
        self._return += float(reward)
        info["success"] = float(self._return >= self.success_bar)
        info["terminated"] = torch.tensor(float(terminated))
        done = bool(terminated) or self._t >= self.max_episode_steps
        self._ended = done
        return self._obs(state), torch.tensor(float(reward), dtype=torch.float32), done, info

    def _stale_obs(self):
        if self.obs_type == "rgb":
            return torch.from_numpy(np.concatenate(self._frames))
        return torch.from_numpy(self._last_obs.copy())

    def get_rng_state(self):
        return {"env": self._env.np_random.bit_generator.state, "numpy": self._np_global}

    def set_rng_state(self, state):
        """Accepts what get_rng_state returned, or a numpy RandomState state (one seed for every env alike)."""
        if isinstance(state, tuple):
            from dream_mpc.envs.metaworld import legacy_to_generator_state

            state = {"env": legacy_to_generator_state(state), "numpy": state}
        self._env.np_random.bit_generator.state = state["env"]
        self._np_global = state["numpy"]

    def close(self):
        if self._video_renderer is not None:
            self._video_renderer.close()
            self._video_renderer = None
        self._env.close()


class HumanoidBenchSuite(Suite):
    """HumanoidBench's h1hand and h1 locomotion tasks as `humanoid_<robot>-<task>-v0` (see the module docstring)."""

    name = "humanoid_bench"
    install = INSTALL

    def tasks(self):
        return task_names()

    def make(self, task, cfg):
        return HumanoidBench(task, seed=cfg.seed, obs=cfg.obs, frames=getattr(cfg, "frame_stack", NUM_FRAMES))

    @functools.lru_cache(maxsize=None)
    def dims(self, task):
        robot, name = parse(task)
        return (OBS_DIMS[robot][name],), ACTION_DIMS[robot], EPISODE_LENGTH

    def normalized_score(self, task, episode_return, success):
        """(return - random) / (target - random), unclipped (Lee et al. 2025)."""
        robot, name = parse(task)
        low, high = RANDOM_SCORE[robot][name], SUCCESS_BAR[name]
        return (episode_return - low) / (high - low)


suites.register("humanoid_bench", HumanoidBenchSuite())
