"""TD-MPC2's 11 custom DMControl tasks (the 11 of mt30), written from their description on dm_control's domains.

Each task is added to its dm_control domain's task container (tag 'custom'), so `suite.load('cheetah',
'run_backwards')` builds it and the DMControl wrapper (action repeat 2, 500 agent steps, pixels) runs it unchanged.
Every task gives 1,000 control steps per episode. Rewards (`tolerance` is dm_control's `rewards.tolerance`):

| task | reward per control step |
|---|---|
| walker-walk-backwards, walker-run-backwards | walker's stand term x (5 move + 1) / 6, move = tolerance(v, (-inf, -s], margin s/2, linear, 0.5), s = 1 or 8 |
| cheetah-run-backwards | tolerance(speed, (-inf, -8], margin 8, linear, 0) |
| cheetah-run-front / -run-back | up = (3 foot_up + 2 torso_up) / 5 with the back / front foot lifted (z >= 1.2, margin 0.6), x (5 tolerance(speed, [6, inf), margin 6, linear, 0) + 1) / 6 |
| cheetah-jump | mean over both feet of (5 tolerance((torso z + foot z) / 2, [1.2, inf), margin 0.6) + tolerance(speed, [-0.5, 0.5], margin 0.5, linear, 0)) / 6 |
| hopper-hop-backwards | [0.6 <= height <= 2] x tolerance(speed, (-inf, -1], margin 0.5, linear, 0.5) |
| reacher-three-easy / -hard | 1 when the finger is within target radius (0.05 / 0.015) + finger radius 0.01 of the target, on a 3-link arm |
| cup-spin | (1 - in_target) x (tolerance(dist, [0.5, inf), margin 0.25, linear, 0.5) + 2 tolerance(ball speed, [6, inf), margin 3, linear, 0.5)) / 3 |
| pendulum-spin | tolerance(abs(angular velocity), [9, inf), margin 4.5, linear, 0.5) |

Model changes: the walker's floor is twice as long (half-length 500) and the cheetah's ground too (200), so that
running backwards stays on the floor; the 3-link reacher (links 0.09 apart, shoulder0 unlimited, shoulder1 and wrist
limited to +-80 degrees, 3 motors) observes position (3), to_target (2), velocity (3). cup-spin starts with the ball
in the cup (except in 10% of the episodes) and pendulum-spin at a uniform angle.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; before dm_control loads mujoco

import functools

import numpy as np
from dm_control.rl import control
from dm_control.suite import ball_in_cup, cheetah, hopper, pendulum, reacher, walker
from dm_control.utils import rewards

from dream_mpc.envs.dmcontrol import DMControlSuite
from dream_mpc.envs.task_sets import CUSTOM_DMC
from dream_mpc.registry import suites

TASKS = CUSTOM_DMC  # in the order of the official multi-task ids
INF = float("inf")


def _replace_once(text, old, new):
    if text.count(old) != 1:
        raise RuntimeError(f"dm_control's model changed: expected one {old!r}")
    return text.replace(old, new)


# ---------------------------------------------------------------------------------------------- walker
class WalkerBackwards(walker.PlanarWalker):
    """The walker's reward with the velocity target mirrored: full reward at v <= -move_speed."""

    def get_reward(self, physics):
        standing = rewards.tolerance(
            physics.torso_height(), bounds=(walker._STAND_HEIGHT, INF), margin=walker._STAND_HEIGHT / 2
        )
        upright = (1 + physics.torso_upright()) / 2
        stand = (3 * standing + upright) / 4
        move = rewards.tolerance(
            physics.horizontal_velocity(),
            bounds=(-INF, -self._move_speed),
            margin=self._move_speed / 2,
            value_at_margin=0.5,
            sigmoid="linear",
        )
        return stand * (5 * move + 1) / 6


def _walker_model():
    xml, assets = walker.get_model_and_assets()
    return _replace_once(
        xml.decode() if isinstance(xml, bytes) else xml, 'size="250 .8 .2"', 'size="500 .8 .2"'
    ), assets


def _walker(speed, time_limit=walker._DEFAULT_TIME_LIMIT, random=None, environment_kwargs=None):
    physics = walker.Physics.from_xml_string(*_walker_model())
    return control.Environment(
        physics,
        WalkerBackwards(move_speed=speed, random=random),
        time_limit=time_limit,
        control_timestep=walker._CONTROL_TIMESTEP,
        **(environment_kwargs or {}),
    )


