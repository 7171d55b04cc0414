"""The command-line applications (`train.py`, `evaluate.py`, and the console scripts `dream-mpc-train`,
`dream-mpc-evaluate`): Hydra applications on the root config that tdmpc2/config.py registers.

Before Hydra parses the command line, the overrides are checked against the config (an unknown key names the
closest valid ones); inside each job the config is validated and completed (a bad value names the key, the value
and what is allowed). A user's mistake prints `error: ...` without a traceback: a single run exits with code 2; in a
multirun the job is reported as failed and the other jobs go on.
"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; before anything imports mujoco
# (OpenMP's wait policy is set by `import dream_mpc`, below, before torch loads)

import sys

from dream_mpc.errors import UserError


def _fail(message, code=2):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def job_threads(threads, launcher, cores=None, env=os.environ):
    """Torch threads for one job of a multirun, so that parallel jobs do not oversubscribe the cores.

    `threads` > 0 is kept. With threads=0, `launcher` (hydra.launcher) decides: joblib runs n_jobs jobs at once
    (-1: one per core, joblib's convention -k: cores + 1 - k), each gets max(1, cores // n_jobs); Ray gives each job
    its task's `ray.remote.num_cpus` (Ray's default 1); submitit gives `cpus_per_task` (SLURM: $SLURM_CPUS_PER_TASK;
    unset: 1). The basic launcher runs one job at a time: 0 (torch's default, every core)."""
    if threads:
        return threads
    if not cores:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    target = str((launcher or {}).get("_target_", ""))
    if "joblib" in target:
        n_jobs = int(launcher.get("n_jobs", -1) or -1)
        n_jobs = cores + 1 + n_jobs if n_jobs < 0 else n_jobs
        return max(1, cores // max(1, min(n_jobs, cores)))
    if "ray" in target:
        remote = (launcher.get("ray") or {}).get("remote") or {}
        return max(1, int(remote.get("num_cpus") or 1))
    if "submitit" in target:
        cpus = launcher.get("cpus_per_task") or env.get("SLURM_CPUS_PER_TASK")
        return max(1, int(cpus or 1))
    return 0


def _job_status(sweep_dir, num, state, overrides):
    """Record this job's state (running, done, failed) in <sweep dir>/.jobs/ and print the sweep's counts:
    `[sweep] job #3 done (task=... planner=...): 4 done, 2 running, 0 failed`."""
    from pathlib import Path
    folder = Path(sweep_dir) / ".jobs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{num}.*"):
            old.unlink(missing_ok=True)
        (folder / f"{num}.{state}").write_text(" ".join(overrides) + "\n")
        states = [p.suffix[1:] for p in folder.iterdir()]
        counts = ", ".join(f"{states.count(s)} {s}" for s in ("done", "running", "failed"))
    except OSError:  # a sweep dir this worker cannot write (a remote Ray node): the line alone
        counts = "counts unknown here"
    print(f"[sweep] job #{num} {state} ({' '.join(overrides)}): {counts}", file=sys.stderr, flush=True)


def hydra_app(job):
    """Run `job(cfg)` (cfg: our validated Config) as a Hydra application on sys.argv."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from tdmpc2 import config

    def task_function(dict_cfg):
        hydra_cfg = HydraConfig.get()
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        overrides = list(hydra_cfg.overrides.task)
        if multirun:
            _job_status(hydra_cfg.sweep.dir, hydra_cfg.job.num, "running", overrides)
        try:
            cfg = config.parse_cfg(config.from_hydra(dict_cfg, overrides))
            cfg._overrides = overrides  # what the user set for this job (evaluate: the checkpoint's config yields)
            if multirun:
                cfg.threads = job_threads(cfg.threads, hydra_cfg.launcher)
            result = job(cfg)
        except UserError as err:
            if not multirun:
                _fail(err)
            print(f"error in job {hydra_cfg.job.num} ({' '.join(overrides)}): {err}", file=sys.stderr)
            _job_status(hydra_cfg.sweep.dir, hydra_cfg.job.num, "failed", overrides)
            return {"error": str(err)}
        except BaseException:
            if multirun:
                _job_status(hydra_cfg.sweep.dir, hydra_cfg.job.num, "failed", overrides)
            raise
        if multirun:
            _job_status(hydra_cfg.sweep.dir, hydra_cfg.job.num, "done", overrides)
        return result

    try:
        from dream_mpc.registry import load_plugins
        load_plugins()
        sys.argv[1:] = config.check_overrides(sys.argv[1:])
        config.register()
    except UserError as err:
        _fail(err)
    try:
        hydra.main(config_path=str(config.CONFIG_DIR), config_name=config.CONFIG_NAME, version_base=None)(task_function)()
    except KeyboardInterrupt:
        _fail("interrupted", 130)


def train_job(cfg):
    from dream_mpc.registry import agents
    from tdmpc2 import runtime
    from tdmpc2.buffer import Buffer
    from tdmpc2.envs import make_env
    from tdmpc2.logger import Logger
    from tdmpc2.trainer import OnlineTrainer

    if cfg.multitask:  # task=mt30|mt80: offline from the dataset chunks in data_dir
        from tdmpc2.offline import train as train_offline
        return train_offline(cfg)
    runtime.setup(cfg)
    env = make_env(cfg)
    agent = agents.get(cfg.agent)(cfg)
    return OnlineTrainer(cfg, env, agent, Buffer(cfg), Logger(cfg)).train()


def evaluate_job(cfg):
    from tdmpc2.config import check_checkpoint_file
    from tdmpc2.evaluation import evaluate_checkpoint
    check_checkpoint_file(cfg.checkpoint)  # a missing or non-torch file: one line, before anything is loaded
    if cfg.multitask:  # task=mt30|mt80: every task of the set, the official normalized score
        from tdmpc2.envs.multitask import evaluate_checkpoint_set
        return evaluate_checkpoint_set(cfg)
    return evaluate_checkpoint(cfg)


def run(job, argv):
    """Run a job in-process on a list of overrides (tests, notebooks): the same config and checks as the app."""
    from tdmpc2 import config
    cfg = config.load(argv)
    cfg._overrides = list(argv)
    return job(cfg)


def train():
    """python train.py task=dog-run planner=dream steps=1000000 (any config key=value; -m for sweeps)."""
    hydra_app(train_job)


def evaluate():
    """python evaluate.py task=dog-run checkpoint=dog-run-1.pt planner=mppi|policy|dream (-m for sweeps)."""
    hydra_app(evaluate_job)
