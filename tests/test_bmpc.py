"""The BMPC agent (agent=bmpc): the imitation loss by hand (KL, running scale, entropy term), the model-based V
target, the buffer's expert fields and their alignment, lazy reanalysis (rows written, one batched plan, the acting
planner untouched), short real training runs with MPPI and Dream-MPC, and checkpoints (official layout round
trip, load_agent, evaluate.py, TD-MPC2 files asked for as agent=bmpc)."""

import functools
import math
import os
import warnings

os.environ.setdefault("MUJOCO_GL", "egl")  # before dm_control is imported: headless rendering

import pytest
import torch
from conftest import TINY, WORK_DIR

from dream_mpc import checkpoint, config, runtime
from dream_mpc.training.buffer import Buffer
from tdmpc2 import checkpoint as tdmpc2_ckpt
from tdmpc2 import layers
from tdmpc2.agent import TDMPC2
from tdmpc2.bmpc import BMPC, expert_targets, gaussian_kl
from tdmpc2.world_model import WorldModel

OBS, A = 5, 2
UNIT = [
    "task=cartpole-swingup",
    "agent=bmpc",
    "device=cpu",
    "threads=1",
    "fused=false",
    "mlp_dim=16",
    "latent_dim=8",
    "enc_dim=16",
    "num_samples=16",
    "num_elites=4",
    "num_pi_trajs=4",
    "iterations=1",
    "batch_size=8",
]
TRAIN = [
    *TINY,
    "agent=bmpc",
    "fused=false",
    "num_samples=64",
    "num_elites=8",
    "iterations=2",
    "batch_size=32",
    "steps=600",
    "eval_freq=100000",
    "save_freq=0",
]
METRICS = ("consistency_loss", "reward_loss", "value_loss", "total_loss", "grad_norm")
PI_METRICS = ("pi_loss", "pi_grad_norm", "pi_entropy", "pi_scaled_entropy", "pi_scale", "pi_log_std")


# ---------------------------------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """threads=1 (as the config's): on a shared machine a second, spinning thread makes tiny ops 100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def unit_cfg(*overrides):
    return config.set_env_dims(config.load([*UNIT, *overrides]), (OBS,), A, 500)


@torch.no_grad()
def perturb(model, seed=0):
    """Random weights everywhere (zero-initialised heads would make rewards and values 0), target != online."""
    torch.manual_seed(seed)
    for name, t in model.state_dict(keep_vars=True).items():
        if t.is_floating_point():
            t.normal_(0, 0.3)
    return model


def unit_agent(*overrides, seed=0):
    agent = BMPC(unit_cfg(*overrides))
    perturb(agent.model, seed)
    return agent


def episode(length, seed, agent=None):
    """length+1 buffer rows as the trainer writes them: random obs; NaN targets on the reset row and seed steps
    (the first 3 steps), a marker otherwise (mean = 10 + step, std = 0.5, value = -step)."""
    g = torch.Generator().manual_seed(seed)
    nan = float("nan")
    t = torch.arange(length + 1, dtype=torch.float32)
    dist = torch.cat([(10 + t - 1).unsqueeze(1).expand(-1, A), torch.full((length + 1, A), 0.5)], 1)
    value = (1 - t).unsqueeze(1)
    dist[:4], value[:4] = nan, nan
    return {
        "obs": torch.randn(length + 1, OBS, generator=g),
        "action": torch.cat([torch.full((1, A), nan), torch.rand(length, A, generator=g) * 2 - 1]),
        "reward": torch.cat([torch.full((1,), nan), torch.rand(length, generator=g)]),
        "terminated": torch.cat([torch.full((1,), nan), torch.zeros(length)]),
        "expert_action_dist": dist,
        "expert_value": value,
    }


def filled_buffer(cfg, episodes=3, length=12):
    buf = Buffer(cfg)
    for i in range(episodes):
        buf.add(episode(length, seed=i))
    return buf


def snapshot(buf):
    return {k: v.clone() for k, v in buf.state_dict()["fields"].items()}