# ---------------------------------------------------------------------------------------------- cheetah
class CheetahCustom(cheetah.Cheetah):
    """The cheetah with one of the custom rewards: run_backwards, run_front, run_back, jump."""

    def __init__(self, goal, random=None):
        self._goal = goal
        super().__init__(random=random)

    def get_reward(self, physics):
        speed = physics.speed()
        z = physics.named.data.xpos[["torso", "bfoot", "ffoot"], "z"]
        torso_z, foot_z = z[0], {"bfoot": z[1], "ffoot": z[2]}
        if self._goal == "run_backwards":
            return rewards.tolerance(
                speed,
                bounds=(-INF, -0.8 * cheetah._RUN_SPEED),
                margin=0.8 * cheetah._RUN_SPEED,
                value_at_margin=0,
                sigmoid="linear",
            )
        if self._goal in ("run_front", "run_back"):
            lifted = "bfoot" if self._goal == "run_front" else "ffoot"
            torso_up = rewards.tolerance(torso_z, bounds=(1.2, INF), margin=0.6)
            foot_up = rewards.tolerance(foot_z[lifted], bounds=(1.2, INF), margin=0.6)
            up = (3 * foot_up + 2 * torso_up) / 5
            move_speed = 0.6 * cheetah._RUN_SPEED
            run = rewards.tolerance(
                speed, bounds=(move_speed, INF), margin=move_speed, value_at_margin=0, sigmoid="linear"
            )
            return up * (5 * run + 1) / 6
        still = rewards.tolerance(speed, bounds=(-0.5, 0.5), margin=0.5, value_at_margin=0, sigmoid="linear")
        stands = [
            (5 * rewards.tolerance((torso_z + foot_z[f]) / 2, bounds=(1.2, INF), margin=0.6) + still) / 6
            for f in ("bfoot", "ffoot")
        ]
        return sum(stands) / 2


def _cheetah_model():
    xml, assets = cheetah.get_model_and_assets()
    xml = xml.decode() if isinstance(xml, bytes) else xml
    return _replace_once(xml, 'size="100 .8 .5"', 'size="200 .8 .5"'), assets


def _cheetah(goal, time_limit=cheetah._DEFAULT_TIME_LIMIT, random=None, environment_kwargs=None):
    physics = cheetah.Physics.from_xml_string(*_cheetah_model())
    return control.Environment(
        physics, CheetahCustom(goal, random=random), time_limit=time_limit, **(environment_kwargs or {})
    )


# ---------------------------------------------------------------------------------------------- hopper
class HopperBackwards(hopper.Hopper):
    def get_reward(self, physics):
        standing = rewards.tolerance(physics.height(), (hopper._STAND_HEIGHT, 2))
        speed = hopper._HOP_SPEED / 2
        hopping = rewards.tolerance(
            physics.speed(), bounds=(-INF, -speed), margin=speed / 2, value_at_margin=0.5, sigmoid="linear"
        )
        return standing * hopping


def _hopper(time_limit=hopper._DEFAULT_TIME_LIMIT, random=None, environment_kwargs=None):
    physics = hopper.Physics.from_xml_string(*hopper.get_model_and_assets())
    return control.Environment(
        physics,
        HopperBackwards(hopping=True, random=random),
        time_limit=time_limit,
        control_timestep=hopper._CONTROL_TIMESTEP,
        **(environment_kwargs or {}),
    )


# ---------------------------------------------------------------------------------------------- reacher
THREE_LINK_ARM = """
    <geom name="root" type="cylinder" fromto="0 0 0 0 0 0.02" size=".011" material="decoration"/>
    <body name="arm0" pos="0 0 .01">
      <geom name="arm0" type="capsule" fromto="0 0 0 0.09 0 0" size=".01" material="self"/>
      <joint name="shoulder0"/>
      <body name="arm1" pos=".09 0 0">
        <geom name="arm1" type="capsule" fromto="0 0 0 0.09 0 0" size=".01" material="self"/>
        <joint name="shoulder1" limited="true" range="-80 80"/>
        <body name="hand" pos=".09 0 0">
          <geom name="hand" type="capsule" fromto="0 0 0 0.1 0 0" size=".01" material="self"/>
          <joint name="wrist" limited="true" range="-80 80"/>
          <body name="finger" pos=".09 0 0">
            <camera name="hand" pos="0 0 .2" mode="track"/>
            <geom name="finger" type="sphere" size=".01" material="effector"/>
          </body>
        </body>
      </body>
    </body>
"""
THREE_LINK_MOTORS = """
    <motor name="shoulder0" joint="shoulder0"/>
    <motor name="shoulder1" joint="shoulder1"/>
    <motor name="wrist" joint="wrist"/>
"""


def _reacher_three_model():
    """dm_control's reacher arena with the 2-link arm replaced by a 3-link one."""
    xml, assets = reacher.get_model_and_assets()
    xml = xml.decode() if isinstance(xml, bytes) else xml
    start, end = xml.index("    <!-- Arm -->"), xml.index("    <!-- Target -->")
    xml = xml[:start] + "    <!-- Arm -->" + THREE_LINK_ARM + xml[end:]
    start, end = xml.index("<actuator>") + len("<actuator>"), xml.index("</actuator>")
    xml = xml[:start] + THREE_LINK_MOTORS + "  " + xml[end:]
    return _replace_once(xml, 'model="two-link planar reacher"', 'model="three-link planar reacher"'), assets


