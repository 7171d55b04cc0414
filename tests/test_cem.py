"""PlaNet's CEM (`planner=cem`) and CEM seeded by the policy (`planner=cem_policy`): the closed-form optimum of an
analytic model, the policy seed, the options (PlaNet's defaults, validated), TD-MPC2 and BMPC agents and their
official-layout files, and evaluate.py through the command line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dream_mpc import checkpoint, config
from dream_mpc.errors import UserError
from dream_mpc.planners.cem import CEMPlanner, PolicySeededCEMPlanner
from tests.toy_models import IntegratorModel

ROOT = Path(__file__).resolve().parents[1]
GAMMA = 0.9


def planner_for(cls, model, *overrides):
    cfg = config.load(["task=cartpole-swingup", "threads=1", *overrides])
    return cls(model, cfg, GAMMA)


@pytest.mark.parametrize("cls", [CEMPlanner, PolicySeededCEMPlanner])
def test_cem_finds_the_closed_form_optimum_with_the_terminal_value(cls):
    """H = 2 on the integrator: a_t = gamma^(H-t) w (goal - z) / (k + w S), which needs the terminal value."""
    torch.manual_seed(0)
    model = IntegratorModel()
    planner = planner_for(cls, model, "cem.horizon=2")
    z = torch.tensor([[0.0, 0.0], [0.4, -0.3], [1.0, 0.2]])
    action, info = planner.plan(z, t0=True, eval_mode=True)
    best = model.optimum(z, 2, GAMMA)  # (H, B, A)
    torch.testing.assert_close(info["plan"], best.transpose(0, 1), atol=0.02, rtol=0)
    torch.testing.assert_close(action, best[0], atol=0.02, rtol=0)  # eval mode: the final mean's first action
    expected = sum(GAMMA**t * -(best[t] ** 2).sum(-1, keepdim=True) for t in range(2))  # k = 1, u = 0
    expected = expected + GAMMA**2 * model.values(z + best.sum(0))[0]
    torch.testing.assert_close(info["value"], expected, atol=2e-3, rtol=0)


def test_without_the_terminal_value_cem_maximises_the_rewards_alone():
    torch.manual_seed(0)
    planner = planner_for(CEMPlanner, IntegratorModel(), "cem.horizon=2", "cem.terminal_value=false")
    action, _ = planner.plan(torch.tensor([[0.0, 0.0]]), t0=True, eval_mode=True)
    torch.testing.assert_close(action, torch.zeros(1, 2), atol=0.02, rtol=0)  # -k |a|^2 alone: a = 0


def test_the_policy_seed_is_the_policys_mean_rolled_out():
    """A vanishing std keeps every sample at the initial mean: zeros for PlaNet's CEM, the policy's mean actions
    through the model for cem_policy (tanh(goal - z_t) with z_{t+1} = z_t + a_t)."""
    z = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    opts = ("cem.horizon=2", "cem.init_std=1e-9", "cem.iterations=1")
    _, info = planner_for(CEMPlanner, IntegratorModel(), *opts).plan(z, t0=True, eval_mode=True)
    torch.testing.assert_close(info["plan"], torch.zeros(2, 2, 2))
    _, info = planner_for(PolicySeededCEMPlanner, IntegratorModel(), *opts).plan(z, t0=True, eval_mode=True)
    a0 = torch.tanh(0.5 - z)
    torch.testing.assert_close(info["plan"], torch.stack([a0, torch.tanh(0.5 - (z + a0))], 1))


def test_options_have_planets_defaults_and_are_validated():
    cfg = config.load(["task=cartpole-swingup", "planner=cem_policy"])
    assert (cfg.cem.num_candidates, cfg.cem.iterations, cfg.cem.top_k, cfg.cem.horizon) == (1000, 10, 100, 12)
    assert "cem" in config.defaults()
    with pytest.raises(UserError, match="cem.top_k=0 is not allowed"):
        config.load(["task=cartpole-swingup", "planner=cem", "cem.top_k=0"])
    with pytest.raises(UserError, match="top_k <= cem.num_candidates"):
        cfg = config.load(["task=cartpole-swingup", "planner=cem", "cem.num_candidates=10", "cem.top_k=20"])
        CEMPlanner(IntegratorModel(), cfg, GAMMA)


def test_training_mode_adds_exploration_noise_and_stays_in_bounds():
    torch.manual_seed(0)
    planner = planner_for(CEMPlanner, IntegratorModel(), "cem.horizon=2", "cem.num_candidates=100", "cem.top_k=10")
    z = torch.full((4, 2), 3.0)  # far from the goal: the optimum is at the bound
    action, info = planner.plan(z, t0=True, eval_mode=False)
    assert action.abs().max() <= 1 and not torch.allclose(action, info["mean"])
    assert (info["std"] >= planner.cfg.min_std).all()


def official_file(tmp_path, name):
    """A bare official-layout file ({"model": state_dict}, no config) from a bundled agent's weights."""
    obj = torch.load(ROOT / "agents" / name, map_location="cpu", weights_only=True)
    path = tmp_path / ("official-" + name)
    torch.save({"model": obj["model"]}, path)
    return path


