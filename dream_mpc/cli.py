"""The command-line applications (`train.py`, `evaluate.py`, the console scripts `dream-mpc-train` and
`dream-mpc-evaluate`): Hydra applications on the root config that dream_mpc/config.py registers. A user's mistake
prints `error: ...` without a traceback and exits 2; in a multirun the job fails, the others go on, and the multirun
ends with a line naming the failed jobs and exit code 1 (docs/errors.md).
"""

import os
import sys
import warnings

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; before anything imports mujoco

from dream_mpc import reproducible_products  # noqa: E402
from dream_mpc.errors import UserError  # noqa: E402

reproducible_products()  # the programs' choice: the same bits at any CPU thread count (before MKL's first product)
# a Python warning reaches the user as one line, as our own warnings do (no file name, no source line)
warnings.formatwarning = lambda message, category, *_, **__: f"warning: {message}\n"


def _fail(message, code=2):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def quiet_libraries():
    """Keep the libraries' start-up notes (dm_control's OpenGL backend and MuJoCo version, PyOpenGL's accelerate
    module) off the output: Hydra's job logging prints INFO to stdout, where they would open every command."""
    import logging

    for name in ("absl", "OpenGL"):
        logging.getLogger(name).setLevel(logging.WARNING)


def hydra_app(job):
    """Run `job(cfg)` (cfg: our validated Config) as a Hydra application on sys.argv."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from dream_mpc import config, sweeps

    if hasattr(sys.stdout, "reconfigure"):  # a program's console lines reach a job's log file as they are written
        sys.stdout.reconfigure(line_buffering=True)

    def task_function(dict_cfg):
        quiet_libraries()
        hydra_cfg = HydraConfig.get()
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        overrides = list(hydra_cfg.overrides.task)
        if multirun:
            sweeps.job_status(hydra_cfg.sweep.dir, hydra_cfg.job.num, "running", overrides)
        try:
            cfg = config.parse_cfg(config.from_hydra(dict_cfg, overrides))
            cfg._overrides = overrides  # what the user set for this job (evaluate: the checkpoint's config yields)
            if multirun:
                cfg.threads = sweeps.job_threads(cfg.threads, hydra_cfg.launcher)
            result = job(cfg)
        except UserError as err:
            if not multirun:
                _fail(err)
            print(f"error in job {hydra_cfg.job.num} ({' '.join(overrides)}): {err}", file=sys.stderr)
            sweeps.job_status(hydra_cfg.sweep.dir, hydra_cfg.job.num, "failed", overrides)
            return {"error": str(err)}
        except BaseException:
            if multirun:
                sweeps.job_status(hydra_cfg.sweep.dir, hydra_cfg.job.num, "failed", overrides)
            raise
        if multirun:
            sweeps.job_status(hydra_cfg.sweep.dir, hydra_cfg.job.num, "done", overrides)
        return result

    try:
        from dream_mpc.registry import load_plugins

        load_plugins()
        sys.argv[1:] = config.check_overrides(sys.argv[1:])
        sweeps.check_launcher(sys.argv[1:])
        config.register()
    except UserError as err:
        _fail(err)
    try:
        if config.job_config_asked(sys.argv[1:]):  # what the job runs with: the family's planner defaults applied
            try:
                yaml = job_config_yaml(sys.argv[1:])
            except UserError as err:
                _fail(err)
            print(yaml)
            sys.stdout.flush()
            return
        if config.is_multirun(sys.argv[1:]):
            sys.argv.append(sweeps.CALLBACK)  # tells this process at the end which jobs failed, whatever the launcher
        app = hydra.main(config_path=str(config.CONFIG_DIR), config_name=config.CONFIG_NAME, version_base=None)
        app(task_function)()
        _report_failed_jobs(sweeps.failed_jobs())
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:  # the output went into a pipe that closed early (`--help | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)  # 128 + SIGPIPE, as a shell tool killed by the closed pipe exits


def job_config_yaml(argv):
    """`--cfg job`: the config the job will run with, validated as a run validates it (a bad value is the same
    one-line error), with the agent family's planner defaults applied (Hydra alone would print the planners' own
    defaults); with `checkpoint=` (evaluate.py), the file's own config with the command line's overrides, as the
    loader builds it."""
    from dream_mpc import config

    overrides = config.job_overrides(argv)
    raw = config.compose(overrides)
    overridden = set(raw.pop("_overridden"))
    if not raw.get("checkpoint"):
        return config.job_yaml(config.effective(raw, overridden))
    from dream_mpc.checkpoint import load_agent

    task = raw["task"] if "task" in overridden else None
    agent = load_agent(raw["checkpoint"], task=task, device="cpu", overrides=overrides)
    keys = set(config.root_node().keys())  # root keys and option blocks, not the env dims the loader added
    shown = {k: v for k, v in agent.cfg.to_dict().items() if k in keys}
    return config.job_yaml({**shown, "planner": agent.planner.name})


def _report_failed_jobs(failed, shown=10):
    """A multirun with failed jobs: one line naming them (each job's own error was printed as it failed), exit 1."""
    if not failed:
        return
    parts, where = [], []
    for sweep_dir, jobs in failed:
        where.append(f"{sweep_dir}/.jobs")
        parts += [f"#{num} {what} ({overrides})" for num, (what, overrides) in jobs.items()]
    more = f", and {len(parts) - shown} more" if len(parts) > shown else ""
    many = "s" if len(parts) > 1 else ""
    _fail(
        f"{len(parts)} job{many} of the multirun failed: {'; '.join(parts[:shown])}{more} (see {', '.join(where)})", 1
    )


def train_job(cfg):
    from dream_mpc import runtime
    from dream_mpc.envs import make_env
    from dream_mpc.registry import agents
    from dream_mpc.training.buffer import Buffer
    from dream_mpc.training.logger import Logger
    from dream_mpc.training.trainer import OnlineTrainer

    family = agents.get(cfg.agent)
    if cfg.multitask:  # task=mt30|mt80: the family's own way (TD-MPC2: offline from the dataset chunks in data_dir)
        return family.train_task_set(cfg)
    from dream_mpc.config import warn_unused

    warn_unused(cfg.agent, cfg.planner, cfg.get("_overrides", ()))
    runtime.ensure_writable(cfg.work_dir, "the run (checkpoints, logs)")  # before the env, agent and training
    runtime.setup(cfg)
    env = make_env(cfg)
    agent = family(cfg)
    # the agent's own sequences; stacked pixel frames are stored once each (1M 64x64 RGB steps: 12.3 GB)
    buffer = Buffer(cfg, family.sequence_length(cfg), family.batch_size(cfg), getattr(env, "frame_stack", 1))
    return OnlineTrainer(cfg, env, agent, buffer, Logger(cfg)).train()


def evaluate_job(cfg):
    from dream_mpc.evaluation.episodes import evaluate_checkpoint

    return evaluate_checkpoint(cfg)


def run(job, argv):
    """Run a job in-process on a list of overrides (tests, notebooks): the same config and checks as the app."""
    from dream_mpc import config

    cfg = config.load(argv)
    cfg._overrides = list(argv)
    return job(cfg)


def train():
    """python train.py task=dog-run planner=dream steps=1000000 (any config key=value; -m for sweeps)."""
    hydra_app(train_job)


def evaluate():
    """python evaluate.py task=dog-run checkpoint=dog-run-1.pt planner=mppi|policy|dream (-m for sweeps)."""
    hydra_app(evaluate_job)
