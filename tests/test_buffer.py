"""The replay buffer: episode boundaries, obs/action/reward alignment, the ring, extra keys, write(), state_dict.

Episodes are synthetic: obs_t = (episode, t), the action taken at obs_t is (episode, t) too and its reward
100*episode + t, so every sampled value says which row it came from.
"""

import pytest
import torch

from dream_mpc.config import Config
from dream_mpc.training.buffer import Buffer

H = 3


def make_buffer(capacity=10_000, batch_size=256, episode_length=20):
    return Buffer(
        Config(
            buffer_size=capacity,
            steps=10**6,
            episode_length=episode_length,
            horizon=H,
            batch_size=batch_size,
            device="cpu",
        )
    )


def episode(ep, length, extras=False, as_list=False):
    """length+1 rows: the reset row (NaN action/reward/terminated), then one row per step."""
    t = torch.arange(length + 1, dtype=torch.float32)
    nan = torch.full((1,), float("nan"))
    out = {
        "obs": torch.stack([torch.full_like(t, ep), t], 1),
        "action": torch.cat([torch.full((1, 2), float("nan")), torch.stack([torch.full_like(t, ep), t], 1)[:-1]]),
        "reward": torch.cat([nan, 100 * ep + t[:-1]]),
        "terminated": torch.cat([nan, torch.zeros(length)]),
    }
    if extras:
        out["expert_value"] = torch.cat([nan, -(100 * ep + t[:-1])]).unsqueeze(1)
        out["expert_action_dist"] = torch.cat([out["action"], out["action"]], 1)
    if as_list:
        return [{k: v[i] for k, v in out.items()} for i in range(length + 1)]
    return out


def check_batch(batch):
    obs, action, reward = batch["obs"], batch["action"], batch["reward"]
    assert obs.shape == (H + 1, len(obs[0]), 2) and action.shape == (H, len(obs[0]), 2)
    assert reward.shape == batch["terminated"].shape == (H, len(obs[0]), 1)
    ep, t = obs[..., 0], obs[..., 1]
    assert (ep == ep[0]).all(), "a sub-trajectory crossed an episode boundary"
    assert (t[1:] - t[:-1] == 1).all()
    assert torch.equal(action, obs[:-1])  # action_t is the one taken at obs_t
    assert torch.equal(reward[..., 0], 100 * ep[:-1] + t[:-1])
    assert torch.isfinite(action).all() and torch.isfinite(reward).all()


def sampled_starts(buf, n=20):
    """The (episode, t) of the sub-trajectory starts seen in n batches."""
    return {tuple(x) for _ in range(n) for x in buf.sample()["obs"][0].tolist()}


def test_samples_stay_inside_episodes_and_are_aligned():
    buf = make_buffer()
    for ep, length in enumerate([4, 9, 2, 15]):  # episode 2 has 3 rows: too short for H+1 = 4
        buf.add(episode(ep, length, as_list=ep % 2 == 0))
    for _ in range(20):
        check_batch(buf.sample())
    assert {ep for ep, _ in sampled_starts(buf)} == {0.0, 1.0, 3.0}


def test_every_valid_start_is_sampled_uniformly():
    buf = make_buffer(batch_size=4000)
    buf.add(episode(0, 5))  # 6 rows: starts t=0,1,2
    buf.add(episode(1, 10))  # 11 rows: starts t=0..7
    batch = buf.sample()
    starts = batch["obs"][0]
    counts = {}
    for ep, t in starts.tolist():
        counts[(ep, t)] = counts.get((ep, t), 0) + 1
    assert set(counts) == {(0.0, t) for t in range(3)} | {(1.0, t) for t in range(8)}
    assert min(counts.values()) > 4000 / 11 * 0.7  # uniform over the 11 starts, not over the 2 episodes


