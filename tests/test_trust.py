"""Results that cannot mix runs or lie, and mistakes that lose nothing (issue 21).

- An evaluation job is identified by everything that changes its numbers: the weights (not the file's path), the
  planner's effective configuration (its options, the root keys it reads, its discount), planning_dtype, the
  device, eval_noise, seed and task. A rerun with any of them changed is a new job, never "already recorded".
- `mpc=false` is recorded as the planner that acted: the policy.
- Limits between options and costs far out of range are caught when the config is built; output folders are
  checked before any work; a run name cannot leave the run folder; a too small buffer is refused, not enlarged;
  a truncated or corrupt checkpoint says so.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dream_mpc import config
from dream_mpc.checkpoint import load_agent
from dream_mpc.errors import UserError
from dream_mpc.evaluation import records
from dream_mpc.evaluation.episodes import evaluate_checkpoint, job_of

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "agents" / "cartpole-swingup-tdmpc2-1M.pt"


def job(overrides=(), checkpoint=AGENT):
    overrides = [f"checkpoint={checkpoint}", *overrides]
    cfg = config.load(overrides)
    agent = load_agent(checkpoint, device="cpu", overrides=overrides)
    cfg.task = agent.cfg.task
    return job_of(cfg, agent)


@pytest.fixture(scope="module")
def base_jobs():
    return {planner: job([f"planner={planner}"]) for planner in ("dream", "grad", "mppi")}


@pytest.mark.parametrize(
    "planner, change",
    [
        ("dream", "planning_dtype=bfloat16"),
        ("dream", "dream.grad_clip_norm=5"),  # its gradient clip
        ("dream", "min_std=0.1"),  # the std bounds of the info BMPC imitates
        ("dream", "dream.lr=0.5"),
        ("dream", "eval_noise=true"),
        ("dream", "seed=2"),
        ("dream", "discount_max=0.98"),  # changes the discount the planner is given
        ("grad", "grad.init_std=0.2"),  # read outside Dream-MPC's options before
        ("mppi", "num_samples=256"),
    ],
)
def test_anything_that_changes_the_numbers_is_another_job(base_jobs, planner, change):
    base = base_jobs[planner]
    other = job([f"planner={planner}", change])
    assert records.job_key(other) != records.job_key(base)
    assert records.job_file(ROOT, other) != records.job_file(ROOT, base)


def test_the_same_settings_are_the_same_job(base_jobs):
    again = job(["planner=dream", "threads=1"])  # thread counts give the same bits (MKL strict mode)
    assert records.job_key(again) == records.job_key(base_jobs["dream"])
    options = json.loads(again["options"])
    assert options["lr"] == 0.1 and options["grad_clip_norm"] == 20 and "discount" in options
    assert again["planning_dtype"] == "float32" and again["device"] == "cpu" and len(again["weights"]) == 16


def test_mpc_false_is_recorded_as_the_policy():
    j = job(["planner=mppi", "mpc=false"])
    assert j["planner"] == "policy"
    assert records.job_key(j) == records.job_key(job(["planner=policy"]))


def test_weights_digest_follows_the_content_not_the_path(tmp_path):
    obj = torch.load(AGENT, map_location="cpu", weights_only=True)
    same = tmp_path / "copy.pt"
    torch.save(obj, same)
    name = next(k for k, v in obj["model"].items() if torch.is_tensor(v) and v.is_floating_point())
    obj["model"][name] = obj["model"][name] + 1e-3
    changed = tmp_path / "retrained.pt"
    torch.save(obj, changed)
    digest = lambda p: job(["planner=policy"], checkpoint=p)["weights"]  # noqa: E731
    assert digest(same) == digest(AGENT)
    assert digest(changed) != digest(AGENT)


def _evaluate(checkpoint, results_dir, overrides=()):
    overrides = [f"checkpoint={checkpoint}", "eval_episodes=1", "threads=1", f"results_dir={results_dir}", *overrides]
    cfg = config.load(overrides)
    cfg._overrides = overrides
    return evaluate_checkpoint(cfg)


def test_a_retrained_file_at_the_same_path_is_evaluated_again(tmp_path):
    """The landed release skipped the rerun as "already recorded" and reported the old weights' episodes."""
    ckpt, results = tmp_path / "last.pt", tmp_path / "results"
    obj = torch.load(AGENT, map_location="cpu", weights_only=True)
    torch.save(obj, ckpt)
    assert len(_evaluate(ckpt, results, ["planner=policy"])) == 1
    assert _evaluate(ckpt, results, ["planner=policy"]) == []  # the same weights: recorded, skipped
    for k, v in obj["model"].items():  # "retrained": other weights in the same file
        if torch.is_tensor(v) and v.is_floating_point():
            obj["model"][k] = v * 0.5
    torch.save(obj, ckpt)
    assert len(_evaluate(ckpt, results, ["planner=policy"])) == 1  # a new job, run again
    rows = records.collect([results])
    assert len(rows) == 2 and len({r["weights"] for r in rows}) == 2
    assert rows[0]["return"] != rows[1]["return"]


