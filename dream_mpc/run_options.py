"""The root config keys every run shares, whatever its agent family and planner, declared once (type, range, doc).
A family's own root keys are declared with the family (`Agent.RootOptions`), a planner's with the planner; the
root config, `--help`, `--cfg job` and config.yaml are built from these declarations (dream_mpc/config.py)."""

from dataclasses import dataclass

from dream_mpc.options import option

_POS_INT, _NONNEG_INT = dict(low=1), dict(low=0)


@dataclass
class RunOptions:
    # what runs
    task: str = option("dog-run", "task name (any registered suite's) or a multi-task set: mt30, mt80")
    obs: str = option("state", "observations: state, or rgb pixels (suites that render)", choices=("state", "rgb"))
    episodic: bool = option(False, "terminations end the TD target (HumanoidBench falls); false: official TD-MPC2")
    agent: str = option(
        None,
        "agent family: any registered agent (the built-in ones and a plug-in's); default: TD-MPC2's",
        nullable=True,
    )
    planner: str = option("mppi", "planner that acts: any registered planner (mppi, dream, grad, hybrid, cem, ...)")
    mpc: bool = option(True, "false: act with the policy alone (recorded as planner=policy)")
    device: str = option("auto", "auto (cuda if present, else cpu), cpu, cuda or cuda:N")
    seed: int = option(1, "random seed (training, or the evaluation's)", **_NONNEG_INT)
    # evaluation
    checkpoint: str = option(None, "evaluate.py: the .pt file to evaluate (ours or official)", nullable=True)
    eval_episodes: int = option(10, "episodes per evaluation", **_POS_INT)
    eval_freq: int = option(50000, "env steps between evaluations during training; 0: never", **_NONNEG_INT)
    eval_tasks: list = option(None, "task=mt30|mt80: evaluate only these tasks of the set", nullable=True)
    eval_noise: bool = option(False, "true: keep the planner's exploration noise at evaluation (official evaluate.py)")
    trust_checkpoint: bool = option(
        False, "read checkpoints with weights_only=False (can run code: trusted files only)"
    )
    results_dir: str = option(
        "logs/results", "evaluate.py appends one record per episode here; a rerun skips recorded episodes"
    )
    # training
    steps: int = option(10_000_000, "env steps to train", **_POS_INT)
    buffer_size: int = option(1_000_000, "replay buffer rows (at least one episode)", **_POS_INT)
    seed_steps: int = option(
        None, "random-action steps before updates; null: max(1000, 5 * episode_length)", nullable=True, low=0
    )
    exp_name: str = option("default", "run name: the folder logs/<task>/<seed>/<exp_name> (a plain name)")
    # logging
    wandb_project: str = option(None, "Weights & Biases project (enable_wandb=true)", nullable=True)
    wandb_entity: str = option(None, "Weights & Biases entity", nullable=True)
    wandb_silent: bool = option(False, "silence wandb's output")
    enable_wandb: bool = option(True, "log to Weights & Biases (when project and entity are both set)")
    save_csv: bool = option(True, "write the training and evaluation logs as CSV")
    save_video: bool = option(False, "record evaluation videos")
    save_agent: bool = option(True, "write checkpoints")
    save_freq: int = option(10000, "env steps between checkpoints; 0: only at the end", **_NONNEG_INT)
    resume: bool = option(True, "continue from <work_dir>/models/last.pt when it exists")
    # speed
    compile: bool = option(False, "torch.compile planning and the update (CUDA); no speed-up on CPU")
    keep_freed_memory: bool = option(
        False, "glibc keeps freed memory for reuse (no page faults; resident memory stays at its peak)"
    )
    threads: int = option(0, "torch CPU threads; 0: torch's default", **_NONNEG_INT)
    plan_threads: int = option(
        0, "CPU threads of an acting step; 0: the fastest of 1..threads, timed as it runs", **_NONNEG_INT
    )