def test_ring_overwrites_the_oldest_rows():
    buf = make_buffer(capacity=30, episode_length=12)
    for ep in range(7):
        buf.add(episode(ep, 8 + ep % 3))  # 9 to 11 rows: wraps several times
        check_batch(buf.sample())
    assert len(buf) == 30 and buf.num_episodes == 7
    eps = buf.sample()["obs"][0, :, 0].unique().tolist()
    assert set(eps) <= {4.0, 5.0, 6.0} and 6.0 in eps  # older episodes are gone, or only a cut suffix is left


def test_storage_grows_lazily():
    buf = make_buffer(capacity=1_000_000)
    buf.add(episode(0, 20))
    assert buf.capacity == 1_000_000 and len(buf) == 21
    assert buf.nbytes < 1000
    for ep in range(1, 5):
        buf.add(episode(ep, 20))
    assert len(buf) == 105
    check_batch(buf.sample())


def test_extra_keys_are_stored_sampled_and_rewritten():
    buf = make_buffer(batch_size=64)
    for ep in range(3):
        buf.add(episode(ep, 10, extras=True))
    batch, index = buf.sample(return_index=True)
    check_batch(batch)
    assert batch["expert_value"].shape == (H, 64, 1) and batch["expert_action_dist"].shape == (H, 64, 4)
    assert torch.equal(batch["expert_value"], -batch["reward"])  # aligned like action/reward
    assert torch.equal(batch["expert_action_dist"], torch.cat([batch["action"], batch["action"]], -1))
    assert index.shape == (H + 1, 64)
    # BMPC reanalysis writes new targets for the rows after the first of some sub-trajectories
    rows = index[1:, :5]
    buf.write(rows, "expert_value", torch.full((H, 5, 1), 7.0))
    stored = buf.state_dict()["fields"]
    assert (stored["expert_value"][rows.flatten()] == 7.0).all()
    assert (stored["expert_value"] == 7.0).sum() == rows.unique().numel()


def test_rgb_obs_keep_uint8():
    buf = make_buffer(batch_size=8)
    ep = episode(0, 10)
    ep["obs"] = torch.randint(0, 255, (11, 9, 64, 64), dtype=torch.uint8)
    buf.add(ep)
    batch = buf.sample()
    assert batch["obs"].dtype == torch.uint8 and batch["obs"].shape == (H + 1, 8, 9, 64, 64)
    assert batch["action"].dtype == torch.float32


def test_state_dict_round_trip_after_wrapping():
    buf = make_buffer(capacity=30, batch_size=200, episode_length=12)
    for ep in range(5):
        buf.add(episode(ep, 10))  # 55 rows through a 30-row ring
    same = make_buffer(capacity=30, batch_size=200, episode_length=12)
    same.load_state_dict(buf.state_dict())
    assert sampled_starts(same) == sampled_starts(buf)
    torch.manual_seed(0)
    expected = buf.sample()
    torch.manual_seed(0)
    got = same.sample()  # the same ring layout: the same draw gives the same rows (exact resume)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], equal_nan=True, rtol=0, atol=0)
    bigger = make_buffer(capacity=100, batch_size=200, episode_length=12)
    bigger.load_state_dict(buf.state_dict())
    assert len(bigger) == 30 and bigger.num_episodes == 5
    bigger.add(episode(5, 10))  # goes after the newest rows and overwrites nothing
    for _ in range(5):
        check_batch(bigger.sample())
    assert sampled_starts(bigger) == sampled_starts(buf) | {(5.0, t) for t in range(8)}
    same.add(episode(5, 10))
    buf.add(episode(5, 10))  # and both overwrite the same rows next
    assert sampled_starts(same) == sampled_starts(buf)


def test_episode_longer_than_the_buffer_is_an_error():
    buf = make_buffer(capacity=10, episode_length=5)
    with pytest.raises(Exception, match="does not fit"):
        buf.add(episode(0, 20))


