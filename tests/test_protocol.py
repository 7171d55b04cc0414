"""The planning protocol for recurrent, stochastic models (issue 19, item 2): plan-owned imagination noise, reward
timing, soft continuation, the model's terminal value in every planner, the lambda-return objective, the single-head
penalty report, one action layout, and MPPI's large-action heuristic in the planner. Hand computations on the
analytic models of tests/toy_models.py."""

import warnings

import pytest
import torch

from dream_mpc import config
from dream_mpc.noise import ImaginationNoise
from dream_mpc.objective import Objective
from dream_mpc.planners.dream import DreamMPCPlanner
from dream_mpc.planners.mppi import MPPIPlanner
from dream_mpc.rollout import latent_rollout, policy_rollout, predicted_return, sequence_return
from tests.toy_models import IntegratorModel, LinearQuadraticModel

GAMMA = 0.9


def cfg_with(*overrides):
    return config.load(["task=cartpole-swingup", "threads=1", *overrides])


# ---------------------------------------------------------------------------------------------------- noise
def test_two_scorings_of_one_plan_agree_exactly_and_candidates_share_the_noise():
    torch.manual_seed(0)
    model = IntegratorModel(sigma=0.3)
    B, N, H = 2, 4, 3
    z = torch.randn(B, 2).repeat_interleave(N, 0)
    actions = torch.rand(B * N, H, 2) * 2 - 1
    actions[1] = actions[0]  # two identical candidates of latent 0
    objective = Objective(H, uncertainty_coef=0.0)
    noise = ImaginationNoise("sample", latents=B)
    first = objective(model, z, actions, discount=GAMMA, noise=noise)
    second = objective(model, z, actions, discount=GAMMA, noise=noise)
    assert torch.equal(first, second)  # the same plan's noise: bit for bit
    assert first[0] == first[1]  # common random numbers: candidates differ by their actions only
    other = objective(model, z, actions, discount=GAMMA, noise=ImaginationNoise("sample", latents=B))
    assert not torch.allclose(first, other)  # and the noise does matter on this model
    # the mean mode is the noiseless model
    mean = objective(model, z, actions, discount=GAMMA, noise=ImaginationNoise("mean", latents=B))
    noiseless = objective(IntegratorModel(sigma=0.0), z, actions, discount=GAMMA)
    assert torch.equal(mean, noiseless)


def test_a_deterministic_model_ignores_the_noise():
    torch.manual_seed(0)
    model = LinearQuadraticModel()
    z, actions = torch.randn(6, 3), torch.rand(6, 4, 2) * 2 - 1  # Q-model: H=3 plus the terminal action
    plain = Objective(3)(model, z, actions, discount=GAMMA)
    state = torch.get_rng_state()
    noisy = Objective(3)(model, z, actions, discount=GAMMA, noise=ImaginationNoise("sample", latents=2))
    assert torch.equal(plain, noisy) and torch.equal(state, torch.get_rng_state())  # nothing drawn


def test_dream_mpc_rolls_out_steps_and_scores_under_one_noise_and_the_value_is_reproducible():
    """Every step of one plan (the policy's candidate rollout, the gradient pass, the final scoring) receives the same
    draw per step, every candidate of a latent the same rows; the next plan draws afresh. Re-scoring the optimised
    candidates with the plan's noise gives exactly the J the planner reported for its pick."""
    torch.manual_seed(0)
    model = IntegratorModel(sigma=0.2)
    cfg = cfg_with(
        "dream.num_candidates=3",
        "dream.horizon=2",
        "dream.iterations=1",
        "dream.uncertainty_coef=0",
        "dream.imagination=sample",  # common random numbers (the default, eq. 16, draws per candidate)
    )
    planner = DreamMPCPlanner(model, cfg, GAMMA)
    z = torch.randn(2, 2)
    model.record = []
    _, info = planner.plan(z, t0=True, eval_mode=True)
    seen = model.record  # rollout: 1 step (a V-model's sequence is H long), gradient pass: 2, scoring: 2
    assert len(seen) == 5
    assert torch.equal(seen[0], seen[1]) and torch.equal(seen[0], seen[3]) and torch.equal(seen[2], seen[4])
    assert not torch.equal(seen[1], seen[2])  # steps draw separately
    assert torch.equal(seen[1][0], seen[1][2]) and not torch.equal(seen[1][0], seen[1][3])  # rows of a latent share
    J = planner.objective(model, z.repeat_interleave(3, 0), planner._prev.view(6, 2, 2), discount=GAMMA)
    torch.testing.assert_close(J.view(2, 3).max(1).values.unsqueeze(-1), info["value"], rtol=0, atol=0)
    model.record = []
    planner.plan(z, t0=True, eval_mode=True)
    assert not torch.equal(model.record[0], seen[0])  # a new plan, new draws


