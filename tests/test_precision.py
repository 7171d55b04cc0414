"""planning_dtype=bfloat16: planners read a bf16 copy of the world model that follows every in-place change of the
model (and only then), give float32 outputs, and score plans close to the float32 model on a trained agent."""

import pytest
import torch
from conftest import AGENT as BUNDLED

from dream_mpc import checkpoint, config
from dream_mpc.errors import UserError
from dream_mpc.objective import Objective
from tdmpc2.planning import TDMPC2Planning


@pytest.fixture(scope="module")
def agents():
    """The bundled trained agent twice: planning in float32 and in bfloat16."""
    torch.set_num_threads(1)
    a32 = checkpoint.load_agent(BUNDLED, device="cpu", overrides=["planner=dream"])
    a16 = checkpoint.load_agent(BUNDLED, device="cpu", overrides=["planner=dream", "planning_dtype=bfloat16"])
    return a32, a16


def test_unknown_planning_dtype_lists_the_valid_ones():
    with pytest.raises(UserError, match="planning_dtype='float16' is not allowed") as err:
        config.load(["task=cartpole-swingup", "planning_dtype=float16"])
    assert "float32" in str(err.value) and "bfloat16" in str(err.value)


def test_float32_planning_uses_the_model_itself(agents):
    a32, _ = agents
    assert a32.planning.prepare().model is a32.model and a32.planner.model is a32.planning


def test_the_copy_is_loaded_refreshed_on_change_and_only_then(agents):
    _, a16 = agents
    model, copy = a16.model, a16.planning.model
    assert a16.planner.model is a16.planning and copy is not model
    a16.planning.prepare()
    for (name, src), dst in zip(model.state_dict().items(), copy.state_dict().values()):
        assert dst.dtype == (torch.bfloat16 if src.is_floating_point() else src.dtype), name
        torch.testing.assert_close(dst.float(), src.to(dst.device).float(), atol=0, rtol=2**-8, msg=name)
    w_src, w_dst = model._dynamics[0].weight, copy._dynamics[0].weight
    with torch.no_grad():
        w_dst.zero_()  # a marker: no refresh may happen while the model is unchanged
    a16.act(torch.zeros(5), t0=True, eval_mode=True)
    assert w_dst.abs().sum() == 0
    with torch.no_grad():
        w_src.add_(0.0)  # any in-place write (an optimizer step, a checkpoint load) bumps the version
    a16.act(torch.zeros(5), t0=False, eval_mode=True)
    torch.testing.assert_close(w_dst, w_src.to(torch.bfloat16))
    assert not any(p.requires_grad for p in copy.parameters())


@pytest.mark.parametrize("planner", ["policy", "mppi", "dream", "grad", "hybrid"])
def test_bfloat16_plans_are_float32_finite_and_in_bounds(agents, planner):
    _, a16 = agents
    a16.set_planner(planner)
    torch.manual_seed(0)
    obs = torch.randn(4, 5)
    for t in range(2):
        action = a16.act(obs, t0=t == 0, eval_mode=t == 1)
        assert action.dtype == torch.float32 and action.shape == (4, 1)
        assert torch.isfinite(action).all() and action.abs().max() <= 1
        for key in ("value", "mean", "std"):
            assert a16.last_plan_info[key].dtype == torch.float32, key
    assert a16.nonfinite_actions == 0 and a16.planner.nonfinite_count == 0  # finite by planning, not by act's guard
    a16.set_planner("dream")


def test_bfloat16_objective_and_policy_match_float32_on_a_trained_agent(agents):
    a32, a16 = agents
    torch.manual_seed(0)
    obs = torch.randn(64, 5)
    with torch.no_grad():
        z = a32.model.encode(obs)
        actions = torch.rand(64, 4, 1) * 2 - 1
    objective = Objective(horizon=3, uncertainty_coef=0.01)
    with torch.no_grad():
        j32 = objective(a32.planning, z, actions, discount=a32.discount)
        j16 = objective(a16.planning.prepare(), a16.planning.cast(z), actions, discount=a16.discount)
    assert j16.dtype == torch.float32
    # returns of 3 steps plus a terminal value of a few hundred: bf16 weights move them by well under 1 %
    rel = (j16 - j32).abs() / j32.abs().clamp_min(1.0)
    assert rel.median() < 0.01 and rel.max() < 0.05, (rel.median(), rel.max())
    # the executed policy mean: bf16 rounds to ~3 significant digits
    a32.set_planner("policy"), a16.set_planner("policy")
    torch.testing.assert_close(a16.act(obs, eval_mode=True), a32.act(obs, eval_mode=True), atol=0.03, rtol=0)
    a32.set_planner("dream"), a16.set_planner("dream")


def test_planning_model_copies_nothing_for_float32(agents):
    a32, _ = agents
    pm = TDMPC2Planning(a32.model)
    assert pm.prepare().model is a32.model and pm.cast(torch.ones(1)).dtype == torch.float32
