"""End to end on cartpole-swingup with a tiny model: training whose losses fall, a killed run that resumes from its
last checkpoint, evaluate.py on a checkpoint the trainer wrote, and CLI errors without tracebacks."""

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")  # before dm_control is imported: headless rendering

import pytest
from conftest import CHILD_ENV, ROOT, TINY, WORK_DIR, run_script

from dream_mpc import checkpoint, config, runtime
from dream_mpc.envs import make_env
from dream_mpc.errors import UserError
from dream_mpc.training.buffer import Buffer
from dream_mpc.training.logger import Logger
from dream_mpc.training.trainer import OnlineTrainer
from tdmpc2.agent import TDMPC2

TINY = [*TINY, "num_samples=64", "num_elites=8", "iterations=2", "batch_size=32"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 1000-step run in this process: 200 random steps, 200 pretraining updates at the first episode end
    (step 500), then one update per step; every update's metrics are recorded."""
    cwd = tmp_path_factory.mktemp("train")
    old = os.getcwd()
    os.chdir(cwd)  # work_dir is <cwd>/logs/...
    try:
        cfg = config.load([*TINY, "steps=1000", "eval_freq=100000", "save_freq=500", "seed_steps=200"])
    finally:
        os.chdir(old)
    runtime.setup(cfg)
    env = make_env(cfg)
    agent = TDMPC2(cfg)
    updates = []
    update = agent.update
    agent.update = lambda buffer, **kw: updates.append(update(buffer, **kw)) or updates[-1]
    OnlineTrainer(cfg, env, agent, Buffer(cfg), Logger(cfg)).train()
    return cwd / WORK_DIR, updates


def test_training_losses_are_finite_and_fall(trained):
    work_dir, updates = trained
    assert len(updates) == 200 + 500  # pretraining at step 500, then one per step 501..1000
    assert all(math.isfinite(v) for m in updates for v in m.values())
    first = sum(m["total_loss"] for m in updates[:20]) / 20
    last = sum(m["total_loss"] for m in updates[-100:]) / 100
    assert last < 0.5 * first, (first, last)
    for key in ("reward_loss", "value_loss"):
        assert sum(m[key] for m in updates[-100:]) < 0.7 * sum(m[key] for m in updates[:100]), key
    train = read_csv(work_dir / "train.csv")
    assert [int(r["step"]) for r in train] == [500, 1000]
    assert train[0]["total_loss"] == "" and 0 < float(train[1]["total_loss"]) < first
    assert int(train[1]["episode_length"]) == 500 and int(train[1]["nonfinite_actions"]) == 0
    eval_rows = read_csv(work_dir / "eval.csv")
    assert list(eval_rows[0]) == ["step", "episode_reward"] and eval_rows[0]["step"] == "0"
    last_ckpt = checkpoint.read(work_dir / "models" / "last.pt")
    # the finished run's own checkpoint: a rerun with a larger `steps` continues from it
    assert last_ckpt["step"] == 1001 and last_ckpt["episode"] == 2 and last_ckpt["buffer"]["num_episodes"] == 2
    assert len(last_ckpt["current_episode"]["rows"]) == 2  # the third episode, one step in
    assert checkpoint.read(work_dir / "models" / "final.pt")["step"] == 1001


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    args = [*TINY, "eval_freq=1000", "save_freq=500"]  # an eval (~500 plans) every other checkpoint
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args, "steps=100000"],
        cwd=tmp_path,
        env=CHILD_ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    last = tmp_path / WORK_DIR / "models" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # let it run past the checkpoint, logging rows that the resumed run must not repeat
    assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log.close()
    assert last.exists(), (tmp_path / "first.log").read_text()[-2000:]
    saved = checkpoint.read(last)["step"]
    assert saved % 500 == 0 and 0 < saved < 2500  # killed before pretraining
    # same run, a nearer end: it continues at the saved step (logging to wandb offline this time)
    second = run_script(
        "train.py", [*args, f"steps={saved + 500}", "wandb_project=test", "wandb_entity=test"], tmp_path
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"resumed from {last} at step {saved:,}" in second.stdout + second.stderr
    steps = [int(r["step"]) for r in read_csv(tmp_path / WORK_DIR / "train.csv")]
    assert steps == list(range(500, saved + 501, 500))  # nothing lost before the checkpoint, nothing twice
    evals = [int(r["step"]) for r in read_csv(tmp_path / WORK_DIR / "eval.csv")]
    assert evals == list(range(0, saved + 501, 1000))  # an eval due at the checkpoint runs once
    assert checkpoint.read(last)["step"] == saved + 501
    assert checkpoint.read(tmp_path / WORK_DIR / "models" / "final.pt")["step"] == saved + 501
    assert list((tmp_path / WORK_DIR / "wandb").glob("offline-run-*"))


@pytest.mark.slow  # ~30 s: evaluate.py through the command line, every planner
def test_evaluate_a_trained_checkpoint(trained, tmp_path):
    ckpt = trained[0] / "models" / "final.pt"
    result = run_script("evaluate.py", [*TINY, f"checkpoint={ckpt}", "planner=mppi", "eval_episodes=2"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    returns = [float(x) for x in re.findall(r"episode \d/2: return (-?[\d.]+)", result.stdout)]
    assert len(returns) == 2
    summary = re.search(
        r"planner=mppi: return (-?[\d.]+) ± ([\d.]+) over 2 episodes; planning ([\d.]+) ms/step", result.stdout
    )
    assert summary, result.stdout
    assert float(summary.group(1)) == pytest.approx(sum(returns) / 2, abs=0.06)
    assert float(summary.group(3)) > 0
    # the same weights with the policy alone, and a video
    result = run_script("evaluate.py", [*TINY, f"checkpoint={ckpt}", "planner=policy", "save_video=true"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "planner=policy: return" in result.stdout
    video = tmp_path / WORK_DIR / "videos" / "cartpole-swingup-0.mp4"
    assert video.stat().st_size > 10_000


@pytest.mark.parametrize(
    "script, args, message",
    [
        (
            "train.py",
            ["task=cartpole-swingup", "horizn=3"],
            "unknown config key 'horizn'. Valid config keys, closest first: horizon",
        ),
        ("train.py", ["task=walker-wlk"], "unknown task 'walker-wlk'. Valid tasks, closest first: walker-walk"),
        ("train.py", ["task=cartpole-swingup", "planner=mppii"], "unknown planner 'mppii'"),
        ("evaluate.py", ["task=cartpole-swingup"], "no checkpoint given"),
        ("evaluate.py", ["task=cartpole-swingup", "checkpoint=missing.pt"], "checkpoint not found: missing.pt"),
    ],
)
def test_bad_command_line_exits_2_without_traceback(script, args, message, tmp_path):
    result = run_script(script, args, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_compare_planners_writes_csv_json_plot_and_is_reproducible(trained, tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import compare_planners

    ckpt = str(trained[0] / "models" / "final.pt")
    out = tmp_path / "compare"
    summary = compare_planners.main(
        [
            "--checkpoints",
            ckpt,
            "--planners",
            "policy",
            "dream",
            "--seeds",
            "2",
            "--episodes",
            "1",
            "--out",
            str(out),
            "--threads",
            "1",
        ]
    )
    rows = read_csv(out / "episodes.csv")
    assert [(r["planner"], r["seed"]) for r in rows] == [
        ("policy", "1"),
        ("policy", "2"),
        ("dream", "1"),
        ("dream", "2"),
    ]
    assert {s["planner"] for s in summary} == {"policy", "dream"} and all(s["episodes"] == 2 for s in summary)
    by = {s["planner"]: s for s in summary}  # paired on the same episodes: the difference of the means
    assert by["policy"]["vs_policy"] == (0.0, 0.0, 0.0)
    diff, lo, hi = by["dream"]["vs_policy"]
    assert diff == pytest.approx(by["dream"]["return_mean"] - by["policy"]["return_mean"], abs=1e-6)
    assert lo <= diff <= hi
    assert (out / "returns.png").stat().st_size > 5_000 and (out / "summary.json").exists()
    # eval-mode policy acting on a reseeded env is deterministic: the same seed gives the same return
    again = compare_planners.main(
        [
            "--checkpoints",
            ckpt,
            "--planners",
            "policy",
            "--seeds",
            "2",
            "--episodes",
            "1",
            "--out",
            str(tmp_path / "again"),
            "--threads",
            "1",
        ]
    )
    assert again[0]["return_mean"] == pytest.approx(summary[0]["return_mean"], abs=1e-6)
    # a later run can add seeds: seed 2 alone replays the first run's seed-2 episode
    later = compare_planners.main(
        [
            "--checkpoints",
            ckpt,
            "--planners",
            "policy",
            "--seeds",
            "1",
            "--first-seed",
            "2",
            "--episodes",
            "1",
            "--out",
            str(tmp_path / "later"),
            "--threads",
            "1",
        ]
    )
    assert read_csv(tmp_path / "later" / "episodes.csv")[0]["seed"] == "2"
    assert later[0]["return_mean"] == pytest.approx(float(rows[1]["return"]), abs=1e-6)
    # runs made apart merge into the same summary
    merged = compare_planners.main(["--from-csv", str(out / "episodes.csv"), "--out", str(tmp_path / "merged")])
    assert [s["planner"] for s in merged] == [s["planner"] for s in summary]
    assert [s["return_mean"] for s in merged] == pytest.approx([s["return_mean"] for s in summary], abs=1e-6)


def test_compare_planners_resumes_an_interrupted_run_on_the_same_episodes(trained, tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import compare_planners

    args = [
        "--checkpoints",
        str(trained[0] / "models" / "final.pt"),
        "--planners",
        "policy",
        "--seeds",
        "1",
        "--threads",
        "1",
    ]
    full = compare_planners.main([*args, "--episodes", "3", "--out", str(tmp_path / "full")])
    compare_planners.main([*args, "--episodes", "1", "--out", str(tmp_path / "part")])  # "interrupted" after one
    resumed = compare_planners.main([*args, "--episodes", "3", "--out", str(tmp_path / "part"), "--resume"])
    rows, full_rows = read_csv(tmp_path / "part" / "episodes.csv"), read_csv(tmp_path / "full" / "episodes.csv")
    assert [r["episode"] for r in rows] == ["0", "1", "2"]  # episode 0 kept, not run twice
    # the skipped episode still drew its initial state: episodes 1 and 2 start where the full run's did
    assert [float(r["return"]) for r in rows] == pytest.approx([float(r["return"]) for r in full_rows], abs=1e-6)
    assert resumed[0]["episodes"] == 3 and resumed[0]["return_mean"] == pytest.approx(full[0]["return_mean"])
    again = compare_planners.main([*args, "--episodes", "3", "--out", str(tmp_path / "part"), "--resume"])
    assert len(read_csv(tmp_path / "part" / "episodes.csv")) == 3 and again[0]["episodes"] == 3  # nothing left


@pytest.mark.slow
def test_ablate_dream_runs_each_variant_on_the_same_episodes(trained, tmp_path):
    ckpt = str(trained[0] / "models" / "final.pt")
    out = tmp_path / "ablation"
    result = run_script(
        "scripts/ablate_dream.py",
        [
            "--checkpoint",
            ckpt,
            "--episodes",
            "1",
            "--threads",
            "1",
            "--out",
            str(out),
            "--variants",
            "paper=",
            "step 0.5=dream.lr=0.5",
            "no step=dream.iterations=0",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_csv(out / "episodes.csv")
    assert [r["planner"] for r in rows] == ["paper", "step 0.5", "no step"]
    assert {r["seed"] for r in rows} == {"1"} and (out / "returns.png").exists()
    assert re.search(r"\| step 0\.5 \| -?[\d.]+ \(1 episode\) \|", result.stdout), result.stdout  # no spread
    bad = run_script("scripts/ablate_dream.py", ["--checkpoint", ckpt, "--variants", "nolabel"], tmp_path)
    assert bad.returncode == 2 and "a variant is 'label=key=value" in bad.stderr and "Traceback" not in bad.stderr


def test_benchmark_planners_cli_prints_a_table_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    result = run_script(
        "scripts/benchmark_planners.py",
        [
            "--model-size",
            "1",
            "--threads",
            "1",
            "--repeats",
            "3",
            "--planners",
            "policy",
            "dream",
            "hybrid",
            "--json",
            str(out),
            "--plot",
            str(tmp_path / "bench.png"),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| dream |" in result.stdout
    record = json.loads(out.read_text())
    data, meta = record["planners"], record["meta"]
    assert set(data) == {"policy", "dream", "hybrid"} and all(v["ms_per_step"] > 0 for v in data.values())
    # the run's record: enough to trace each number to its command, code, machine and load
    assert meta["command"].startswith("python scripts/benchmark_planners.py --model-size 1") and meta["threads"] == 1
    assert {"date", "commit", "torch", "cpu", "cpus", "load_average_before", "matmul_peak_gflops"} <= set(meta)
    # products counted by torch's FLOP counter: Dream-MPC's 5 candidates x (rollout, forward, backward, scoring)
    # outweigh hybrid's single candidate at horizon 1
    assert data["dream"]["gflop_per_step"] > data["hybrid"]["gflop_per_step"] > 0
    assert all(0 < v["floor_ms"] for v in data.values())
    # few rows: each product reads a whole weight matrix, so Dream-MPC's step reads more than one model's worth
    assert data["dream"]["product_mb_per_step"] > data["policy"]["product_mb_per_step"] > 0
    assert (tmp_path / "bench.png").stat().st_size > 0


FAULTS_PER_UPDATE = """
import resource, sys
import torch
sys.path.insert(0, "scripts")
from bench_utils import build_agent, synthetic_batch
from dream_mpc import runtime
torch.set_num_threads(1)
agent = build_agent(1, overrides=["keep_freed_memory=false"])
batch = synthetic_batch(agent)
def faults():  # the median over single updates, after warm-up ones
    for _ in range(3):
        agent._update(*batch)
    counts = []
    for _ in range(5):
        start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        agent._update(*batch)
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
    return sorted(counts)[2]
off = faults()
print(off, runtime.keep_freed_memory(), faults())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_keep_freed_memory_removes_the_page_faults_of_an_update():
    """A model-size-1 update (batch 256) allocates MiB-sized intermediates; with glibc's defaults they go back to
    the OS after each update and return as fresh pages (thousands of page faults per update). Kept, none."""
    result = subprocess.run(
        [sys.executable, "-c", FAULTS_PER_UPDATE], cwd=ROOT, env=CHILD_ENV, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    off, tuned, on = result.stdout.split()
    if float(off) < 1000:
        pytest.skip(f"this glibc keeps the memory by default ({off} page faults per update)")
    assert tuned == "True" and float(on) < float(off) / 10, f"page faults per update: {off} by default, {on} kept"


def test_benchmark_ab_times_two_configurations_side_by_side(tmp_path):
    result = run_script(
        "scripts/benchmark_ab.py",
        [
            "--what",
            "policy",
            "dream",
            "--sizes",
            "1",
            "--rounds",
            "1",
            "--threads",
            "1",
            "--b",
            "dream.num_candidates=2",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "A: defaults; B: dream.num_candidates=2" in result.stdout
    assert re.search(r"\| dream \| 1 \| [\d.]+ ms \| [\d.]+ ms \| [\d.]+ \|", result.stdout), result.stdout


@pytest.mark.slow
def test_demo_compares_the_planners_on_the_bundled_agent(tmp_path):
    """The README's main job, shortened to one episode per planner (one thread: robust to a busy machine). Each
    planner reaches the return the bundled agent reaches with it (results/compare/summary.json, 30 episodes:
    Dream-MPC 747 +- 3.5, MPPI 652 +- 4.5, the policy prior 649 +- 58), and Dream-MPC beats the prior on the same
    episode (seed 1, here and in results/compare/episodes.csv: Dream-MPC 743, MPPI 652, the prior 674). A Dream-MPC
    that returns zeros scores 0."""
    result = run_script(
        "scripts/demo.py", ["--episodes", "1", "--threads", "1", "--out", str(tmp_path / "demo")], tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split("|")[3].strip(): line for line in result.stdout.splitlines() if line.startswith("| cartpole")}
    assert set(rows) == {"policy", "mppi", "dream"}, result.stdout
    assert (tmp_path / "demo" / "returns.png").exists()
    episodes = read_csv(tmp_path / "demo" / "episodes.csv")
    assert sorted((r["planner"], r["seed"], r["episode"]) for r in episodes) == [(p, "1", "0") for p in sorted(rows)]
    returns = {r["planner"]: float(r["return"]) for r in episodes}
    assert returns["dream"] > 720 and returns["mppi"] > 620 and returns["policy"] > 500, returns
    assert returns["dream"] > returns["policy"], returns


# ---------------------------------------------------------------------------------------------------- resuming
def test_resume_warns_of_config_changes_and_continues_to_more_steps(tmp_path, capsys):
    from test_faults import short_trainer

    short_trainer(tmp_path, ["steps=50", "seed_steps=100"]).train()
    out, err = capsys.readouterr()
    assert "warning: no update will happen" in out and "steps=50" in out  # steps <= seed_steps
    assert "eval at step 0" in err  # the evaluation's own progress bar
    last = tmp_path / WORK_DIR / "models" / "last.pt"
    assert checkpoint.read(last)["step"] == 51
    short_trainer(tmp_path, ["steps=90", "seed_steps=100", "horizon=4", "discount_max=0.99"]).train()
    out, _ = capsys.readouterr()
    warning = next(line for line in out.splitlines() if line.startswith("warning: resuming"))
    assert f"resuming {last}" in warning and "horizon (3 -> 4)" in warning and "discount_max (0.995 -> 0.99)" in warning
    assert "steps (" not in warning  # a new total is what a rerun is for: not a difference to warn about
    assert "resume=false" in warning and "exp_name=" in warning
    assert f"resumed from {last} at step 51" in out
    assert checkpoint.read(last)["step"] == 91  # continued to the new total
    steps = [int(r["step"]) for r in read_csv(tmp_path / WORK_DIR / "train.csv")]
    assert steps == [40, 80]


def test_rerun_of_a_finished_run_with_fewer_steps_says_so(tmp_path, capsys):
    from test_faults import short_trainer

    short_trainer(tmp_path, ["steps=30", "seed_steps=100"]).train()
    final = tmp_path / WORK_DIR / "models" / "final.pt"
    before = final.stat().st_mtime_ns
    capsys.readouterr()
    short_trainer(tmp_path, ["steps=20", "seed_steps=100"]).train()
    out, _ = capsys.readouterr()
    assert "nothing to train" in out and "at step 31, past steps=20" in out and "Raise steps=" in out
    assert final.stat().st_mtime_ns == before  # the finished run's files are left as they were


def test_resume_with_another_model_is_one_line(tmp_path):
    from test_faults import short_trainer

    short_trainer(tmp_path, ["steps=10", "seed_steps=100"]).train()
    with pytest.raises(UserError) as err:
        short_trainer(tmp_path, ["steps=20", "seed_steps=100", "mlp_dim=96"]).train()
    msg = str(err.value)
    last = tmp_path / WORK_DIR / "models" / "last.pt"
    assert msg.startswith(f"tried to resume {last}, but it holds a different model") and "\n" not in msg
    assert "resume=false" in msg and "exp_name=" in msg and len(msg) < 600