def test_rows_without_a_whole_job_identity_are_not_read(tmp_path):
    """Rows written before weights, agent, planning_dtype and device named a job (0.3.0 development) are left out,
    never merged with a job they may not belong to; whole rows are read."""
    old = dict(task="t", checkpoint="c.pt", planner="p", options="{}", eval_noise=False, seed=1, episode=0)
    new = dict(old, weights="0" * 16, agent="tdmpc2", planning_dtype="float32", device="cpu")
    (tmp_path / "episodes-old.jsonl").write_text(json.dumps({**old, "return": 1.0}) + "\n")
    (tmp_path / "episodes-new.jsonl").write_text(json.dumps({**new, "return": 2.0}) + "\n")
    (row,) = records.collect([tmp_path])
    assert row["return"] == 2.0 and row["weights"] == "0" * 16


# --------------------------------------------------------------------------------------------- config build
def test_planner_limits_are_checked_when_the_config_is_built():
    with pytest.raises(UserError, match="num_elites <= num_samples"):
        config.load(["planner=mppi", "num_elites=600"])  # not only when MPPI is constructed
    assert config.load(["planner=dream", "num_elites=600"]).num_elites == 600  # MPPI is not in use: no limit


def test_a_far_costlier_setting_warns_with_its_cost(capsys):
    config.load(["planner=dream", "dream.iterations=1000000"])
    err = capsys.readouterr().err
    assert "dream.iterations=1000000" in err and "333,334x" in err  # (1e6 + 2) / (1 + 2) model steps
    config.load(["planner=dream", "dream.iterations=3"])
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name", ["../../escape", "a/b", "..", ""])
def test_run_names_cannot_leave_the_run_folder(name):
    with pytest.raises(UserError, match="exp_name"):
        config.load([f"exp_name={name}"])


def test_a_buffer_smaller_than_an_episode_is_refused():
    from dream_mpc.training.buffer import Buffer

    cfg = config.load(["task=cartpole-swingup", "buffer_size=10", "device=cpu"])
    config.set_env_dims(cfg, (5,), 1, 500)
    with pytest.raises(UserError, match="buffer_size=10 is not allowed.*>= 501"):
        Buffer(cfg)


CHILD_ENV = {"PYTHONPATH": str(ROOT), "MUJOCO_GL": "egl", "PATH": "/usr/bin:/bin"}


def _cli(args, cwd):
    return subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), *args], cwd=cwd, env=CHILD_ENV, capture_output=True, text=True
    )


