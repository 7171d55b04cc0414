"""The Dreamer agent: first updates on pixels and states, learning on a small deterministic task, acting with
the recurrent filter (the same filter as training), checkpoints, and its options."""

import io

import pytest
import torch

from dream_mpc import options as options_
from dream_mpc.errors import UserError
from dreamer.agent import Dreamer
from dreamer.options import DreamerOptions

TINY = dict(belief_size=16, state_size=4, hidden_size=16, embedding_size=16, cnn_depth=4, imagination_horizon=4)
KEYS = {"obs_loss", "reward_loss", "kl", "kl_loss", "model_loss", "actor_loss", "value_loss", "imagined_return"}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine's cores are shared; tiny networks gain nothing from more
    yield
    torch.set_num_threads(threads)


def check_first_update(d, obs, A):
    T, B = obs.shape[:2]
    g = torch.Generator().manual_seed(1)
    batch = {
        "obs": obs,
        "action": torch.rand(T, B, A, generator=g) * 2 - 1,
        "reward": torch.randn(T, B, generator=g),
        "continuation": torch.tensor([[1.0] * B] * (T - 2) + [[0.0] + [1.0] * (B - 1)] + [[1.0] * B]),
    }
    before = [p.detach().clone() for p in d.actor.parameters()]
    metrics = d.update(batch)
    assert KEYS <= set(metrics) and all(
        isinstance(v, float) and v == v and abs(v) < float("inf") for v in metrics.values()
    )
    assert metrics["kl_loss"] >= d.opt.free_nats and metrics["actor_grad_norm"] > 0 and metrics["value_grad_norm"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, d.actor.parameters()))  # the actor learned
    state = d.initial_state(B)
    action, state = d.act(obs[0], state, explore=True)
    assert action.shape == (B, A) and action.abs().max() <= 1
    assert state["h"].shape == (B, d.opt.belief_size) and state["s"].shape == (B, d.opt.state_size)
    assert torch.equal(state["action"], action)
    feature = torch.zeros(3, d.opt.belief_size + d.opt.state_size)
    return d.decoder(feature)


def test_first_update_on_uint8_pixels():
    torch.manual_seed(0)
    d = Dreamer((3, 64, 64), 2, DreamerOptions(**TINY))
    obs = torch.randint(0, 256, (5, 2, 3, 64, 64), dtype=torch.uint8)
    assert check_first_update(d, obs, 2).shape == (3, 3, 64, 64)
    assert d.encoder(d.preprocess(obs)).shape == (5, 2, 16)
    stacked = Dreamer((9, 64, 64), 1, DreamerOptions(**TINY))  # 3 stacked frames, as the project's rgb envs give
    assert stacked.decoder(torch.zeros(1, 20)).shape == (1, 9, 64, 64)


def test_first_update_on_states():
    torch.manual_seed(0)
    d = Dreamer((5,), 3, DreamerOptions(**TINY))
    assert check_first_update(d, torch.randn(6, 4, 5), 3).shape == (3, 5)


