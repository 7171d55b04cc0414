"""Every suite's environment random state survives a weights_only checkpoint: saved as the trainer saves it, read
back safely and restored, the next reset draws the same initial state (exact resumes on every suite)."""

import importlib.util
import io

import pytest
import torch

from dream_mpc import config
from dream_mpc.envs import make_env
from dream_mpc.training.trainer import _numpy_rng, _plain_rng

TASKS = ["cartpole-swingup", "cheetah-run-backwards", "mw-button-press", "humanoid_h1-walk"]


@pytest.mark.parametrize("task", TASKS)
def test_the_env_random_state_round_trips_through_a_safe_checkpoint(task):
    if task.startswith("humanoid") and importlib.util.find_spec("humanoid_bench") is None:
        pytest.skip("HumanoidBench is not installed")
    env = make_env(config.load([f"task={task}"]))
    env.reset()
    state = env.get_rng_state()
    buffer = io.BytesIO()
    torch.save({"env": _plain_rng(state)}, buffer)
    buffer.seek(0)
    restored = _numpy_rng(torch.load(buffer, weights_only=True)["env"])
    first = env.reset()
    env.set_rng_state(restored)
    again = env.reset()
    torch.testing.assert_close(again, first, rtol=0, atol=0)