# ---------------------------------------------------------------------------------------------------- the loss
def test_gaussian_kl_per_dimension_closed_form():
    # KL(N(m1, s1^2) || N(m2, s2^2)) = log(s2 / s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2, by hand
    m1, s1 = torch.tensor([0.5, -0.2, 0.3]), torch.tensor([0.5, 0.3, 0.7])
    m2, s2 = torch.tensor([0.0, 0.4, 0.3]), torch.tensor([1.0, 0.1, 0.7])
    expected = torch.tensor([math.log(2) + 0.5 / 2 - 0.5, math.log(1 / 3) + (0.09 + 0.36) / 0.02 - 0.5, 0.0])
    torch.testing.assert_close(gaussian_kl(m1, s1, m2, s2), expected)
    # the direction is policy first, expert second (not symmetric), and it matches torch.distributions
    torch.manual_seed(0)
    a, b, c, d = torch.randn(4, 6, 3)
    p, q = torch.distributions.Normal(a, b.exp()), torch.distributions.Normal(c, d.exp())
    torch.testing.assert_close(gaussian_kl(a, b.exp(), c, d.exp()), torch.distributions.kl_divergence(p, q))
    assert not torch.allclose(gaussian_kl(a, b.exp(), c, d.exp()), gaussian_kl(c, d.exp(), a, b.exp()))


def pi_info(means, scaled_entropy):
    """A policy output with std 1 and the given means (H, B) in both action dims."""
    mean = means.unsqueeze(-1).expand(*means.shape, A).clone()
    return {"mean": mean, "log_std": torch.zeros_like(mean), "scaled_entropy": scaled_entropy.unsqueeze(-1)}


def test_policy_loss_and_scale_by_hand():
    agent = unit_agent("entropy_coef=0.1")
    assert agent.scale.value.item() == 1.0 and agent.cfg.rho == 0.5 and agent.cfg.tau == 0.01
    # expert N(0, 1), policy N(m, 1): KL per dim = m^2 / 2; t=0 slice [0, 2, 10], t=1 slice [0.5, 0.5, 0.5]
    means = torch.tensor([[0.0, 2.0, math.sqrt(20.0)], [1.0, 1.0, 1.0]])
    ent = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    expert = torch.cat([torch.zeros(2, 3, A), torch.ones(2, 3, A)], -1)
    loss, kl = agent.policy_loss(pi_info(means, ent), expert)
    torch.testing.assert_close(kl.squeeze(-1), torch.tensor([[0.0, 2.0, 10.0], [0.5, 0.5, 0.5]]))
    # percentiles of [0, 2, 10] (linear): P5 = 0.2, P95 = 9.2; S = lerp(1, max(9.0, 1), 0.01) = 1.08
    assert agent.scale.value.item() == pytest.approx(1.08, abs=1e-6)
    # mean over t of rho^t * mean over the batch of (kl / S - 0.1 * scaled entropy)
    expected = ((4 / 1.08 - 0.1 * 2) + 0.5 * (0.5 / 1.08 - 0.1 * 5)) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    agent.policy_loss(pi_info(means, ent), expert)  # the EMA moves on: 1.08 + 0.01 (9 - 1.08)
    assert agent.scale.value.item() == pytest.approx(1.1592, abs=1e-6)
    small = torch.tensor([[0.0, 0.1, 0.2], [0.0, 0.0, 0.0]])  # range < 1: the target value is 1
    agent.policy_loss(pi_info(small, ent), expert)
    assert agent.scale.value.item() == pytest.approx(1.1592 + 0.01 * (1 - 1.1592), abs=1e-6)