def test_an_unwritable_results_dir_fails_before_any_episode(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where a folder should be")
    out = _cli([f"checkpoint={AGENT}", "planner=policy", f"results_dir={blocked}/results"], tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "cannot write evaluation records" in out.stderr and "episode 1" not in out.stdout
    assert out.stdout == ""  # no library start-up noise either


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_checkpoint_says_so(tmp_path, damage):
    data = bytearray(AGENT.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 3]
    else:
        for i in range(4096, len(data), 4099):
            data[i] ^= 0x5A
    bad = tmp_path / "agent.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(UserError, match="truncated" if damage == "truncated" else "corrupt"):
        load_agent(bad, device="cpu")


def test_help_lists_every_key_with_its_meaning(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--help"], cwd=tmp_path, env=CHILD_ENV, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    for key, spec in config.root_specs().items():
        assert f"  {key}=" in out.stdout and spec.doc in out.stdout, key
    assert "dream.lr=0.1" in out.stdout and "gradient-ascent step size" in out.stdout


# --------------------------------------------------------------------------------------------- reports
def test_every_plotted_line_and_band_is_labelled_with_the_data_that_drew_it():
    """The landed figure 2 labelled MPPI's line "policy" (`ax.legend(methods)` over lines and bands alike)."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "scripts"))
    import report

    taus = np.linspace(0, 1, 11)
    profiles = {m: np.clip(1 - taus * k, 0, 1) for m, k in (("policy (tdmpc2)", 1.0), ("mppi (tdmpc2)", 2.0))}
    cis = {m: (p - 0.05, p + 0.05) for m, p in profiles.items()}
    fig = report.profiles_figure(taus, profiles, cis)
    ax = fig.axes[0]
    lines = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
    assert set(lines) == set(profiles)
    for method, y in lines.items():
        assert np.array_equal(y, profiles[method])  # the label names the data it draws
    bands = [c for c in ax.collections if not c.get_label().startswith("_")]
    for band in bands:
        method = band.get_label().split(":")[0]
        top = band.get_paths()[0].vertices[:, 1].max()
        assert top == pytest.approx(cis[method][1].max())
    assert len(bands) == 2
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(legend) == sorted([*profiles, *(f"{m}: 95 % CI" for m in profiles)])


def test_single_run_cells_say_so_instead_of_a_zero_spread():
    sys.path.insert(0, str(ROOT / "scripts"))
    import paper_tables

    cells = {"cartpole-swingup": {"dream (tdmpc2)": {"mean": 746.0, "std": 0.0, "n": 1}}}
    rows = paper_tables.table_rows(cells, ["dream (tdmpc2)"], "dmcontrol")
    texts = [row[0][0] for _, row in rows]
    assert texts == ["746 (1 run)", "746 (1 task)"] and not any("± 0" in t for t in texts)


def test_the_report_says_when_intervals_cannot_be_estimated(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import report

    for planner, ret in (("policy", 600.0), ("dream", 700.0)):
        for task, shift in (("cartpole-swingup", 0.0), ("cartpole-balance", 50.0)):
            row = dict(task=task, checkpoint="a.pt", weights="0" * 16, agent="tdmpc2", train_seed=1, planner=planner)
            row.update(options="{}", planning_dtype="float32", device="cpu", eval_noise=False, seed=1, episode=0)
            row.update(suite="dmcontrol", success=0.0, score=(ret + shift) / 1000, length=500, nonfinite=0)
            row.update(ms_per_step=1.0 + shift / 100)
            row["return"] = ret + shift
            records.append_row(records.job_file(tmp_path / "res", row), row)
    out = report.build([tmp_path / "res"], tmp_path / "rep", reps=50)
    assert sorted(out["single_run"]) == ["dream (tdmpc2)", "policy (tdmpc2)"]
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "Intervals cannot be estimated" in text and "(1 run)" in text
    assert not re.search(r"± 0(\.0+)?(?![\d.])", text)  # no spread of zero where there is nothing to estimate


def test_the_report_says_when_the_penalty_could_not_act():
    import pandas as pd

    sys.path.insert(0, str(ROOT / "scripts"))
    import report

    dream = json.dumps({"uncertainty_coef": 0.01})
    df = pd.DataFrame(
        {
            "method": ["dream (dreamer)", "dream (tdmpc2)", "policy (dreamer)"],
            "options": [dream, dream, "{}"],
            "penalty_active": [False, True, False],
        }
    )
    assert report.penalty_off(df) == ["dream (dreamer)"]


@pytest.mark.slow  # two real evaluations
def test_two_evaluations_of_one_job_into_one_folder_record_each_episode_once(tmp_path):
    """Started together, the second waits for the first (a lock per job) and finds its episodes recorded."""
    file = ROOT / "agents" / "cartpole-swingup-tdmpc2-1M.pt"
    args = [sys.executable, str(ROOT / "evaluate.py"), f"checkpoint={file}", "planner=policy", "eval_episodes=2"]
    args += ["threads=1", f"results_dir={tmp_path / 'r'}"]
    procs = [
        subprocess.Popen(args, cwd=tmp_path, env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    rows = records.collect([tmp_path / "r"])
    lines = sum(len(f.read_text().splitlines()) for f in (tmp_path / "r").glob("episodes-*.jsonl"))
    assert sorted(r["episode"] for r in rows) == [0, 1] and lines == 2  # no episode written twice
