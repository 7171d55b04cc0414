"""Meta-World v3 (metaworld 3.1.1, MuJoCo bindings) with TD-MPC2's Meta-World conventions.

Task names are `mw-<name>` for the 50 tasks of Meta-World (`mw-button-press` -> `button-press-v3`). As TD-MPC2:
- the goal-observable env with a fresh goal/object position at every reset (not MT1's fixed set of 50 goals);
  the draws come from the env's own generator, seeded with cfg.seed, so runs are reproducible and resumable;
- reset returns the reset observation, then takes one zero-action step whose result is discarded;
- action repeat 2 (rewards summed, info of the second sub-step), 100 agent steps per episode (200 env steps);
- state observations (39 floats: hand, gripper, object poses, the same for the previous frame, goal);
- `info["success"]` is the success of the current step, so an episode's success is that of its last step, which is
  what TD-MPC2 reports; `info["success_any"]` is 1 once any step of the episode succeeded (Meta-World's own
  evaluation counts that);
- obs=rgb: 3 stacked 64x64 frames of the `corner2` camera, turned upright (the camera is mounted upside down).

Faults: a simulator instability (a MuJoCo warning about bad qacc/qpos/qvel/ctrl, a MuJoCo error, or a non-finite
observation) ends the episode with `info["instability"] = 1.0` (the observation is the last finite one, the step's
reward 0); stepping an episode past its limit (without reset) does not touch the simulator and returns done with
`info["past_limit"] = 1.0`. The trainer and the evaluator can count both.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; before mujoco creates a context

import functools
from collections import deque

import numpy as np
import torch
from gymnasium.spaces import Box

from dream_mpc.envs import Env, Suite, checked_action
from dream_mpc.errors import UserError, unknown
from dream_mpc.registry import suites

INSTALL = "pip install 'metaworld==3.1.1' 'gymnasium[mujoco]==1.4.0'"
NAMES = (
    "assembly basketball bin-picking box-close button-press-topdown button-press-topdown-wall button-press "
    "button-press-wall coffee-button coffee-pull coffee-push dial-turn disassemble door-close door-lock door-open "
    "door-unlock hand-insert drawer-close drawer-open faucet-open faucet-close hammer handle-press-side "
    "handle-press handle-pull-side handle-pull lever-pull pick-place-wall pick-out-of-hole pick-place plate-slide "
    "plate-slide-side plate-slide-back plate-slide-back-side peg-insert-side peg-unplug-side soccer stick-push "
    "stick-pull push push-wall push-back reach reach-wall shelf-place sweep-into sweep window-open "
    "window-close"
).split()
TASKS = tuple(sorted("mw-" + n for n in NAMES))
ACTION_REPEAT = 2
EPISODE_LENGTH = 100  # agent steps (200 env steps of Meta-World's 500)
OBS_DIM, ACTION_DIM = 39, 4
CAMERA = "corner2"
RENDER_SIZE = 384
PIXEL_SIZE, NUM_FRAMES = 64, 3


def _metaworld_envs():
    try:
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
    except ImportError as err:
        raise UserError(f"Meta-World is not installed ({err}); install it with: {INSTALL}") from None
    return ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE


def _instability_warnings():
    import mujoco

    w = mujoco.mjtWarning
    return [int(w.mjWARN_BADQACC), int(w.mjWARN_BADQPOS), int(w.mjWARN_BADQVEL), int(w.mjWARN_BADCTRL)]


def legacy_to_generator_state(state):
    """numpy's legacy RandomState state tuple ('MT19937', key, pos, ...) as an MT19937 bit generator state."""
    return {"bit_generator": "MT19937", "state": {"key": np.asarray(state[1], dtype=np.uint32), "pos": int(state[2])}}