def test_entropy_term():
    agent = unit_agent("entropy_coef=0.1")
    z = agent.model.encode(torch.randn(4, OBS))
    torch.manual_seed(3)
    _, info = agent.model.pi(z)
    torch.manual_seed(3)
    eps = torch.randn(4, A)
    # BMPC: -log N(eps * std; 0, std) summed over dims; the scaled entropy multiplies it by the action dims
    entropy = (0.5 * eps.pow(2) + info["log_std"] + 0.5 * math.log(2 * math.pi)).sum(-1, keepdim=True)
    torch.testing.assert_close(info["entropy"], entropy)
    torch.testing.assert_close(info["scaled_entropy"], A * entropy)
    # d pi_loss / d scaled_entropy[t, b] = -entropy_coef * rho^t / (H * B): more entropy, lower loss
    ent = torch.randn(2, 3, requires_grad=True)
    expert = torch.cat([torch.zeros(2, 3, A), torch.ones(2, 3, A)], -1)
    loss, _ = agent.policy_loss(pi_info(torch.zeros(2, 3), ent), expert)
    loss.backward()
    expected = -0.1 * torch.tensor([[1.0], [0.5]]).expand(2, 3) / 6
    torch.testing.assert_close(ent.grad, expected)
    assert loss.item() == pytest.approx(-(0.1 * ent[0].mean() + 0.05 * ent[1].mean()).item() / 2, abs=1e-6)


def test_expert_targets_read_nan_as_standard_normal():
    dist = torch.tensor([[0.3, float("nan"), 0.2, float("nan")], [float("nan")] * 4])
    assert torch.equal(expert_targets(dist), torch.tensor([[0.3, 0.0, 0.2, 1.0], [0.0, 0.0, 1.0, 1.0]]))


# ---------------------------------------------------------------------------------------------------- V target
def test_v_target_is_a_model_based_policy_step():
    agent = unit_agent()
    m, gamma = agent.model, agent.discount
    assert agent.cfg.td_horizon == 1 and agent.cfg.num_q == 2 and gamma == pytest.approx(0.99)
    zs = m.encode(torch.randn(3, 4, OBS))
    torch.manual_seed(7)
    target = agent.td_target(zs)
    with torch.no_grad():
        torch.manual_seed(7)
        a = m.pi(zs)[0]  # the same sampled action
        r = m.twohot.decode(m.reward(zs, a))  # predicted, not the real reward
        v = m.twohot.decode(m.V(m.next(zs, a), return_type="all", target=True))  # both target heads
        manual = r + gamma * (v[0] + v[1]) / 2
    assert target.shape == (3, 4, 1) and r.abs().min() > 0 and (v[0] != v[1]).all()
    torch.testing.assert_close(target, manual)


def test_update_uses_the_v_target_and_skips_the_policy_in_pretraining():
    agent = unit_agent()
    buf = filled_buffer(agent.cfg)
    batch = buf.sample()
    seen = []
    losses = agent.world_model_losses
    agent.world_model_losses = lambda *args: seen.append(args) or losses(*args)
    obs, expert = batch["obs"], expert_targets(batch["expert_action_dist"])
    with torch.no_grad():
        true_zs = agent.model.encode(obs)
        torch.manual_seed(11)
        td = agent.td_target(true_zs[:-1])
    pi_before = [p.clone() for p in agent.model._pi.parameters()]
    target_before = [t.clone() for t in agent.model._target_Qs_params.buffers()]
    torch.manual_seed(11)
    metrics = agent._update(
        obs, batch["action"], batch["reward"], batch["terminated"], expert_action_dist=expert, pretrain=True
    )
    torch.testing.assert_close(seen[0][6], td)  # td_targets: from the encoder latents of obs[:-1]
    torch.testing.assert_close(seen[0][5], true_zs[1:])  # next_z: the encoder latents of obs[1:]
    assert set(metrics) == set(METRICS)
    assert all(torch.equal(a, b) for a, b in zip(pi_before, agent.model._pi.parameters()))
    assert not any(torch.equal(a, b) for a, b in zip(target_before, agent.model._target_Qs_params.buffers()))
    metrics = agent._update(obs, batch["action"], batch["reward"], batch["terminated"], expert_action_dist=expert)
    assert set(metrics) == set(METRICS + PI_METRICS) and all(math.isfinite(v) for v in metrics.values())
    assert not any(torch.equal(a, b) for a, b in zip(pi_before, agent.model._pi.parameters()))