def pixel_episode(ep, length, k=3):
    """Stacked frames as the pixel envs give them: frame t is 2 channels (episode, t) of 1x1 pixels, observation t
    the k frames ending at t, the first frame repeated before it."""
    frames = torch.stack([torch.tensor([[[ep % 256]], [[t % 256]]], dtype=torch.uint8) for t in range(length + 1)])
    obs = torch.stack([torch.cat([frames[max(t - j, 0)] for j in range(k - 1, -1, -1)]) for t in range(length + 1)])
    nan = torch.full((1,), float("nan"))
    return {
        "obs": obs,
        "action": torch.cat([torch.full((1, 1), float("nan")), torch.zeros(length, 1)]),
        "reward": torch.cat([nan, torch.zeros(length)]),
        "terminated": torch.cat([nan, torch.zeros(length)]),
    }


def check_stacks(obs, k=3):
    """Every sampled observation is k frames of one episode at steps max(t - j, 0)."""
    frames = obs.reshape(*obs.shape[:-3], k, 2)  # (..., k, [episode, t])
    ep, t = frames[..., 0].long(), frames[..., 1].long()
    assert (ep == ep[..., -1:]).all(), "a stack mixes episodes"
    expected = (t[..., -1:] - torch.arange(k - 1, -1, -1)).clamp(min=0)
    assert torch.equal(t, expected)


def test_stacked_frames_are_stored_once_and_restacked_exactly_across_the_ring():
    cfg = Config(buffer_size=70, steps=10**6, episode_length=20, horizon=H, batch_size=512, device="cpu")
    buf = Buffer(cfg, frame_stack=3)
    for ep in range(9):  # 21 rows each in a ring of 70: the oldest episode is cut in the middle, again and again
        buf.add(pixel_episode(ep, 20))
        assert buf._fields["obs"].shape[1:] == (2, 1, 1)  # one frame a row
        batch = buf.sample()
        assert batch["obs"].shape == (H + 1, 512, 6, 1, 1) and batch["obs"].dtype == torch.uint8
        check_stacks(batch["obs"])
    # through a state_dict into a smaller buffer: a kept suffix of a cut episode never restacks lost frames
    small = Buffer(Config(**{**vars(cfg), "buffer_size": 30}), frame_stack=3)
    small.load_state_dict(buf.state_dict())
    check_stacks(small.sample()["obs"])


def test_observations_that_are_not_stacked_frames_are_refused():
    buf = Buffer(
        Config(buffer_size=100, steps=100, episode_length=20, horizon=H, batch_size=4, device="cpu"), frame_stack=3
    )
    bad = pixel_episode(0, 20)
    bad["obs"][5, 0] += 1  # frame 3 of observation 5 differs from what observation 4 held
    with pytest.raises(ValueError, match="not 3 stacked frames"):
        buf.add(bad)


def test_a_real_pixel_episode_samples_back_bit_for_bit_and_1m_steps_fit_in_24_gb():
    from dream_mpc import config
    from dream_mpc.envs import make_env

    cfg = config.load(["task=cartpole-swingup", "obs=rgb", "steps=10000"])
    env = make_env(cfg)
    assert env.frame_stack == 3
    obs = [env.reset()]
    for _ in range(60):
        obs.append(env.step(env.rand_act())[0])
    obs = torch.stack(obs)
    episode = {
        "obs": obs,
        "action": torch.zeros(len(obs), 1),
        "reward": torch.zeros(len(obs)),
        "terminated": torch.zeros(len(obs)),
    }
    cfg.episode_length, cfg.batch_size = 60, 64
    buf = Buffer(cfg, frame_stack=env.frame_stack)
    buf.add(episode)
    batch, index = buf.sample(return_index=True)
    assert torch.equal(batch["obs"], obs[index])  # what the env gave, bit for bit
    per_step = buf.nbytes / len(buf)
    assert per_step * 1_000_000 < 24e9 and buf._fields["obs"][0].nbytes == 3 * 64 * 64
