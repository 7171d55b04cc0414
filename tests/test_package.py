"""A proper package: the wheel holds the root config and the C++ source, and its console entry point evaluates a
bundled agent from another directory with nothing of the repository on the path."""

import os
import subprocess
import sys

import pytest
from conftest import AGENT, ROOT


@pytest.mark.slow
def test_the_installed_entry_point_evaluates_a_bundled_agent_from_elsewhere(tmp_path):
    wheels, target, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True, capture_output=True)
    (wheel,) = wheels.glob("dream_mpc-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}  # the package from the wheel, its dependencies from this venv
    where = subprocess.run(
        [sys.executable, "-c", "import tdmpc2, dream_mpc; print(tdmpc2.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(target)), where
    run = subprocess.run(
        [
            sys.executable,
            str(target / "bin" / "dream-mpc-evaluate"),
            f"checkpoint={AGENT}",
            "planner=policy",
            "eval_episodes=1",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "cartpole-swingup planner=policy: return" in run.stdout
    assert not (elsewhere / "config.yaml").exists()