# ---------------------------------------------------------------------------------------------------- buffer fields
@pytest.mark.parametrize("planner", ["mppi", "policy"])
def test_buffer_extras_hold_the_last_plan(planner):
    agent = unit_agent(f"planner={planner}")
    nan = agent.buffer_extras(planned=False)
    assert nan["expert_action_dist"].shape == (2 * A,) and nan["expert_value"].shape == (1,)
    assert torch.isnan(nan["expert_action_dist"]).all() and torch.isnan(nan["expert_value"]).all()
    obs = torch.randn(OBS)
    agent.act(obs, t0=True)
    info = agent.last_plan_info
    row = agent.buffer_extras(planned=True)
    assert torch.equal(row["expert_action_dist"], torch.cat([info["mean"][0], info["std"][0]]))
    assert torch.equal(row["expert_value"], info["value"][0])
    if planner == "policy":  # acting with the policy alone: the target is the policy's own mean and std
        with torch.no_grad():
            _, pi = agent.model.pi(agent.model.encode(obs.unsqueeze(0)))
        torch.testing.assert_close(row["expert_action_dist"], torch.cat([pi["mean"][0], pi["log_std"][0].exp()]))
    else:  # MPPI: the Gumbel-selected elite's first action with MPPI's std[0]
        assert (row["expert_action_dist"][A:] >= agent.cfg.min_std).all()


# ---------------------------------------------------------------------------------------------------- reanalysis
def test_reanalyze_writes_exactly_the_aligned_rows_in_one_batched_plan():
    agent = unit_agent("batch_size=16", "bmpc.reanalyze_batch_size=5")
    H, b = agent.cfg.horizon, 5
    buf = filled_buffer(agent.cfg, episodes=4)
    batch, index = buf.sample(return_index=True)
    batch_before = {k: v.clone() for k, v in batch.items()}
    before = snapshot(buf)
    calls = []

    def reanalyze(z, task=None, horizon=None):
        """A fake planner whose targets are a function of the latent, so every row says where it came from."""
        calls.append(dict(z=z.clone(), horizon=horizon))
        return z[:, :A].clone(), {"mean": z[:, :A], "std": z[:, A : 2 * A] + 1, "value": z.sum(-1, keepdim=True)}

    agent.planner.reanalyze = reanalyze
    agent.reanalyze(buf, batch, index)
    assert len(calls) == 1
    call = calls[0]
    assert call["z"].shape == (H * b, agent.cfg.latent_dim)
    assert call["horizon"] == 3  # the reanalysis entry, with BMPC's replanning horizon
    with torch.no_grad():
        torch.testing.assert_close(call["z"], agent.model.encode(batch["obs"][:H, :b].reshape(H * b, OBS)))
    after = snapshot(buf)
    rows = index[1:, :b]
    for t in range(H):  # the plan made at obs_t lands in the row that follows it
        for j in range(b):
            with torch.no_grad():
                z = agent.model.encode(after["obs"][index[t, j]])
            torch.testing.assert_close(after["expert_action_dist"][rows[t, j]], torch.cat([z[:A], z[A : 2 * A] + 1]))
            assert after["expert_value"][rows[t, j]].item() == pytest.approx(z.sum().item(), abs=1e-6)
    untouched = torch.ones(len(after["obs"]), dtype=torch.bool)
    untouched[rows.flatten()] = False
    for key in before:
        torch.testing.assert_close(after[key][untouched], before[key][untouched], rtol=0, atol=0, equal_nan=True)
    assert torch.equal(after["obs"], before["obs"])
    # the batch carries the new targets for the first b sequences, the old ones for the others
    new = call["z"].view(H, b, -1)
    torch.testing.assert_close(
        batch["expert_action_dist"][:, :b], torch.cat([new[..., :A], new[..., A : 2 * A] + 1], -1)
    )
    torch.testing.assert_close(batch["expert_value"][:, :b], new.sum(-1, keepdim=True))
    for key in ("expert_action_dist", "expert_value"):
        torch.testing.assert_close(batch[key][:, b:], batch_before[key][:, b:], equal_nan=True)


