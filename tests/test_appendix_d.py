"""The paper's appendix D as the paper ran it: the Dreamer family's planner defaults (table 16), the user's overrides
on top, DreamerV1's evaluation action, eq. 15's action noise, eq. 16's per-candidate imagination noise, PlaNet's
plain reward sum, and one 64x64 frame per Dreamer observation (a 1M-step pixel buffer measured below 24 GB)."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dream_mpc import cli, config
from dream_mpc.checkpoint.configs import saved_overrides
from dream_mpc.noise import ImaginationNoise
from dream_mpc.planners.cem import CEMPlanner
from dream_mpc.planners.dream import DreamMPCPlanner
from dreamer.actor import TanhGaussianActor
from tests.toy_models import IntegratorModel

ROOT = Path(__file__).resolve().parents[1]
DREAMER = ["agent=dreamer", "task=cheetah-run", "obs=rgb"]


def test_dreamer_plans_at_table_16_and_tdmpc2_at_the_papers_main_settings():
    d = config.load(DREAMER)
    assert (d.dream.num_candidates, d.dream.iterations, d.dream.horizon, d.dream.lr) == (5, 1, 15, 0.1)
    assert (d.dream.objective, d.dream.action_noise, d.dream.reuse, d.dream.grad_clip_norm) == ("lambda", 0.2, 0.1, 100)
    assert d.dream.imagination == "independent" and d.dream.proposal == "shared"
    assert (d.hybrid.num_candidates, d.hybrid.iterations, d.hybrid.lr, d.hybrid.horizon) == (1, 10, 0.05, 1)
    assert (d.grad.num_candidates, d.grad.iterations, d.grad.horizon) == (1000, 10, 12)
    assert (d.cem.num_candidates, d.cem.iterations, d.cem.top_k, d.cem.horizon) == (1000, 10, 100, 12)
    assert not d.cem.terminal_value and not d.cem.discounted  # PlaNet: the plain sum of rewards
    t = config.load(["task=cheetah-run"])
    assert (t.dream.horizon, t.dream.objective, t.dream.action_noise, t.dream.uncertainty_coef) == (
        3,
        "return",
        0,
        0.01,
    )
    assert t.cem.discounted and t.dream.grad_clip_norm == 20


def test_a_dreamer_run_plans_with_dream_mpc_unless_told_otherwise():
    assert config.load(DREAMER).planner == "dream" and config.load(["task=cheetah-run"]).planner == "mppi"
    assert config.load([*DREAMER, "planner=policy"]).planner == "policy"


def test_the_command_line_wins_over_the_familys_defaults():
    d = config.load([*DREAMER, "dream.horizon=7", "cem.discounted=true"])
    assert d.dream.horizon == 7 and d.cem.discounted and d.dream.action_noise == 0.2


def test_a_file_saves_only_what_differs_from_its_familys_defaults():
    d = config.load([*DREAMER, "dream.lr=0.3"])
    saved = saved_overrides(d.to_dict())
    assert saved.get("dream.lr") == 0.3
    assert not any(k.startswith(("cem.", "grad.", "hybrid.")) for k in saved)  # table 16's values are no choices
    assert "dream.horizon" not in saved


def test_cfg_job_shows_the_effective_planner_settings():
    out = subprocess.run(
        [sys.executable, "train.py", *DREAMER, "--cfg", "job"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    block = out.stdout.split("\ndream:\n", 1)[1]
    assert "  horizon: 15\n" in block and "  objective: lambda\n" in block and "  action_noise: 0.2\n" in block


def _tanh_gaussian_mode(m, s):
    """The most likely action of a = tanh(u), u ~ N(m, s^2): the root of -(u - m) / s^2 + 2 tanh(u) (unimodal)."""
    lo, hi = -5.0, 5.0
    f = lambda u: -(u - m) / s**2 + 2 * math.tanh(u)  # noqa: E731
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
    return math.tanh(lo)


def test_the_evaluation_action_is_the_most_likely_of_the_samples():
    actor = TanhGaussianActor(4, 1, 8)
    mean, std = torch.full((3, 1), 0.3), torch.full((3, 1), 0.5)
    g = torch.Generator().manual_seed(0)
    mode = actor.deterministic(mean, std, "mode", samples=20000, generator=g)
    expected = _tanh_gaussian_mode(0.3, 0.5)  # 0.50, far from tanh(0.3) = 0.29
    torch.testing.assert_close(mode, torch.full((3, 1), expected), atol=0.02, rtol=0)
    torch.testing.assert_close(actor.deterministic(mean, std, "mean"), torch.tanh(mean))
    assert abs(expected - math.tanh(0.3)) > 0.15
    sample = actor.deterministic(mean, std, "sample", generator=g)
    assert sample.shape == (3, 1) and not torch.equal(sample[0], sample[1])


def test_the_evaluation_rule_is_part_of_an_evaluation_jobs_identity():
    from dream_mpc.registry import agents

    cfg = config.load([*DREAMER, "dreamer.belief_size=8", "dreamer.state_size=4", "dreamer.hidden_size=8"])
    cfg.dreamer.embedding_size, cfg.dreamer.cnn_depth = 32, 2
    config.set_env_dims(cfg, (3, 64, 64), 6, 500)
    agent = agents.get("dreamer")(cfg)
    assert agent.acting_options() == {"dreamer.eval_action": "mode"}


def _dream(model, *overrides):
    cfg = config.load(["task=cartpole-swingup", "threads=1", "dream.uncertainty_coef=0", *overrides])
    return DreamMPCPlanner(model, cfg, 0.9)


def test_a_shared_proposal_with_action_noise_gives_candidates_spread_by_sigma_a():
    model = IntegratorModel(dim=1, goal=0.0)  # policy tanh(goal - z): 0 at z = 0, no exploration noise
    z = torch.zeros(1, 1)
    same = _dream(model, "dream.proposal=shared", "dream.num_candidates=4000").policy_candidates(z, None)
    assert same.std(0).max() == 0  # one rollout, repeated
    torch.manual_seed(0)
    noisy = _dream(model, "dream.proposal=shared", "dream.num_candidates=4000", "dream.action_noise=0.2")
    a = noisy.policy_candidates(z, None)
    assert a.shape == (4000, 3, 1) and abs(float(a.std()) - 0.2) < 0.01 and abs(float(a.mean())) < 0.01


def test_independent_imagination_gives_every_candidate_its_own_draws_kept_across_passes():
    independent, common = ImaginationNoise("independent", latents=2), ImaginationNoise("sample", latents=2)
    first = independent.normal(0, (6, 3))
    assert torch.equal(first, independent.normal(0, (6, 3)))  # the gradient and scoring passes: the same draws
    assert len({tuple(r.tolist()) for r in first}) == 6
    shared = common.normal(0, (6, 3))
    assert torch.equal(shared[0], shared[2]) and not torch.equal(shared[0], shared[3])  # grouped by start latent


def test_cem_without_discount_maximises_the_plain_sum_of_rewards():
    """z' = z + a, r = -a^2 + z (read at z_t), H = 2 from z = 0: the plain sum -a0^2 + a0 - a1^2 peaks at a0 = 1/2;
    discounted by 0.9 it peaks at a0 = 0.45."""
    model = IntegratorModel(dim=1, u=1.0)
    z = torch.zeros(1, 1)
    for discounted, best in (("false", 0.5), ("true", 0.45)):
        torch.manual_seed(0)
        cfg = config.load(["task=cartpole-swingup", "cem.horizon=2", "cem.terminal_value=false"])
        cfg.cem.discounted = discounted == "true"
        action, _ = CEMPlanner(model, cfg, 0.9).plan(z, t0=True, eval_mode=True)
        assert abs(float(action) - best) < 0.02, (discounted, float(action))


def test_dreamer_reads_one_frame_and_a_1m_step_pixel_buffer_fits_in_24_gb():
    """A real cartpole episode from pixels in the buffer of the Dreamer family: bytes per step measured."""
    from dream_mpc.envs import make_env
    from dream_mpc.registry import agents
    from dream_mpc.training.buffer import Buffer

    cfg = config.load(["agent=dreamer", "task=cartpole-swingup", "obs=rgb", "steps=10000"])
    assert cfg.frame_stack == 1 and config.load(["task=cartpole-swingup", "obs=rgb"]).frame_stack == 3
    env = make_env(cfg)
    obs = [env.reset()]
    for _ in range(60):
        obs.append(env.step(env.rand_act())[0])
    obs = torch.stack(obs)
    assert obs.shape == (61, 3, 64, 64) and env.frame_stack == 1
    episode = {
        "obs": obs,
        "action": torch.zeros(len(obs), 1),
        "reward": torch.zeros(len(obs)),
        "terminated": torch.zeros(len(obs)),
    }
    family = agents.get("dreamer")
    cfg.dreamer.chunk_length, cfg.dreamer.batch_size = 32, 4
    buf = Buffer(cfg, family.sequence_length(cfg), family.batch_size(cfg), env.frame_stack)
    buf.add(episode)
    per_step = buf.nbytes / len(buf)
    assert per_step * 1_000_000 < 24e9 and per_step < 12_288 * 1.1  # one 64x64 RGB frame and a few small fields
    batch = buf.sample()
    assert batch["obs"].shape[-3:] == (3, 64, 64)


def test_a_dreamer_file_read_as_another_agent_is_refused(tmp_path):
    env = {**os.environ, "MUJOCO_GL": "egl"}
    file = ROOT / "agents" / "cheetah-run-dreamer.pt"
    out = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), f"checkpoint={file}", "agent=tdmpc2", "eval_episodes=1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 2 and "agent=dreamer" in out.stderr and "Traceback" not in out.stderr, out.stderr


if __name__ == "__main__":
    pytest.main([__file__])


def test_options_of_a_planner_not_in_use_are_checked_alone_not_against_each_other():
    from dream_mpc.errors import UserError

    assert config.load(["planner=dream", "cem.num_candidates=50"]).cem.num_candidates == 50  # top_k=100 unused
    with pytest.raises(UserError, match="top_k <= cem.num_candidates"):
        config.load(["planner=cem", "cem.num_candidates=50"])
    with pytest.raises(UserError, match="cem.num_candidates"):
        config.load(["planner=dream", "cem.num_candidates=0"])  # its own range still holds


def test_what_a_run_does_not_read_is_hidden_and_warned_about(capsys):
    unused = config.unused_keys("dreamer", "dream")
    assert {"latent_dim", "num_q", "grad_clip_norm", "num_samples", "cem", "bmpc", "grad"} <= unused
    assert not {"dream", "dreamer", "buffer_size", "seed", "steps"} & unused
    assert "dreamer" in config.unused_keys("tdmpc2", "mppi") and "latent_dim" not in config.unused_keys("bmpc", "mppi")
    config.warn_unused("dreamer", "dream", ["latent_dim=64", "dream.lr=0.2", "cem.top_k=5"])
    err = capsys.readouterr().err
    assert "latent_dim has no effect with agent=dreamer" in err and "cem.top_k" in err and "dream.lr" not in err
    shown = cli.job_config_yaml([*DREAMER, "--cfg", "job"])
    assert "\nlatent_dim:" not in shown and "\nbatch_size:" not in shown and "\ndreamer:" in shown


def test_cfg_job_validates_and_shows_what_a_file_runs_with():
    """`--cfg job` checks values as a run does, and with checkpoint= prints the file's config with the overrides."""
    from dream_mpc.errors import UserError

    with pytest.raises(UserError, match="dream.lr must be a number > 0"):
        cli.job_config_yaml(["dream.lr=-1", "--cfg", "job"])
    with pytest.raises(UserError, match="dreamer.kl_scale"):
        cli.job_config_yaml([*DREAMER, "dreamer.kl_scale=-1", "--cfg", "job"])
    file = ROOT / "agents" / "cheetah-run-dreamer.pt"
    shown = cli.job_config_yaml([f"checkpoint={file}", "planner=dream", "dream.horizon=7", "--cfg", "job"])
    assert "agent: dreamer" in shown and "task: cheetah-run" in shown and "planner: dream" in shown
    dream = shown[shown.index("\ndream:") :]
    assert "horizon: 7" in dream.split("\n\n")[0] and "action_noise: 0.2" in dream  # the override, appendix D's rest
    assert "obs: rgb" in shown and "\nlatent_dim:" not in shown  # the file's observations, no TD-MPC2 key
    policy = cli.job_config_yaml(["task=cartpole-swingup", "planner=dream", "mpc=false", "--cfg", "job"])
    assert "planner: policy" in policy  # mpc=false: the policy acts, in every family


def test_a_dreamer_file_on_another_task_with_the_same_shapes_warns(capsys):
    from dream_mpc.checkpoint import load_agent

    agent = load_agent(ROOT / "agents" / "cheetah-run-dreamer.pt", task="walker-run", device="cpu")
    assert agent.cfg.task == "walker-run"
    assert "trained on cheetah-run; it runs on task=walker-run" in capsys.readouterr().err