@pytest.mark.parametrize("name", ["cartpole-swingup-tdmpc2-1M.pt", "cartpole-swingup-bmpc-1M.pt"])
@pytest.mark.parametrize("planner", ["cem", "cem_policy"])
def test_cem_plans_on_official_tdmpc2_and_bmpc_files(tmp_path, name, planner):
    opts = ["cem.num_candidates=64", "cem.top_k=8", "cem.iterations=3", "cem.horizon=4"]
    agent = checkpoint.load_agent(
        official_file(tmp_path, name), task="cartpole-swingup", device="cpu", overrides=[f"planner={planner}", *opts]
    )
    assert agent.saved_config is None and type(agent.planner).__name__.endswith("CEMPlanner")
    assert agent.planning.value_kind == ("V" if "bmpc" in name else "Q")
    torch.manual_seed(0)
    for t in range(3):
        action = agent.act(torch.randn(5), t0=t == 0, eval_mode=t < 2)
        assert action.shape == (1,) and torch.isfinite(action).all() and action.abs().max() <= 1
    assert agent.planner.nonfinite_count == 0


@pytest.mark.slow
def test_cem_at_planets_settings_on_a_trained_agent_prefers_high_value_plans():
    """PlaNet's defaults (1000 x 10 x horizon 12) on the bundled TD-MPC2 agent: the picked plan's value beats the
    policy-seeded CEM's first iteration average, i.e. the refits improve on what they started from."""
    agent = checkpoint.load_agent(ROOT / "agents" / "cartpole-swingup-tdmpc2-1M.pt", device="cpu")
    agent.set_planner("cem")
    torch.manual_seed(0)
    z = agent.model.encode(torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0]]), None)
    _, info = agent.planner.plan(z, t0=True, eval_mode=True)
    one = planner_for(CEMPlanner, agent.planning, "cem.iterations=1")
    one.discount = agent.discount
    _, first = one.plan(z, t0=True, eval_mode=True)
    assert torch.isfinite(info["value"]).all() and info["value"].item() > first["value"].item()


@pytest.mark.slow
def test_evaluate_py_runs_cem_on_an_official_file(tmp_path):
    """python evaluate.py checkpoint=<official file> planner=cem eval_episodes=1 (smaller CEM: a full episode at
    PlaNet's settings takes minutes on a CPU)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MUJOCO_GL": "egl", "OMP_NUM_THREADS": "1"}
    path = official_file(tmp_path, "cartpole-swingup-tdmpc2-1M.pt")
    args = [f"checkpoint={path}", "task=cartpole-swingup", "planner=cem", "eval_episodes=1", "device=cpu"]
    args += ["cem.num_candidates=100", "cem.top_k=10", "cem.iterations=2", "cem.horizon=3"]
    run = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "planner=cem" in run.stdout and "return" in run.stdout, run.stdout[-2000:]
