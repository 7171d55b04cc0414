"""Dreamer's networks through the planning protocol: every registered planner plans on a tiny random model,
and the prior step is under the caller's noise control (generator, mean or sample)."""

import pytest
import torch

from dream_mpc import config
from dream_mpc.noise import ImaginationNoise
from dream_mpc.planner import make_planner
from dream_mpc.registry import planners
from dreamer.agent import Dreamer
from dreamer.options import DreamerOptions
from dreamer.world_model import latent

# smaller searches than the defaults keep this fast; unknown planners (cem, plug-ins) run with their defaults
CEM = ["cem.num_candidates=32", "cem.iterations=2", "cem.top_k=4", "cem.horizon=4"]
SMALL = {
    "mppi": ["iterations=2", "num_samples=64", "num_elites=8", "num_pi_trajs=4"],
    "grad": ["grad.num_candidates=8", "grad.iterations=2"],
    "cem": CEM,
    "cem_policy": CEM,
}
TINY = DreamerOptions(belief_size=12, state_size=4, hidden_size=16, embedding_size=16, imagination_horizon=3)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine's cores are shared; tiny networks gain nothing from more
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dreamer():
    torch.manual_seed(0)
    return Dreamer((5,), 2, TINY)


def random_latent(d, B, seed=0):
    g = torch.Generator().manual_seed(seed)
    return latent(torch.randn(B, TINY.belief_size, generator=g), torch.randn(B, TINY.state_size, generator=g))


@pytest.mark.parametrize("name", planners.names())
def test_every_registered_planner_plans_through_the_dreamer_model(dreamer, name):
    cfg = config.load(["task=cartpole-swingup", f"planner={name}", "device=cpu", "threads=1", *SMALL.get(name, [])])
    planner = make_planner(name, dreamer.world_model, cfg, 0.99)
    z = random_latent(dreamer, 3)
    for t in range(2):  # a second step exercises carried-over plans (warm starts, reuse)
        action, info = planner.plan(z, t0=t == 0, eval_mode=t == 1)
        assert action.shape == (3, 2) and torch.isfinite(action).all() and action.abs().max() <= 1
        assert info["mean"].shape == (3, 2) and info["value"].shape == (3, 1)
    assert planner.nonfinite_count == 0
    params = [
        p for m in (dreamer.rssm, dreamer.reward_model, dreamer.value_model, dreamer.actor) for p in m.parameters()
    ]
    assert all(p.grad is None for p in params)  # planners never leave gradients on the model


def test_the_prior_step_follows_the_plans_noise(dreamer):
    model, z, a = dreamer.world_model, random_latent(dreamer, 4), torch.rand(4, 2) * 2 - 1
    assert model.stochastic
    noise = ImaginationNoise("sample", latents=4, generator=torch.Generator().manual_seed(5))
    one, again = model.step(z, a, noise=noise.at(0)), model.step(z, a, noise=noise.at(0))
    other = model.step(z, a, noise=ImaginationNoise("sample", 4, torch.Generator().manual_seed(6)).at(0))
    assert torch.equal(one["s"], again["s"]) and not torch.equal(one["s"], other["s"])
    with torch.no_grad():
        h = dreamer.rssm.belief(z["h"], z["s"], a)
        mean, std = dreamer.rssm.prior(h)
    eps = torch.randn((4, TINY.state_size), generator=torch.Generator().manual_seed(5))
    assert torch.allclose(one["h"], h) and torch.allclose(one["s"], mean + std * eps)
    assert torch.allclose(model.step(z, a, noise=ImaginationNoise("mean").at(0))["s"], mean)
    free = model.step(z, a)  # no plan noise: a fresh sample, as in training
    assert torch.allclose(free["h"], h) and not torch.allclose(free["s"], mean)
    # candidates of one start latent share the draws (common random numbers)
    rows = ImaginationNoise("sample", latents=2).at(0)
    pair = model.step(z[:2].repeat_interleave(2, 0), a[:2].repeat_interleave(2, 0), noise=rows)
    assert torch.equal(pair["s"][0], pair["s"][1]) and not torch.equal(pair["s"][0], pair["s"][2])


def test_reward_reads_the_state_reached_and_values_are_one_v_member(dreamer):
    model, z = dreamer.world_model, random_latent(dreamer, 4)
    assert model.reward_timing == "next_state" and model.value_kind == "V" and not model.terminal_needs_action
    r1, r2 = model.reward(z, torch.ones(4, 2)), model.reward(z, -torch.ones(4, 2))
    assert r1.shape == (4, 1) and torch.equal(r1, r2)
    v = model.values(z)
    assert v.shape == (1, 4, 1) and torch.equal(v[0], model.terminal_value(z))
    stacked = torch.stack([z, z])  # planners stack latents over time: (H, B)
    assert model.reward(stacked).shape == (2, 4, 1) and model.values(stacked).shape == (1, 2, 4, 1)
    action, mean, std = model.policy(z)
    assert action.shape == mean.shape == std.shape == (4, 2) and action.abs().max() <= 1  # float32 tanh reaches 1


def test_gradients_reach_the_actions_through_sampled_imagination(dreamer):
    model, z = dreamer.world_model, random_latent(dreamer, 2)
    a = torch.zeros(2, 2, requires_grad=True)
    nxt = model.step(z, a, noise=ImaginationNoise("sample", 2, torch.Generator().manual_seed(0)).at(0))
    (g,) = torch.autograd.grad(model.reward(nxt).sum() + model.terminal_value(nxt).sum(), a)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