def linear_task(T=12, B=8):
    """x' = A x + b a with a slow rotation, reward -x'_0^2 of the state reached: deterministic, fully observed."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, 3, generator=g)
    rot = torch.tensor([[0.9, 0.2, 0.0], [-0.2, 0.9, 0.0], [0.0, 0.0, 0.5]])
    acts = torch.rand(T, B, 1, generator=g) * 2 - 1
    obs, rew = [], []
    for t in range(T):
        obs.append(x)
        x = x @ rot.T + 0.5 * torch.cat([acts[t], torch.zeros_like(acts[t]), -acts[t]], -1)
        rew.append(-(x[:, 0] ** 2))
    return {"obs": torch.stack(obs), "action": acts, "reward": torch.stack(rew)}


def test_thirty_updates_halve_the_world_model_loss_on_a_deterministic_task():
    torch.manual_seed(0)
    # a larger model step size than table 16's 6e-4: a tiny model learns this in a few updates
    d = Dreamer((3,), 1, DreamerOptions(**{**TINY, "hidden_size": 32, "model_lr": 3e-3}))
    batch = linear_task()
    metrics = [d.update(batch) for _ in range(30)]
    fit = [m["obs_loss"] + m["reward_loss"] for m in metrics]
    assert fit[-1] < 0.5 * fit[0], fit  # measured: 3.14 -> 1.12


def test_the_actor_climbs_to_the_models_best_action():
    """One imagined step, discount 0, a frozen model (a vanishing model step size): the actor ascends r(s_1), so its
    mode reaches the best action of a grid search on the model (a wrong sign heads for the worst; no gradient
    through the dynamics leaves it where it started)."""
    from dream_mpc.noise import ImaginationNoise
    from dreamer.world_model import latent

    torch.manual_seed(0)
    opts = {**TINY, "imagination_horizon": 1, "discount": 0.0, "model_lr": 1e-12, "actor_lr": 1e-2}
    d = Dreamer((3,), 1, DreamerOptions(**opts))
    batch = linear_task()
    with torch.no_grad():
        d.reward_model.net[-1].weight.mul_(10)  # a reward that varies with the action
        post = d.rssm.observe(d.encoder(batch["obs"]), batch["action"])
    z = latent(post["h"].reshape(-1, TINY["belief_size"]), post["s"].reshape(-1, TINY["state_size"]))

    @torch.no_grad()
    def reward_of(a):  # the model's reward of the prior mean reached from each start
        return d.world_model.reward(d.world_model.step(z, a, noise=ImaginationNoise("mean").at(0))).squeeze(-1)

    grid = torch.stack([reward_of(torch.full((z.shape[0], 1), float(a))) for a in torch.linspace(-1, 1, 41)])
    best = float(grid.max(0).values.mean())
    start = float(reward_of(d.actor(z["h"], z["s"], deterministic=True)[0]).mean())
    for _ in range(20):
        d.update(batch)
    end = float(reward_of(d.actor(z["h"], z["s"], deterministic=True)[0]).mean())
    assert best - start > 0.02 and end > start + 0.9 * (best - start), (start, end, best)  # measured: 99 % of the gap


def square_video(T=8, B=4):
    """A white 16 x 16 square moving 4 pixels right a step on black, from a random start per sequence."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 16, (B,), generator=g)
    frames = torch.zeros(T, B, 3, 64, 64, dtype=torch.uint8)
    for t in range(T):
        for b in range(B):
            x = int(x0[b]) + 4 * t
            frames[t, b, :, 24:40, x : x + 16] = 255
    return {"obs": frames, "action": torch.ones(T, B, 1), "reward": torch.zeros(T, B)}


def test_thirty_updates_on_pixels_cut_the_reconstruction_error():
    torch.manual_seed(0)
    d = Dreamer((3, 64, 64), 1, DreamerOptions(**{**TINY, "embedding_size": 32, "model_lr": 3e-3}))
    batch = square_video()
    losses = [d.update(batch)["obs_loss"] for _ in range(30)]
    assert losses[-1] < 0.35 * losses[0], losses  # measured: 2852 -> 673


def test_a_zero_continuation_restarts_the_filter():
    """c_1 = 0: row 2 begins another episode, filtered from a zero state exactly as a chunk that starts there."""
    torch.manual_seed(0)
    d = Dreamer((3,), 1, DreamerOptions(**TINY))
    embeds, actions = torch.randn(5, 2, 16), torch.rand(5, 2, 1) * 2 - 1
    cont = torch.ones(5, 2)
    cont[1, 0] = 0.0  # only the first sequence ends at row 1
    with torch.no_grad():
        torch.manual_seed(3)
        post = d.rssm.observe(embeds, actions, cont)
        torch.manual_seed(3)
        for _ in range(2):  # the posterior draws of rows 0 and 1
            torch.randn(2, TINY["state_size"])
        fresh = d.rssm.observe(embeds[2:], actions[2:])
    assert torch.allclose(post["h"][2:, 0], fresh["h"][:, 0], atol=1e-6)
    assert not torch.allclose(post["h"][2:, 1], fresh["h"][:, 1], atol=1e-3)  # the other one carried on