class MetaWorld(Env):
    has_success = True

    def __init__(self, task, seed=1, obs="state", frames=NUM_FRAMES):
        if task not in TASKS:
            raise unknown("task", task, TASKS)
        if obs not in ("state", "rgb"):
            raise UserError(f"obs={obs} is not supported by Meta-World; use obs=state or obs=rgb")
        import mujoco

        self._mujoco = mujoco
        envs = _metaworld_envs()
        self.task = task
        self._env = envs[f"{task[3:]}-v3-goal-observable"](seed=seed)
        env = self._env
        # a new goal at every reset, drawn from the env's generator; MT19937 so a legacy RandomState state fits
        env.np_random = np.random.Generator(np.random.MT19937(seed))
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        self.obs_type = obs
        self.frame_stack = frames if obs == "rgb" else 1  # frames per observation (stored once each)
        self.max_episode_steps = EPISODE_LENGTH
        self.action_space = Box(-1.0, 1.0, (ACTION_DIM,), dtype=np.float32)
        if obs == "rgb":
            self.observation_space = Box(0, 255, (3 * self.frame_stack, PIXEL_SIZE, PIXEL_SIZE), dtype=np.uint8)
        else:
            self.observation_space = Box(-np.inf, np.inf, (OBS_DIM,), dtype=np.float32)
        vis = env.model.vis  # fast offscreen rendering (simulators.md)
        vis.quality.shadowsize = 0
        vis.quality.offsamples = 0
        vis.global_.offwidth = max(vis.global_.offwidth, RENDER_SIZE)
        vis.global_.offheight = max(vis.global_.offheight, RENDER_SIZE)
        self._renderers = {}
        self._warn_ids = _instability_warnings()
        self._frames = deque(maxlen=self.frame_stack)
        self._t, self._success_any, self._last_obs, self._ended = 0, 0.0, None, False

    # ------------------------------------------------------------------ rendering
    def _render(self, size):
        if size not in self._renderers:
            self._renderers[size] = self._mujoco.Renderer(self._env.model, size, size)
        renderer = self._renderers[size]
        renderer.update_scene(self._env.data, camera=CAMERA)
        return np.ascontiguousarray(renderer.render()[::-1, ::-1])  # corner2 is mounted rolled by 180 degrees

    def render(self):
        return self._render(RENDER_SIZE)

    def _obs(self, state):
        if self.obs_type == "rgb":
            self._frames.append(self._render(PIXEL_SIZE).transpose(2, 0, 1))
            return torch.from_numpy(np.concatenate(self._frames))
        return torch.from_numpy(np.asarray(state, dtype=np.float32))

    # ------------------------------------------------------------------ API
    def reset(self):
        self._ended = False
        self._t, self._success_any = 0, 0.0
        state, _ = self._env.reset()
        self._last_obs = np.asarray(state, dtype=np.float32)
        if self.obs_type == "rgb":
            self._frames.clear()
            self._frames.extend([self._render(PIXEL_SIZE).transpose(2, 0, 1)] * (self.frame_stack - 1))
        obs = self._obs(state)
        self._env.step(np.zeros(ACTION_DIM, dtype=np.float32))  # TD-MPC2: one discarded zero-action step
        return obs

    def _warnings(self):
        return sum(int(self._env.data.warning[i].number) for i in self._warn_ids)

    def step(self, action):
        action = checked_action(action, self.action_space, np.float32)
        info = {
            "success": 0.0,
            "success_any": self._success_any,
            "terminated": torch.tensor(0.0),
            "instability": 0.0,
            "past_limit": 0.0,
        }
        if self._ended or self._t >= self.max_episode_steps:  # past the episode's end: leave the simulator alone
            info["past_limit"] = 1.0
            return self._stale_obs(), torch.tensor(0.0), True, info
        action = np.clip(action, -1.0, 1.0)
        reward, warnings_before, raw = 0.0, self._warnings(), {}
        try:
            for _ in range(ACTION_REPEAT):
                state, r, _, truncated, raw = self._env.step(action)
                reward += float(r)
                if truncated:  # Meta-World's own path limit (only with a longer episode than TD-MPC2's)
                    info["past_limit"] = 1.0
                    break
            unstable = self._warnings() > warnings_before or not np.isfinite(state).all() or not np.isfinite(reward)
        except (ValueError, self._mujoco.FatalError) as err:
            if "reset the env" in str(err):
                info["past_limit"] = 1.0
            unstable = "reset the env" not in str(err)
            state = None
        self._t += 1
        if unstable or state is None:
            info["instability"] = float(unstable)
            self._ended = True
            return self._stale_obs(), torch.tensor(0.0), True, info
        self._last_obs = np.asarray(state, dtype=np.float32)
        success = float(raw.get("success", 0.0))
        self._success_any = max(self._success_any, success)
        info.update(success=success, success_any=self._success_any)
        done = self._t >= self.max_episode_steps or bool(info["past_limit"])
        self._ended = done
        return self._obs(state), torch.tensor(reward, dtype=torch.float32), done, info

    def _stale_obs(self):
        """The last finite observation (for an episode that ends on a fault)."""
        if self.obs_type == "rgb":
            return torch.from_numpy(np.concatenate(self._frames))
        return torch.from_numpy(self._last_obs.copy())

    def get_rng_state(self):
        """The state of the generator that draws every episode's goal and object positions."""
        return self._env.np_random.bit_generator.state

    def set_rng_state(self, state):
        """Accepts what get_rng_state returned, or a numpy RandomState state (one seed for every env alike)."""
        if isinstance(state, tuple):
            state = legacy_to_generator_state(state)
        self._env.np_random.bit_generator.state = state

    def close(self):
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers = {}


class MetaWorldSuite(Suite):
    """The 50 Meta-World v3 tasks as `mw-<name>`, with TD-MPC2's conventions (see the module docstring)."""

    name = "metaworld"
    install = INSTALL

    def tasks(self):
        return TASKS

    def make(self, task, cfg):
        return MetaWorld(task, seed=cfg.seed, obs=cfg.obs, frames=getattr(cfg, "frame_stack", NUM_FRAMES))

    @functools.lru_cache(maxsize=None)
    def dims(self, task):
        if task not in TASKS:
            raise unknown("task", task, TASKS)
        return (OBS_DIM,), ACTION_DIM, EPISODE_LENGTH

    def normalized_score(self, task, episode_return, success):
        """Success (0 or 1): TD-MPC2's multi-task score counts Meta-World tasks as success x 100."""
        return float(success)


suites.register("metaworld", MetaWorldSuite())
