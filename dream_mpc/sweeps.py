"""What a job of a Hydra multirun needs to know about its sweep: its share of the cores, and the sweep's progress;
and what the multirun's own process needs: a launcher this machine can run (`check_launcher`, at its start) and
which jobs failed (`SweepStatus`, `failed_jobs`, at its end)."""

import os
import sys
from pathlib import Path

from hydra.experimental.callback import Callback

CALLBACK = "++hydra.callbacks.dream_mpc_sweep_status._target_=dream_mpc.sweeps.SweepStatus"  # cli adds it to -m
_ended = {}  # sweep dir -> the failed jobs, recorded in the multirun's own process at its end


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


# launchers that submit to a scheduler: the command the scheduler must have on this machine, and its name
SCHEDULER_COMMANDS = {"submitit_slurm": ("srun", "SLURM")}


def check_launcher(argv):
    """A UserError, before Hydra starts, when `hydra/launcher=` names a scheduler this machine does not have (Hydra
    would print the launcher's traceback instead)."""
    import shutil

    from dream_mpc.errors import UserError

    for arg in argv:
        key, _, name = arg.partition("=")
        if key.lstrip("+") == "hydra/launcher" and name in SCHEDULER_COMMANDS:
            command, scheduler = SCHEDULER_COMMANDS[name]
            if shutil.which(command) is None:
                raise UserError(
                    f"hydra/launcher={name} submits the jobs to {scheduler}, but this machine has no `{command}`: "
                    "run the command where the cluster's scheduler is, or run the sweep here with "
                    "hydra/launcher=submitit_local or hydra/launcher=joblib"
                )


def job_status(sweep_dir, num, state, overrides):
    """Record this job's state (running, done, failed) in <sweep dir>/.jobs/ and print the sweep's counts:
    `[sweep] job #3 done (task=... planner=...): 4 done, 2 running, 0 failed`."""
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


def job_states(sweep_dir):
    """{job number: (state, overrides)} from <sweep dir>/.jobs/ (empty where it cannot be read)."""
    out = {}
    try:
        for path in (Path(sweep_dir) / ".jobs").iterdir():
            num, _, state = path.name.partition(".")
            if num.isdigit():
                out[int(num)] = (state, path.read_text().strip())
    except OSError:
        pass
    return dict(sorted(out.items()))


class SweepStatus(Callback):
    """Hydra callback on a multirun (cli.hydra_app adds it): at the start it clears the job states an earlier sweep
    left in the same sweep dir; at the end, in the multirun's own process whatever the launcher, it records the jobs
    that failed or never ended (a job's UserError is caught inside it, so Hydra sees every job succeed)."""

    def on_multirun_start(self, config, **kwargs):
        folder = Path(str(config.hydra.sweep.dir)) / ".jobs"
        for old in folder.glob("*") if folder.is_dir() else ():
            old.unlink(missing_ok=True)

    def on_multirun_end(self, config, **kwargs):
        sweep_dir = str(config.hydra.sweep.dir)
        states = job_states(sweep_dir)
        _ended[sweep_dir] = {
            num: ("failed" if state == "failed" else "did not finish", overrides)
            for num, (state, overrides) in states.items()
            if state != "done"
        }


def failed_jobs():
    """[(sweep dir, {job number: (what, overrides)})] of the multiruns this process ran that had failed jobs."""
    return [(d, jobs) for d, jobs in _ended.items() if jobs]