def test_acting_filters_observations_as_training_does():
    """act() carried over T steps gives the beliefs of the training filter on the same observations and actions."""
    d = Dreamer((3,), 1, DreamerOptions(**TINY, eval_action="mean"))  # no draws between the filter's
    batch = linear_task(T=6, B=2)
    torch.manual_seed(7)
    state, hs, actions = d.initial_state(2), [], []
    for t in range(6):
        action, state = d.act(batch["obs"][t], state, explore=False)
        hs.append(state["h"])
        actions.append(action)
    torch.manual_seed(7)  # the same posterior draws
    with torch.no_grad():
        post = d.rssm.observe(d.encoder(batch["obs"]), torch.stack(actions))
    assert torch.allclose(post["h"], torch.stack(hs), atol=1e-6)
    assert not torch.allclose(post["h"][1], post["h"][2])


def test_a_checkpoint_restores_networks_and_optimisers():
    torch.manual_seed(0)
    d = Dreamer((3,), 1, DreamerOptions(**TINY))
    batch = linear_task(T=5, B=2)
    d.update(batch)
    e = Dreamer((3,), 1, DreamerOptions(**TINY))
    file = io.BytesIO()  # through a file, as a checkpoint goes (weights_only: no code runs on loading)
    torch.save(d.state_dict(), file)
    file.seek(0)
    e.load_state_dict(torch.load(file, weights_only=True))
    torch.manual_seed(1)
    one = d.update(batch)
    torch.manual_seed(1)
    two = e.update(batch)
    assert one == two  # the same step from the restored Adam moments


def test_options_have_table_16_defaults_and_reject_bad_values():
    o = DreamerOptions()
    assert (o.belief_size, o.state_size, o.hidden_size, o.embedding_size) == (200, 30, 200, 1024)
    assert (o.model_lr, o.actor_lr, o.value_lr, o.adam_eps, o.grad_clip_norm) == (6e-4, 8e-5, 8e-5, 1e-7, 100.0)
    assert (o.free_nats, o.bit_depth, o.discount, o.return_lambda, o.imagination_horizon) == (3.0, 5, 0.99, 0.95, 15)
    assert (o.batch_size, o.chunk_length, o.seed_episodes, o.collect_interval) == (50, 50, 5, 100)
    assert o.expl_noise == 0.3
    with pytest.raises(UserError, match="dreamer.free_nats_mode='clamp' is not allowed.*one of per_step, batch_mean"):
        options_.validate(DreamerOptions, {"free_nats_mode": "clamp"}, "dreamer.")
    with pytest.raises(UserError, match="dreamer.bit_depth=9 is not allowed"):
        options_.validate(DreamerOptions, {"bit_depth": 9}, "dreamer.")


def test_an_unsupported_observation_is_a_one_line_error():
    with pytest.raises(UserError, match=r"64x64 pixels, got an observation of shape \(3, 84, 84\)"):
        Dreamer((3, 84, 84), 1, DreamerOptions(**TINY))
    with pytest.raises(UserError, match="pixels or"):
        Dreamer((2, 3), 1, DreamerOptions(**TINY))


def test_acting_through_dream_mpc_at_the_appendix_d_settings():
    """Algorithm 3: 5 candidates x 1 iteration x horizon 15 on the lambda-return, from the filtered latent."""
    from dream_mpc import config
    from dream_mpc.planner import make_planner

    torch.manual_seed(0)
    d = Dreamer((3,), 1, DreamerOptions(**TINY))
    cfg = config.load(
        ["task=cartpole-swingup", "planner=dream", "dream.horizon=15", "dream.objective=lambda", "dream.lr=0.1"]
        + ["dream.uncertainty_coef=0", "device=cpu", "threads=1"]
    )
    planner = make_planner("dream", d.world_model, cfg, d.opt.discount)
    batch, state = linear_task(T=3, B=2), d.initial_state(2)
    for t in range(3):
        action, state = d.act(batch["obs"][t], state, explore=t < 2, planner=planner)
        assert action.shape == (2, 1) and torch.isfinite(action).all() and action.abs().max() <= 1
    assert planner.nonfinite_count == 0 and torch.equal(state["action"], action)