def _reacher_three(target_size, time_limit=reacher._DEFAULT_TIME_LIMIT, random=None, environment_kwargs=None):
    physics = reacher.Physics.from_xml_string(*_reacher_three_model())
    return control.Environment(
        physics,
        reacher.Reacher(target_size=target_size, random=random),
        time_limit=time_limit,
        **(environment_kwargs or {}),
    )


# ---------------------------------------------------------------------------------------------- cup
class CupSpin(ball_in_cup.BallInCup):
    """Spin the ball around the cup, fast and far from it; episodes mostly start with the ball in the cup."""

    def initialize_episode(self, physics):
        need_in_cup = self.random.uniform() >= 0.1  # drawn once per reset
        while True:
            physics.named.data.qpos["ball_x"] = self.random.uniform(-0.2, 0.2)
            physics.named.data.qpos["ball_z"] = self.random.uniform(0.2, 0.5)
            physics.after_reset()
            if physics.data.ncon == 0 and (physics.in_target() or not need_in_cup):
                break
        super(ball_in_cup.BallInCup, self).initialize_episode(physics)

    def get_reward(self, physics):
        dist = np.linalg.norm(physics.ball_to_target())
        far = rewards.tolerance(dist, bounds=(0.5, INF), margin=0.25, value_at_margin=0.5, sigmoid="linear")
        qvel = physics.named.data.qvel[["ball_x", "ball_z"]]
        fast = rewards.tolerance(
            np.linalg.norm(np.abs(qvel)), bounds=(6, INF), margin=3, value_at_margin=0.5, sigmoid="linear"
        )
        return (1 - physics.in_target()) * (far + 2 * fast) / 3


def _cup_spin(time_limit=ball_in_cup._DEFAULT_TIME_LIMIT, random=None, environment_kwargs=None):
    physics = ball_in_cup.Physics.from_xml_string(*ball_in_cup.get_model_and_assets())
    return control.Environment(
        physics,
        CupSpin(random=random),
        time_limit=time_limit,
        control_timestep=ball_in_cup._CONTROL_TIMESTEP,
        **(environment_kwargs or {}),
    )


# ---------------------------------------------------------------------------------------------- pendulum
class PendulumSpin(pendulum.SwingUp):
    def get_reward(self, physics):
        return rewards.tolerance(
            abs(physics.angular_velocity()), bounds=(9, INF), margin=4.5, value_at_margin=0.5, sigmoid="linear"
        )


def _pendulum_spin(time_limit=pendulum._DEFAULT_TIME_LIMIT, random=None, environment_kwargs=None):
    physics = pendulum.Physics.from_xml_string(*pendulum.get_model_and_assets())
    return control.Environment(
        physics, PendulumSpin(random=random), time_limit=time_limit, **(environment_kwargs or {})
    )


# ---------------------------------------------------------------------------------------------- registration
FACTORIES = {
    (walker, "walk_backwards"): functools.partial(_walker, walker._WALK_SPEED),
    (walker, "run_backwards"): functools.partial(_walker, walker._RUN_SPEED),
    (cheetah, "run_backwards"): functools.partial(_cheetah, "run_backwards"),
    (cheetah, "run_front"): functools.partial(_cheetah, "run_front"),
    (cheetah, "run_back"): functools.partial(_cheetah, "run_back"),
    (cheetah, "jump"): functools.partial(_cheetah, "jump"),
    (hopper, "hop_backwards"): _hopper,
    (reacher, "three_easy"): functools.partial(_reacher_three, reacher._BIG_TARGET),
    (reacher, "three_hard"): functools.partial(_reacher_three, reacher._SMALL_TARGET),
    (ball_in_cup, "spin"): _cup_spin,
    (pendulum, "spin"): _pendulum_spin,
}


def _register_in_dm_control():
    for (domain, name), factory in FACTORIES.items():
        if name in domain.SUITE:
            continue

        def load(time_limit=None, random=None, environment_kwargs=None, _factory=factory):
            kwargs = {} if time_limit is None else {"time_limit": time_limit}
            return _factory(random=random, environment_kwargs=environment_kwargs, **kwargs)

        load.__name__ = name
        domain.SUITE.add("custom")(load)


_register_in_dm_control()


class DMControlCustomSuite(DMControlSuite):
    """TD-MPC2's 11 custom DMControl tasks (the rest of mt30), with DMControl's wrapper and conventions."""

    name = "dmcontrol_custom"

    def tasks(self):
        return TASKS


suites.register("dmcontrol_custom", DMControlCustomSuite())