def test_mppi_gives_identical_sequences_identical_values_on_a_stochastic_model():
    torch.manual_seed(0)
    model = IntegratorModel(sigma=0.5)
    z = torch.randn(2, 2)
    actions = (torch.rand(3, 2, 1, 2) * 2 - 1).expand(3, 2, 5, 2).reshape(3, 10, 2)  # 5 copies per latent
    noise = ImaginationNoise("sample", latents=2)
    value = sequence_return(model, z, actions, None, GAMMA, noise=noise).view(2, 5)
    assert torch.equal(value, value[:, :1].expand(2, 5))
    assert torch.equal(value.flatten(), sequence_return(model, z, actions, None, GAMMA, noise=noise).flatten())


# ---------------------------------------------------------------------------------------------------- timing
@pytest.mark.parametrize("timing", ["transition", "next_state"])
def test_reward_timing_is_honoured_by_every_helper(timing):
    """reward = sum(z) (u=1, k=0): 'transition' reads z_t, 'next_state' reads z_{t+1}; by hand from the latents."""
    torch.manual_seed(0)
    model = IntegratorModel(k=0.0, u=1.0, w=0.0, reward_timing=timing)
    z, actions = torch.randn(3, 2), torch.rand(4, 3, 2) * 2 - 1  # time-major (H, R, A)
    zs = [z]
    for a in actions:
        zs.append(zs[-1] + a)
    read = zs[1:] if timing == "next_state" else zs[:-1]
    expected = sum(GAMMA**t * read[t].sum(-1, keepdim=True) for t in range(4))
    G, disc = predicted_return(model, latent_rollout(model, z, actions), actions, discount=GAMMA)
    torch.testing.assert_close(G, expected)
    torch.testing.assert_close(sequence_return(model, z, actions, None, GAMMA), expected)  # V = 0 (w = 0)
    J = Objective(4, uncertainty_coef=0.0)(model, z, actions.transpose(0, 1), discount=GAMMA)
    torch.testing.assert_close(J, expected)


# ---------------------------------------------------------------------------------------------------- continuation
class Episodic(IntegratorModel):
    """Continuation c(z) = sigmoid(sum z); reward -k|a|^2 (k=1), V = -w|z - goal|^2."""

    episodic = True

    def continuation(self, z, task=None):
        return torch.sigmoid(z.sum(-1, keepdim=True))


def test_continuation_weights_returns_softly_and_differentiably():
    torch.manual_seed(0)
    model = Episodic()
    z, actions = torch.randn(3, 2), (torch.rand(3, 3, 2) * 2 - 1).requires_grad_(True)
    zs = latent_rollout(model, z, actions)
    c = [model.continuation(zs[t]) for t in range(4)]
    r = [-(actions[t] ** 2).sum(-1, keepdim=True) for t in range(3)]
    v = model.values(zs[3])[0]
    expected = r[0] + GAMMA * c[1] * r[1] + GAMMA**2 * c[1] * c[2] * r[2] + GAMMA**3 * c[1] * c[2] * c[3] * v
    G, disc = predicted_return(model, zs, actions, discount=GAMMA)
    torch.testing.assert_close(G + disc * v, expected)
    torch.testing.assert_close(sequence_return(model, z, actions, None, GAMMA), expected)
    # the gradient reaches the actions through the continuation too (the risk of ending), not only the rewards
    (grad,) = torch.autograd.grad(sequence_return(model, z, actions, None, GAMMA).sum(), actions)
    (hand,) = torch.autograd.grad(expected.sum(), actions, retain_graph=True)
    torch.testing.assert_close(grad, hand)
    cd = [x.detach() for x in c]
    frozen = r[0] + GAMMA * cd[1] * r[1] + GAMMA**2 * cd[1] * cd[2] * r[2] + GAMMA**3 * cd[1] * cd[2] * cd[3] * v
    (without,) = torch.autograd.grad(frozen.sum(), actions)
    assert (grad - without).abs().max() > 1e-3


def test_hard_continuation_is_the_official_cut():
    model = Episodic()
    model.continuation_weighting = "hard"
    z = torch.tensor([[0.0, 0.0]])
    actions = torch.tensor([[[0.5, 0.5]], [[-1.0, -1.0]], [[0.1, 0.1]]])  # c(z_1) > 0.5, c(z_2) < 0.5
    zs = latent_rollout(model, z, actions)
    r = [-(a**2).sum(-1, keepdim=True) for a in actions]
    expected = r[0] + GAMMA * r[1]  # everything after z_2 (its reward and the terminal value) is cut
    torch.testing.assert_close(sequence_return(model, z, actions, None, GAMMA), expected)
    G, disc = predicted_return(model, zs, actions, discount=GAMMA)
    torch.testing.assert_close(G, expected)
    assert float(disc) == 0.0


# ---------------------------------------------------------------------------------------------------- terminal value
class Valued(IntegratorModel):
    """The same model, but its horizon is valued at 7 whatever the latent."""

    def terminal_value(self, z, task=None, action=None, values=None):
        like = z if values is None else values[0]
        return torch.full_like(like[..., :1], 7.0)


