"""Dreamer's losses and preprocessing against hand computations and torch.distributions."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from dreamer import losses, pixels
from dreamer.actor import TanhGaussianActor


def test_lambda_return_matches_a_hand_computation_and_eq_13_14():
    r = torch.tensor([1.0, 2.0, 3.0])  # r_t of s_t -> s_{t+1}
    v = torch.tensor([10.0, 20.0, 30.0])  # v(s_1), v(s_2), v(s_3)
    gamma, lam = 0.9, 0.5
    G = losses.lambda_return(r, v, gamma, lam)
    # G_2 = 3 + .9 * 30; G_1 = 2 + .9 (.5 * 20 + .5 * G_2); G_0 = 1 + .9 (.5 * 10 + .5 * G_1)
    assert G.tolist() == pytest.approx([16.525, 24.5, 30.0])
    # eq. 13-14 for s_0 over H = 3: (1 - lam) (V^1 + lam V^2) + lam^2 V^3, V^k the k-step return + bootstrap
    V1 = 1 + 0.9 * 10
    V2 = 1 + 0.9 * 2 + 0.81 * 20
    V3 = 1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 30
    assert float(G[0]) == pytest.approx((1 - lam) * (V1 + lam * V2) + lam**2 * V3)
    # lambda = 1: the discounted sum with the bootstrap; lambda = 0: one-step TD targets
    assert float(losses.lambda_return(r, v, gamma, 1.0)[0]) == pytest.approx(V3)
    assert losses.lambda_return(r, v, gamma, 0.0).tolist() == pytest.approx((r + gamma * v).tolist())


def test_lambda_return_is_batched_and_takes_per_step_discounts():
    r, v = torch.randn(4, 5, 3), torch.randn(4, 5, 3)
    G = losses.lambda_return(r, v, 0.99, 0.95)
    assert G.shape == (4, 5, 3)
    assert torch.allclose(G[:, 2, 1], losses.lambda_return(r[:, 2, 1], v[:, 2, 1], 0.99, 0.95))
    # a zero discount at step 1 (a predicted end) cuts everything after it
    disc = torch.tensor([0.9, 0.0, 0.9])
    G = losses.lambda_return(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 20.0, 30.0]), disc, 0.5)
    assert G[1] == pytest.approx(2.0) and G[0] == pytest.approx(1 + 0.9 * (0.5 * 10 + 0.5 * 2))


def test_gaussian_kl_matches_torch_distributions():
    assert float(losses.gaussian_kl(*map(torch.tensor, ([1.0], [2.0], [0.0], [1.0])))) == pytest.approx(
        math.log(0.5) + (4 + 1) / 2 - 0.5
    )
    g = torch.Generator().manual_seed(0)
    mq, mp = torch.randn(7, 3, 30, generator=g), torch.randn(7, 3, 30, generator=g)
    sq, sp = torch.rand(7, 3, 30, generator=g) + 0.1, torch.rand(7, 3, 30, generator=g) + 0.1
    expected = kl_divergence(Independent(Normal(mq, sq), 1), Independent(Normal(mp, sp), 1))
    assert torch.allclose(losses.gaussian_kl(mq, sq, mp, sp), expected, rtol=1e-5)


def test_free_nats_per_step_and_on_the_batch_mean():
    kl = torch.tensor([[1.0, 6.0], [2.0, 4.0]], requires_grad=True)
    per_step = losses.kl_loss(kl, 3.0, "per_step")
    assert float(per_step.detach()) == pytest.approx((3 + 6 + 3 + 4) / 4)
    (grad,) = torch.autograd.grad(per_step, kl)
    assert grad.tolist() == [[0.0, 0.25], [0.0, 0.25]]  # steps under the free nats get no gradient
    batch = losses.kl_loss(kl, 3.0, "batch_mean")
    assert float(batch.detach()) == pytest.approx(13 / 4)
    (grad,) = torch.autograd.grad(batch, kl)
    assert grad.tolist() == [[0.25, 0.25], [0.25, 0.25]]
    assert float(losses.kl_loss(kl.detach(), 4.0, "batch_mean")) == 4.0


def test_reconstruction_sums_over_the_observation_and_averages_over_time_and_batch():
    pred, target = torch.zeros(2, 3, 3, 4, 4), torch.ones(2, 3, 3, 4, 4)
    assert float(losses.reconstruction_loss(pred, target, 3)) == 48.0
    assert float(
        losses.reward_loss(torch.zeros(2, 2), torch.tensor([[1.0, 3.0], [2.0, 9.0]]), torch.tensor([[1, 1], [1, 0]]))
    ) == pytest.approx(14 / 3)


def test_value_loss_is_half_the_squared_error_to_detached_returns():
    values, returns = torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([3.0, 2.0], requires_grad=True)
    loss = losses.value_loss(values, returns)
    assert float(loss.detach()) == pytest.approx(0.5 * 4 / 2)
    loss.backward()
    assert returns.grad is None and values.grad.tolist() == [-1.0, 0.0]


def test_bit_depth_5_preprocessing():
    x = torch.tensor([0, 7, 8, 100, 255], dtype=torch.uint8)
    q = pixels.preprocess(x, 5, noise=False)
    assert q.tolist() == pytest.approx([-0.5, -0.5, 1 / 32 - 0.5, 12 / 32 - 0.5, 31 / 32 - 0.5])
    noisy = pixels.preprocess(x.repeat(1000), 5)
    d = noisy - q.repeat(1000)
    assert d.min() >= 0 and d.max() < 1 / 32 and d.std() > 0.005  # one quantisation step of uniform noise
    assert pixels.postprocess(noisy).tolist() == ((x.repeat(1000) // 8) * 8).tolist()


def test_actor_mode_is_tanh_of_the_bounded_mean_and_starts_at_init_std():
    actor = TanhGaussianActor(6, 2, 8, init_std=5.0, min_std=1e-4, mean_scale=5.0)
    last = actor.net[-1]
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.tensor([100.0, -1.0, 0.0, 0.0]))  # raw means 100 and -1, raw stds 0
    h, s = torch.randn(3, 4), torch.randn(3, 2)
    mean, std = actor.distribution(h, s)
    assert mean[0].tolist() == pytest.approx([5 * math.tanh(20), 5 * math.tanh(-0.2)])
    assert std[0].tolist() == pytest.approx([5.0 + 1e-4] * 2)
    a, mode, _ = actor(h, s, deterministic=True)
    assert torch.equal(a, torch.tanh(mean)) and torch.equal(mode, torch.tanh(mean))
    g = torch.Generator().manual_seed(3)
    sample = actor(h, s, generator=g)[0]
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(sample, torch.tanh(mean + std * eps))


def test_training_and_planning_lambda_returns_agree():
    """The planner's objective (dream_mpc/rollout.py, G_0 only) and Dreamer's training targets value s_0 alike."""
    from dream_mpc.rollout import lambda_return as planning_lambda_return

    r, v = torch.randn(15, 6, 1), torch.randn(15, 6, 1)
    expected = planning_lambda_return(r, v, 0.99, 0.95)
    assert torch.allclose(losses.lambda_return(r, v, 0.99, 0.95)[0], expected, atol=1e-5)
