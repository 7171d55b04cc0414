"""Sweeps: threads per job, evaluation records with skipping on rerun, and real two-job multiruns through each
launcher plugin (basic, joblib, Ray on a local Ray, submitit_local), ending in the report."""

import json
import re
import sys

import pytest
from conftest import AGENT, CHILD_ENV, ROOT, evaluate_in_process, run_script

from dream_mpc.evaluation import records
from dream_mpc.sweeps import job_threads

SWEEP_ENV = {**CHILD_ENV, "PYTHONWARNINGS": "ignore"}


def test_threads_per_job_split_the_cores_between_parallel_jobs():
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert job_threads(0, {"_target_": joblib, "n_jobs": 2}, cores=8) == 4
    assert job_threads(0, {"_target_": joblib, "n_jobs": -1}, cores=8) == 1  # one job per core
    assert job_threads(0, {"_target_": joblib, "n_jobs": -2}, cores=8) == 1  # 7 jobs
    assert job_threads(0, {"_target_": joblib, "n_jobs": 3}, cores=2) == 1  # never below 1
    ray = "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"
    assert job_threads(0, {"_target_": ray, "ray": {"remote": {"num_cpus": 3}}}, cores=8) == 3
    assert job_threads(0, {"_target_": ray, "ray": {"remote": {}}}, cores=8) == 1  # Ray's default: 1 CPU a task
    submitit = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert job_threads(0, {"_target_": submitit, "cpus_per_task": 4}, cores=64) == 4
    slurm = {"SLURM_CPUS_PER_TASK": "6"}
    assert job_threads(0, {"_target_": submitit, "cpus_per_task": None}, cores=64, env=slurm) == 6
    basic = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
    assert job_threads(0, {"_target_": basic}, cores=8) == 0  # one job at a time: torch's default
    assert job_threads(3, {"_target_": joblib, "n_jobs": 8}, cores=8) == 3  # an explicit threads= wins


def _evaluate_in_process(results_dir, episodes, planner="policy", task="cartpole-swingup", seed=1):
    return evaluate_in_process(
        [
            f"checkpoint={AGENT}",
            f"task={task}",
            f"planner={planner}",
            f"eval_episodes={episodes}",
            f"seed={seed}",
            f"results_dir={results_dir}",
            "threads=1",
        ]
    )


@pytest.mark.slow
def test_evaluation_records_every_episode_and_a_rerun_skips_the_recorded_ones(tmp_path):
    full = tmp_path / "full"
    _evaluate_in_process(full, 3)
    part = tmp_path / "part"
    _evaluate_in_process(part, 1)  # "interrupted" after one episode
    ran = _evaluate_in_process(part, 3)  # the rerun: only episodes 1 and 2
    assert len(ran) == 2
    rows, full_rows = records.collect([part]), records.collect([full])
    assert [r["episode"] for r in rows] == [0, 1, 2]
    # the skipped episode still drew its initial state: episodes 1 and 2 are those of the uninterrupted run
    assert [r["return"] for r in rows] == pytest.approx([r["return"] for r in full_rows], abs=1e-6)
    assert _evaluate_in_process(part, 3) == []  # nothing left
    r = rows[0]
    assert r["suite"] == "dmcontrol" and r["task"] == "cartpole-swingup" and r["agent"] == "tdmpc2"
    assert r["checkpoint"] == records.checkpoint_name(AGENT)  # relative to the working directory, when inside it
    assert r["train_seed"] == 1  # from the checkpoint's saved config
    assert r["planner"] == "policy" and r["seed"] == 1 and r["success_any"] is None
    # the policy planner's effective configuration: no options, no root keys, the discount of 500-step episodes
    assert json.loads(r["options"]) == {"discount": pytest.approx(0.99)}
    assert re.fullmatch(r"[0-9a-f]{16}", r["weights"]) and {x["weights"] for x in rows + full_rows} == {r["weights"]}
    assert r["planning_dtype"] == "float32" and r["device"] == "cpu"
    assert r["score"] == pytest.approx(r["return"] / 1000) and r["ms_per_step"] > 0 and r["nonfinite"] == 0
    assert set(r) == set(records.ROW_FIELDS)


def _sweep(results, sweep_dir, launcher_args=(), extra=()):
    """evaluate.py -m over two tasks with the policy planner: one episode each, records in `results`."""
    args = [
        "-m",
        f"checkpoint={AGENT}",
        "task=cartpole-swingup,cartpole-balance",
        "planner=policy",
        "eval_episodes=1",
        f"results_dir={results}",
        f"hydra.sweep.dir={sweep_dir}",
        *launcher_args,
        *extra,
    ]
    return run_script("evaluate.py", args, cwd=ROOT, env=SWEEP_ENV)