def test_every_planner_values_the_horizon_through_the_models_terminal_value():
    torch.manual_seed(0)
    model, plain = Valued(), IntegratorModel()
    z, actions = torch.randn(3, 2), torch.rand(2, 3, 2) * 2 - 1
    rewards = sum(GAMMA**t * -(actions[t] ** 2).sum(-1, keepdim=True) for t in range(2))
    torch.testing.assert_close(sequence_return(model, z, actions, None, GAMMA), rewards + GAMMA**2 * 7)
    J = Objective(2, uncertainty_coef=0.0)(model, z, actions.transpose(0, 1), discount=GAMMA)
    torch.testing.assert_close(J, rewards + GAMMA**2 * 7)
    assert not torch.allclose(Objective(2, 0.0)(plain, z, actions.transpose(0, 1), discount=GAMMA), J)


# ---------------------------------------------------------------------------------------------------- lambda-return
@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
def test_lambda_objective_is_eq_14_by_hand(lam):
    """V_lambda(z_0) = (1 - lam) sum_{n=1}^{H-1} lam^(n-1) V^n + lam^(H-1) V^H, V^n the n-step return bootstrapped
    with V(z_n) (eq. 13), computed here from the latents; lam = 1 is the H-step return objective."""
    torch.manual_seed(0)
    model, H = IntegratorModel(u=0.3), 4
    z, actions = torch.randn(5, 2), torch.rand(5, H, 2) * 2 - 1
    zs = latent_rollout(model, z, actions.transpose(0, 1))
    r = [model.reward(zs[t], actions[:, t]) for t in range(H)]
    v = [model.values(zs[t])[0] for t in range(H + 1)]

    def n_step(n):
        return sum(GAMMA**t * r[t] for t in range(n)) + GAMMA**n * v[n]

    expected = (1 - lam) * sum(lam ** (n - 1) * n_step(n) for n in range(1, H)) + lam ** (H - 1) * n_step(H)
    J = Objective(H, uncertainty_coef=0.0, kind="lambda", td_lambda=lam)(model, z, actions, discount=GAMMA)
    torch.testing.assert_close(J, expected)
    if lam == 1.0:
        torch.testing.assert_close(J, Objective(H, uncertainty_coef=0.0)(model, z, actions, discount=GAMMA))


def test_dream_objective_lambda_is_an_option():
    cfg = cfg_with("dream.objective=lambda", "dream.td_lambda=0.5", "dream.uncertainty_coef=0")
    planner = DreamMPCPlanner(IntegratorModel(), cfg, GAMMA)
    assert planner.objective.kind == "lambda" and planner.objective.td_lambda == 0.5
    action, _ = planner.plan(torch.zeros(2, 2), t0=True, eval_mode=True)
    assert torch.isfinite(action).all()
    from dream_mpc.errors import UserError

    with pytest.raises(UserError, match="dream.objective"):
        cfg_with("dream.objective=td")


# ---------------------------------------------------------------------------------------------------- penalty
def test_a_single_value_member_warns_once_and_reports_the_penalty_off():
    with pytest.warns(UserWarning, match="single value member"):
        planner = DreamMPCPlanner(Episodic(), cfg_with("dream.uncertainty_coef=0.01"), GAMMA)
    assert planner.penalty_active is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # planning does not warn again
        planner.plan(torch.zeros(1, 2), t0=True, eval_mode=True)
    undeclared = DreamMPCPlanner(LinearQuadraticModel(scales=(1.0,)), cfg_with("dream.uncertainty_coef=0.01"), GAMMA)
    assert undeclared.penalty_active is None
    with pytest.warns(UserWarning, match="single value member"):  # a model that does not declare its size
        undeclared.plan(torch.zeros(1, 3), t0=True, eval_mode=True)
    assert undeclared.penalty_active is False
    ensemble = DreamMPCPlanner(LinearQuadraticModel(), cfg_with("dream.uncertainty_coef=0.01"), GAMMA)
    assert ensemble.penalty_active is None  # size not declared: known at the first plan
    ensemble.plan(torch.zeros(1, 3), t0=True, eval_mode=True)
    assert ensemble.penalty_active is True
    assert DreamMPCPlanner(LinearQuadraticModel(), cfg_with("dream.uncertainty_coef=0"), GAMMA).penalty_active is False
    assert MPPIPlanner(LinearQuadraticModel(), cfg_with(), GAMMA).penalty_active is False


# ---------------------------------------------------------------------------------------------------- layout, MPPI
def test_policy_rollout_is_time_major_and_grouped_by_latent():
    model = IntegratorModel()
    z = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    out = policy_rollout(model, z, None, num=3, horizon=2, mean=True)
    assert out.shape == (2, 6, 2)
    torch.testing.assert_close(out[0, :3], torch.tanh(0.5 - z[:1]).expand(3, 2))
    torch.testing.assert_close(out[1, 3:], torch.tanh(0.5 - (z[1:] + torch.tanh(0.5 - z[1:]))).expand(3, 2))


def test_mppi_adds_two_iterations_for_large_action_spaces_itself():
    cfg = cfg_with()
    assert MPPIPlanner(LinearQuadraticModel(action_dim=19), cfg, GAMMA).iterations == 6
    assert MPPIPlanner(LinearQuadraticModel(action_dim=21), cfg, GAMMA).iterations == 8  # TD-MPC2: A >= 20
    assert cfg.iterations == 6  # the config is left as given
