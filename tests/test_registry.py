"""Registries, option declarations and the Hydra applications: names come from the registries, every option is
validated with its declared type and range, the docs show the declarations, and train.py/evaluate.py are real
Hydra apps (multirun, --cfg, --help)."""

import dataclasses
import os
import subprocess
import sys

import pytest
from conftest import ROOT, run_script

from dream_mpc import config, options
from dream_mpc.errors import UserError, unknown
from dream_mpc.registry import Registry, agents, planners, suites


def test_builtins_are_found_by_their_modules():
    assert {"mppi", "dream", "grad", "hybrid", "policy"} <= set(planners.names())
    assert {"tdmpc2", "bmpc"} <= set(agents.names())
    assert "dmcontrol" in suites.names()


def test_an_unknown_name_lists_the_closest_valid_ones_first():
    with pytest.raises(UserError, match=r"unknown planner 'dreem'. Valid planners, closest first: dream,"):
        planners.get("dreem")
    with pytest.raises(UserError, match=r"unknown planner 'dreem'. Valid planners, closest first: dream,"):
        config.load(["task=cartpole-swingup", "planner=dreem"])


def test_a_registry_refuses_a_second_object_under_the_same_name():
    reg = Registry("thing")
    reg.register("a", int)
    reg.register("a", int)  # the same object again (a module imported twice) is fine
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", float)


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "dream.num_candidates=0",
            "dream.num_candidates=0 is not allowed: dream.num_candidates must be an integer >= 1",
        ),
        ("dream.lr=-1", "dream.lr=-1 is not allowed: dream.lr must be a number > 0"),
        ("dream.reuse=1.5", "dream.reuse=1.5 is not allowed: dream.reuse must be a number >= 0 and <= 1"),
        ("dream.clip=foo", "dream.clip='foo' is not allowed: dream.clip must be one of per_candidate, global"),
        ("dream.num_candidates=abc", "dream.num_candidates='abc' is not allowed"),
        ("grad.init_std=-0.1", "grad.init_std=-0.1 is not allowed"),
        ("num_samples=0", "num_samples=0 is not allowed"),
        ("temperature=0", "temperature=0 is not allowed: temperature must be a number > 0"),
        ("seed=abc", "seed='abc' is not allowed: seed must be an integer >= 0"),
        ("eval_noise=maybe", "eval_noise='maybe' is not allowed: eval_noise must be true or false"),
        ("vmin=20", "vmin=20.0 is above vmax=10.0"),
    ],
)
def test_every_option_is_checked_when_the_config_is_built(override, message):
    with pytest.raises(UserError) as err:
        config.load(["task=cartpole-swingup", override])
    assert message in str(err.value)


def test_edge_values_that_mean_something_stay_allowed():
    cfg = config.load(
        [
            "task=cartpole-swingup",
            "dream.iterations=0",
            "dream.reuse=0",
            "dream.uncertainty_coef=0",
            "num_pi_trajs=0",
            "seed_steps=0",
        ]
    )
    assert cfg.dream.iterations == 0 and cfg.dream.reuse == 0.0 and cfg.num_pi_trajs == 0


def test_integers_given_for_floats_become_floats_and_whole_floats_integers():
    cfg = config.load(["task=cartpole-swingup", "dream.lr=1", "dream.num_candidates=8.0"])
    assert cfg.dream.lr == 1.0 and isinstance(cfg.dream.lr, float)
    assert cfg.dream.num_candidates == 8 and isinstance(cfg.dream.num_candidates, int)


def test_the_root_keeps_tdmpc2s_official_names_and_defaults():
    """Table 5 / the official config.yaml, declared by MPPI (planning) and the TD-MPC2 family (the rest)."""
    root = config.defaults()
    official = dict(horizon=3, iterations=6, num_samples=512, num_elites=64, num_pi_trajs=24, min_std=0.05, max_std=2)
    official.update(temperature=0.5, lr=3e-4, enc_lr_scale=0.3, grad_clip_norm=20, batch_size=256, rho=0.5, tau=0.01)
    official.update(consistency_coef=20, reward_coef=0.1, value_coef=0.1, num_q=5, num_bins=101, vmin=-10, vmax=10)
    official.update(log_std_min=-10, log_std_max=2, entropy_coef=1e-4, simnorm_dim=8, dropout=0.01, latent_dim=512)
    official.update(buffer_size=1_000_000, steps=10_000_000, eval_episodes=10, eval_freq=50000, enc_dim=256)
    assert {k: root[k] for k in official} == official


def test_config_yaml_help_and_cfg_job_come_from_the_declarations():
    fresh = subprocess.run(  # a fresh interpreter: the built-in planners and agents alone, no test plug-in
        [sys.executable, "-c", "from dream_mpc import config; print(config.reference_yaml(), end='')"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "DREAM_MPC_PLUGINS"},
    )
    assert (ROOT / "config.yaml").read_text() == fresh.stdout, "run: python -m dream_mpc.config"
    text = config.help_text()
    for _, options_cls in config.root_sections():
        for key, spec in options.specs(options_cls).items():
            assert f"  {key}=" in text and spec.doc.replace("$", "$$") in text, key
    for block, options_cls in config.option_classes().items():
        for key in options.specs(options_cls):
            assert f"  {block}.{key}=" in text, (block, key)


def test_the_docs_show_every_planners_declarations():
    text = (ROOT / "docs" / "planners.md").read_text()
    for name, cls in planners.items():
        if not cls.__module__.startswith("dream_mpc.") or not dataclasses.fields(cls.Options):
            continue  # a plug-in registered by another test documents itself
        prefix = "" if cls.option_block is None else cls.option_block + "."
        assert options.table(cls.Options, prefix) in text, f"docs/planners.md is out of date for {name}"


def app(script, *args, cwd):
    return run_script(script, args, cwd)


def test_the_apps_print_their_config_and_help(tmp_path):
    run = app("train.py", "--cfg", "job", "planner=dream", "dream.lr=0.5", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "planner: dream" in run.stdout and "lr: 0.5" in run.stdout and "num_candidates: 5" in run.stdout
    run = app("evaluate.py", "--help", cwd=tmp_path)
    assert run.returncode == 0 and "dream" in run.stdout and "checkpoint" in run.stdout


def test_an_unknown_key_in_the_app_is_one_line_without_traceback(tmp_path):
    run = app("train.py", "dream.lrr=1", cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    declared = [f.name for f in dataclasses.fields(planners.get("dream").Options)]  # the list grows with options
    assert run.stderr.strip() == f"error: {unknown('dream option', 'lrr', declared)}"
    assert run.stderr.startswith("error: unknown dream option 'lrr'. Valid dream options, closest first: lr, ")


@pytest.mark.slow
def test_train_multirun_runs_one_job_per_seed(tmp_path):
    run = app(
        "train.py",
        "-m",
        "seed=1,2",
        "task=cartpole-swingup",
        "model_size=1",
        "steps=60",
        "seed_steps=20",
        "eval_episodes=1",
        "eval_freq=0",
        "batch_size=16",
        "planner=policy",
        "save_freq=0",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    for seed in (1, 2):
        assert (tmp_path / "logs" / "cartpole-swingup" / str(seed) / "default" / "models" / "final.pt").is_file()
    assert "#1 : seed=2" in run.stdout + run.stderr