@pytest.mark.parametrize("planner, dtype", [("mppi", "float32"), ("dream", "float32"), ("dream", "bfloat16")])
def test_reanalyze_leaves_the_acting_planner_alone(planner, dtype):
    agent = unit_agent(f"planner={planner}", "bmpc.reanalyze_batch_size=4", f"planning_dtype={dtype}")
    buf = filled_buffer(agent.cfg)
    for t in range(3):  # acting builds the warm-start state
        agent.act(torch.randn(OBS), t0=t == 0)
    state = {k: v.clone() for k, v in vars(agent.planner).items() if torch.is_tensor(v)}
    assert state  # MPPI: _prev_mean; Dream-MPC: _prev
    real = agent.planner.plan
    calls = []

    @functools.wraps(real)
    def counted(*args, **kwargs):  # what the planner sees while it plans
        p = agent.planner
        calls.append(dict(kwargs, reanalyzing=p.reanalyzing, horizon=p.reanalysis_horizon))
        return real(*args, **kwargs)

    agent.planner.plan = counted
    batch, index = buf.sample(return_index=True)
    before = snapshot(buf)
    agent.reanalyze(buf, batch, index)
    assert len(calls) == 1 and calls[0]["reanalyzing"] and calls[0]["t0"] and calls[0]["horizon"] == 3
    assert not agent.planner.reanalyzing and agent.planner.reanalysis_horizon is None  # acting again
    for k, v in state.items():
        assert torch.equal(getattr(agent.planner, k), v), k
    after = snapshot(buf)
    rows = index[1:, :4].flatten()
    assert torch.isfinite(after["expert_action_dist"][rows]).all() and torch.isfinite(after["expert_value"][rows]).all()
    assert after["expert_action_dist"].dtype == after["expert_value"].dtype == torch.float32
    std = after["expert_action_dist"][rows][:, A:]
    assert (std >= agent.cfg.min_std - 1e-6).all() and (std <= agent.cfg.max_std + 1e-6).all()
    changed = (after["expert_value"].nan_to_num(1e9) != before["expert_value"].nan_to_num(1e9)).squeeze(1)
    assert set(changed.nonzero().flatten().tolist()) <= set(rows.tolist())


def test_reanalysis_schedule():
    agent = unit_agent("bmpc.reanalyze_interval=10")
    buf = filled_buffer(agent.cfg)
    calls = []
    real = agent.reanalyze
    agent.reanalyze = lambda *args: calls.append(agent.update_count) or real(*args)
    for _ in range(5):
        metrics = agent.update(buf, pretrain=True)
    assert agent.update_count == 0 and not calls and "pi_loss" not in metrics
    for _ in range(25):
        metrics = agent.update(buf)
    assert calls == [10, 20] and agent.update_count == 25 and agent.reanalyze_count == 2
    assert set(metrics) == set(METRICS + PI_METRICS)
    assert agent.state_dict()["update_count"] == 25


# ---------------------------------------------------------------------------------------------------- training
def train(tmp_path_factory, planner):
    """600 steps: 200 random, the first episode's end at step 500 brings 200 pretraining updates, then one
    update per step (reanalysis every 10th)."""
    from dream_mpc.envs import make_env
    from dream_mpc.training.logger import Logger
    from dream_mpc.training.trainer import OnlineTrainer

    cwd = tmp_path_factory.mktemp(f"bmpc-{planner}")
    old, fused = os.getcwd(), layers._fused["enabled"]
    os.chdir(cwd)  # work_dir is <cwd>/logs/...
    try:
        cfg = config.load([*TRAIN, f"planner={planner}"])
        runtime.setup(cfg)
        env = make_env(cfg)
        cfg.seed_steps = 200
        agent = BMPC(cfg)
        buffer = Buffer(cfg)
        updates, written = [], []
        update, write = agent.update, buffer.write
        agent.update = lambda buf, **kw: updates.append((kw, update(buf, **kw))) or updates[-1][1]
        buffer.write = lambda index, key, values: written.append(index.clone()) or write(index, key, values)
        OnlineTrainer(cfg, env, agent, buffer, Logger(cfg)).train()
    finally:
        os.chdir(old)
        layers.set_fused_activation(fused)
    return cwd / WORK_DIR, agent, buffer, updates, written


