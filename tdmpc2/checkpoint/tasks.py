"""Everything a checkpoint load needs to know about tasks, in one place: which names are tasks and task sets,
a task's true dims (to check a file against), episode lengths, and the task a file was trained on.

Kept apart because the task lists live in the env-suite registry (`dream_mpc.envs`: `is_task`, `task_set`,
`task_dims`), which evolves on its own; the rest of the package asks only this module.
"""

import re
import warnings
from pathlib import Path

from dream_mpc.errors import UserError


def task_set(name):
    """The task list of a multi-task set (mt30, mt80) in official task-id order, or None for any other name."""
    from dream_mpc.envs import task_set as lookup

    return lookup(name)


def task_set_of_size(num_tasks):
    """The official task set with `num_tasks` tasks (mt30, mt80), or None."""
    for name in ("mt30", "mt80"):
        tasks = task_set(name)
        if tasks is not None and len(tasks) == num_tasks:
            return name
    return None


def is_single_task(name):
    from dream_mpc.envs import is_task

    return is_task(name) and task_set(name) is None


def env_dims(task):
    """(state observation dim, action dim) of a single task, read from its suite without stepping it; None when
    the task is unknown, a task set, or its simulator is not installed."""
    if not is_single_task(task):
        return None
    from dream_mpc.envs import task_dims

    try:
        with warnings.catch_warnings():  # dm_control probes an OpenGL backend on import; nothing is rendered here
            warnings.simplefilter("ignore")
            dims = task_dims(task)
    except (ImportError, UserError):
        return None
    if dims is None:
        return None
    obs_shape, action_dim = dims[0], dims[1]
    obs_dim = obs_shape[0] if isinstance(obs_shape, (tuple, list)) else int(obs_shape)
    return int(obs_dim), int(action_dim)


def mt_action_dim(task):
    """The action dim of a task of mt30/mt80 (the official multi-task models mask the rest)."""
    from dream_mpc.envs.task_sets import action_dims

    return action_dims(task)[0]


def episode_length(task):
    """Agent steps per episode, by name (no env is built): Meta-World 100 (after action repeat), DMControl 500."""
    return 100 if task.startswith("mw-") else 500


def single_episode_length(task):
    """A single task's episode length as its suite declares it (HumanoidBench 1000, gym-pendulum 200: the discount
    depends on it), else by name as `episode_length`."""
    from dream_mpc.envs import task_dims

    try:
        with warnings.catch_warnings():  # dm_control probes an OpenGL backend on import; nothing is rendered here
            warnings.simplefilter("ignore")
            dims = task_dims(task) if is_single_task(task) else None
    except (ImportError, UserError):
        dims = None
    return int(dims[2]) if dims is not None else episode_length(task)


def task_from_filename(path):
    """Official single-task files are named `<task>-<seed>.pt`, e.g. dog-run-1.pt."""
    stem = re.sub(r"-\d+$", "", Path(path).stem)
    return stem if is_single_task(stem) else None


def resolve_task(task, spec, saved, path):
    """(task, where it came from): the argument, the file's own config, its task set, its file name; or
    (None, None) when nothing says (the config default is used and the task dims are not checked)."""
    if task is not None:
        return task, "argument"
    if saved and saved.get("task"):
        return saved["task"], "checkpoint config"
    if spec["num_tasks"] > 1:
        if spec["task_set"] is None:
            raise UserError(
                f"{path} is a multi-task model over {spec['num_tasks']} tasks, but only mt30 (30 tasks) "
                f"and mt80 (80 tasks) are known task sets"
            )
        return spec["task_set"], "task embeddings"
    guess = task_from_filename(path)
    if guess is not None:
        return guess, "file name"
    warnings.warn(
        f"{path} does not say which task it was trained on; pass task=... to check its dims and get "
        f"the task's discount (using episode length 500, as on DMControl)",
        stacklevel=3,
    )
    return None, None


def check_task_kind(task, spec, path):
    """Single-task files need a single task, multi-task files their own task set."""
    if task is None:
        return
    tasks = task_set(task)
    if spec["num_tasks"] > 1 and tasks is None:
        raise UserError(
            f"{path} is a multi-task model ({spec['num_tasks']} tasks), but task={task} is a single "
            f"task. Load it with task={spec['task_set']} and pass the task's id when acting"
        )
    if spec["num_tasks"] == 1 and tasks is not None:
        raise UserError(
            f"{path} is a single-task model, but task={task} is a multi-task set. Load it with the task "
            f"it was trained on (official files are named <task>-<seed>.pt)"
        )
    if tasks is not None and len(tasks) != spec["num_tasks"]:
        raise UserError(
            f"{path} has {spec['num_tasks']} task embeddings, but {task} has {len(tasks)} tasks. "
            f"Load it with task={spec['task_set'] or '...'}"
        )


def check_task_dims(path, spec, task, source, dims=None):
    """The file's observation and action dims against the task's true ones (from `dims` or the task's suite)."""
    dims = tuple(dims) if dims is not None else env_dims(task)
    if dims is None:
        return
    obs_dim, action_dim = dims
    obs_fits = spec["obs"] == "rgb" or spec["obs_dim"] == obs_dim  # rgb: only the actions compare
    if obs_fits and action_dim == spec["action_dim"]:
        return
    file_obs = spec["obs_dim"] if spec["obs"] == "state" else f"{spec['obs_shape']} (rgb)"
    raise UserError(
        f"checkpoint {path} does not fit task {task} ({source}): the checkpoint has observation dim {file_obs} and "
        f"action dim {spec['action_dim']}, the task has observation dim {obs_dim} and action dim {action_dim}. "
        f"Load it with the task it was trained on (official files are named <task>-<seed>.pt, e.g. "
        f"task=dog-run for dog-run-1.pt)"
    )


def set_env_dims(cfg, spec):
    """What an environment would tell: dims from the file; episode lengths (and multi-task action dims) from
    the task names."""
    from dream_mpc import config

    if cfg.multitask:
        action_dims = [mt_action_dim(t) for t in cfg.tasks]
        lengths = [episode_length(t) for t in cfg.tasks]
        config.set_env_dims(cfg, spec["obs_shape"], spec["action_dim"], max(lengths), action_dims, lengths)
    else:
        config.set_env_dims(cfg, spec["obs_shape"], spec["action_dim"], single_episode_length(cfg.task))