def _multirun(launcher_args, tmp_path, extra=()):
    results = tmp_path / "results"
    proc = _sweep(results, tmp_path / "sweep", launcher_args, extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = records.collect([results])
    assert sorted(r["task"] for r in rows) == ["cartpole-balance", "cartpole-swingup"]
    states = sorted(p.name for p in (tmp_path / "sweep" / ".jobs").iterdir())
    assert states == ["0.done", "1.done"]  # the jobs' status files (and their lines, below)
    logs = proc.stderr + "".join(p.read_text() for p in (tmp_path / "sweep").rglob("*.err"))  # submitit: its logs
    assert "[sweep] job #" in logs and "2 done" in logs
    return rows, proc


@pytest.mark.slow
def test_joblib_multirun_two_jobs_then_the_report(tmp_path):
    rows, proc = _multirun(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], tmp_path)
    log = proc.stdout + proc.stderr
    assert "Joblib.Parallel(n_jobs=2," in log and "is launching 2 jobs" in log
    sys.path.insert(0, str(ROOT / "scripts"))
    import report

    out = report.build([tmp_path / "results"], tmp_path / "report", runs=("train_seed", "seed"), reps=100)
    assert (tmp_path / "report" / "figure2-profiles.png").stat().st_size > 5000
    assert not (tmp_path / "report" / "figure2-intervals.png").exists()  # one run per task: no interval to draw
    assert out["tasks"] == ["cartpole-balance", "cartpole-swingup"]
    # a rerun of the sweep runs nothing: every episode is recorded
    again = _sweep(tmp_path / "results", tmp_path / "sweep2", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"])
    assert again.returncode == 0 and again.stdout.count("already recorded") == 2


@pytest.mark.slow
def test_ray_multirun_on_a_local_ray(tmp_path):
    pytest.importorskip("ray")
    _, proc = _multirun(
        [
            "hydra/launcher=ray",
            "+hydra.launcher.ray.init.num_cpus=2",
            "+hydra.launcher.ray.init.include_dashboard=false",
        ],
        tmp_path,
    )
    assert "Ray Launcher is launching 2 jobs" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_submitit_local_multirun(tmp_path):
    _, proc = _multirun(["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"], tmp_path)
    assert list((tmp_path / "sweep" / ".submitit").iterdir())  # submitit's own job folders


@pytest.mark.slow
def test_latency_script_writes_table_curves_and_plot(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import latency

    data = latency.run(
        tmp_path,
        threads=1,
        repeats=1,
        action_dims=(1, 2),
        envs=(1, 2),
        model_sizes=(1,),
        table_model_size=1,
        planners=["policy", "dream"],
        log=lambda *_: None,
    )
    assert set(data["table"]) == {"policy", "dream"} and data["table"]["policy"]["evals"] == 0
    curve = data["curves"]["envs planned at once"]["mppi"]
    assert [p["x"] for p in curve] == [1, 2] and curve[1]["evals"] == 2 * curve[0]["evals"]
    assert (tmp_path / "latency.png").stat().st_size > 5000
    assert json.loads((tmp_path / "latency.json").read_text())["curves"]["action dim"]["dream"][0]["x"] == 1


@pytest.mark.slow
def test_basic_launcher_multirun(tmp_path):
    _, proc = _multirun([], tmp_path)
    assert "Launching 2 jobs locally" in proc.stdout + proc.stderr


@pytest.mark.slow  # ~20 s: two multiruns
def test_a_multirun_with_a_failed_job_exits_1_and_names_it(tmp_path):
    """train.py -m over two jobs, the second with a value only a job's validation refuses (eval_episodes=0): the first
    trains, the second fails with its one-line error, and the multirun ends with a line naming the failed job and
    exit code 1 (not 0, which a script or a CI step would take for success). A rerun into the same sweep dir with
    only the good job does not count the old failure."""
    from conftest import TINY

    def multirun(values):
        args = ["-m", *TINY, "planner=policy", "steps=10", "eval_freq=0", "save_freq=0", f"eval_episodes={values}"]
        return run_script("train.py", [*args, f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path, env=SWEEP_ENV)

    proc = multirun("1,0")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 job of the multirun failed: #1 failed (") and "eval_episodes=0" in last, last
    assert "eval_episodes=1" not in last and str(tmp_path / "sweep" / ".jobs") in last
    assert "eval_episodes=0 is not allowed" in proc.stderr  # the job's own error, as it failed
    assert (tmp_path / "logs" / "cartpole-swingup" / "1" / "default" / "models" / "last.pt").is_file()  # job 0 ran
    again = multirun("1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "sweep" / ".jobs").iterdir()) == ["0.done"]


def test_a_scheduler_launcher_without_its_scheduler_is_one_line_naming_the_local_ones(monkeypatch):
    """hydra/launcher=submitit_slurm where no SLURM is (no `srun` on the PATH): a UserError before Hydra starts, whose
    suggestions exist; launchers that run here pass."""
    from dream_mpc import sweeps
    from dream_mpc.errors import UserError

    monkeypatch.setenv("PATH", "")
    with pytest.raises(UserError, match="no `srun`.*hydra/launcher=submitit_local or hydra/launcher=joblib"):
        sweeps.check_launcher(["task=dog-run", "hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu"])
    for launcher in ("joblib", "submitit_local", "ray"):
        sweeps.check_launcher([f"hydra/launcher={launcher}"])