@pytest.fixture(scope="module")
def trained_mppi(tmp_path_factory):
    return train(tmp_path_factory, "mppi")


def check_run(run):
    work_dir, agent, buffer, updates, written = run
    pre = [m for kw, m in updates if kw.get("pretrain")]
    post = [m for kw, m in updates if not kw.get("pretrain")]
    assert len(pre) == 200 and len(post) == 100 and len(updates) == 300
    assert all(set(m) == set(METRICS) for m in pre) and all(set(m) == set(METRICS + PI_METRICS) for m in post)
    assert all(math.isfinite(v) for _, m in updates for v in m.values())
    first = sum(m["total_loss"] for m in pre[:20]) / 20
    last = sum(m["total_loss"] for m in post[-50:]) / 50
    assert last < 0.5 * first, (first, last)
    for key in ("reward_loss", "value_loss"):
        assert sum(m[key] for m in post[-50:]) / 50 < 0.7 * sum(m[key] for m in pre[:20]) / 20, key
    assert agent.update_count == 100 and agent.reanalyze_count == 10 and len(written) == 20
    # the stored targets (one episode of 501 rows: the reset row, then one per step): NaN on the reset row and
    # after seed steps unless reanalysed, finite after planned steps
    fields = buffer.state_dict()["fields"]
    dist, value, act_dim = fields["expert_action_dist"], fields["expert_value"], agent.cfg.action_dim
    assert dist.shape == (501, 2 * act_dim) and value.shape == (501, 1)
    reanalysed = torch.zeros(len(dist), dtype=torch.bool)
    reanalysed[torch.cat([w.flatten() for w in written])] = True
    assert not reanalysed[0] and torch.isnan(dist[0]).all() and torch.isnan(value[0]).all()
    seed_rows = torch.arange(1, 202)  # steps 0..200 act randomly (planning starts after seed_steps)
    assert torch.isnan(dist[seed_rows][~reanalysed[seed_rows]]).all()
    assert torch.isfinite(dist[seed_rows][reanalysed[seed_rows]]).all()
    assert torch.isfinite(dist[202:]).all() and torch.isfinite(value[202:]).all()
    assert (dist[202:, act_dim:] > 0).all()  # stds
    return first, last


def test_training_with_mppi(trained_mppi):
    check_run(trained_mppi)


def test_training_with_dream(tmp_path_factory):
    check_run(train(tmp_path_factory, "dream"))


# ---------------------------------------------------------------------------------------------------- checkpoints
@torch.no_grad()
def outputs(agent, seed=5):
    m = agent.model
    torch.manual_seed(seed)
    obs = torch.randn(4, m.cfg.obs_shape["state"][0])
    a = torch.rand(4, m.cfg.action_dim) * 2 - 1
    z = m.encode(obs)
    out = {
        "z": z,
        "next": m.next(z, a),
        "reward": m.reward(z, a),
        "pi": m.pi(z)[0],
        "pi_expl": m.pi(z, expl=True)[0],
        "v": m.V(z, return_type="all"),
        "v_target": m.V(z, return_type="all", target=True),
    }
    torch.manual_seed(seed)
    out["act"] = agent.act(obs[0], t0=True, eval_mode=True)
    return out


def test_official_layout_round_trip(trained_mppi, tmp_path):
    work_dir, agent, *_ = trained_mppi
    final = work_dir / "models" / "final.pt"
    obj = checkpoint.read(final)
    assert {"expl_log_std_min", "expl_log_std_dif", "_detach_Qs_params.0.weight"} <= set(obj["model"])
    assert (int(obj["model"]["expl_log_std_min"]), int(obj["model"]["expl_log_std_dif"])) == (-2, 3)
    assert obj["model"]["_Qs.params.0.weight"].shape == (2, 64, 32)  # two V heads on z alone
    expected = outputs(agent)
    loaded = checkpoint.load_agent(final, device="cpu")  # our file: task and config from the file
    assert isinstance(loaded, BMPC) and loaded.cfg.planner == "mppi" and loaded.checkpoint_info["agent"] == "bmpc"
    assert loaded.update_count == agent.update_count and torch.equal(loaded.scale.value, agent.scale.value)
    got = outputs(loaded)
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    # the bare official layout (as the official code saves it): the same model
    torch.save({"model": obj["model"]}, tmp_path / "cartpole-swingup-1.pt")
    bare = checkpoint.load_agent(tmp_path / "cartpole-swingup-1.pt", device="cpu", overrides=["fused=false"])
    assert isinstance(bare, BMPC) and bare.checkpoint_info["task_source"] == "file name"
    for key, value in outputs(bare).items():
        if key != "act":  # the planner settings are the defaults here, not the tiny ones
            assert torch.equal(value, expected[key]), key


@pytest.mark.parametrize("planner", ["mppi", "dream", "policy"])
def test_evaluate_a_bmpc_checkpoint(trained_mppi, planner, capsys, tmp_path):
    import evaluate

    final = trained_mppi[0] / "models" / "final.pt"
    evaluate.main([*TRAIN, f"checkpoint={final}", f"planner={planner}", f"results_dir={tmp_path / 'results'}"])
    out = capsys.readouterr().out
    assert f"cartpole-swingup planner={planner}: return" in out and "over 1 episodes" in out


def test_train_py_with_the_policy_planner(tmp_path, monkeypatch):
    import train

    monkeypatch.chdir(tmp_path)
    fused = layers._fused["enabled"]
    try:
        train.main([*TRAIN, "planner=policy", "seed_steps=200"])
    finally:
        layers.set_fused_activation(fused)
    agent = checkpoint.load_agent(tmp_path / WORK_DIR / "models" / "final.pt", device="cpu")
    assert isinstance(agent, BMPC) and agent.cfg.planner == "policy" and agent.update_count == 100
    assert agent.reanalyze_count == 10 and agent.scale.value.item() >= 1.0


def test_tdmpc2_files_asked_for_as_bmpc_load_as_tdmpc2(tmp_path):
    cfg = config.set_env_dims(
        config.load(["task=walker-walk", "device=cpu", "mlp_dim=16", "latent_dim=8", "enc_dim=16", "num_q=3"]),
        (24,),
        6,
        500,
    )
    model = perturb(WorldModel.of(cfg).eval())
    sd = tdmpc2_ckpt.official_state_dict(model)
    torch.save({"model": sd}, tmp_path / "q.pt")
    with pytest.warns(UserWarning, match="agent=bmpc is ignored"):
        agent = checkpoint.load_agent(
            tmp_path / "q.pt",
            task="walker-walk",
            env_dims=(24, 6),
            device="cpu",
            overrides=["agent=bmpc", "planner=dream"],
        )
    assert type(agent) is TDMPC2 and agent.cfg.agent == "tdmpc2" and agent.cfg.planner == "dream"
    assert (agent.cfg.num_q, agent.cfg.log_std_min, agent.cfg.log_std_max) == (3, -10, 2)
    for k, v in model.state_dict().items():
        assert torch.equal(agent.model.state_dict()[k], v), k
    # a Q-headed file written by the BMPC / Dream-MPC code for a TD-MPC2 run carries unused expl_log_std_* buffers
    torch.save(
        {"model": {**sd, "expl_log_std_min": torch.tensor(-2), "expl_log_std_dif": torch.tensor(3)}},
        tmp_path / "q_expl.pt",
    )
    with pytest.warns(UserWarning, match="expl_log_std_\\* buffers"):
        agent = checkpoint.load_agent(tmp_path / "q_expl.pt", task="walker-walk", env_dims=(24, 6), device="cpu")
    assert type(agent) is TDMPC2 and "expl_log_std_min" not in agent.model.state_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(agent.model.state_dict()[k], v), k
    with warnings.catch_warnings():  # a plain TD-MPC2 file without agent=bmpc: no warning
        warnings.simplefilter("error")
        assert (
            type(checkpoint.load_agent(tmp_path / "q.pt", task="walker-walk", env_dims=(24, 6), device="cpu")) is TDMPC2
        )
