"""TD-MPC2's multi-task sets: mt30 (DMControl and 11 custom tasks) and mt80 (mt30 and 50 Meta-World tasks)."""

# TD-MPC2's 11 custom DMControl tasks (dream_mpc/envs/dmcontrol_custom.py defines them)
CUSTOM_DMC = (
    "walker-walk-backwards",
    "walker-run-backwards",
    "cheetah-run-backwards",
    "cheetah-run-front",
    "cheetah-run-back",
    "cheetah-jump",
    "hopper-hop-backwards",
    "reacher-three-easy",
    "reacher-three-hard",
    "cup-spin",
    "pendulum-spin",
)
_MT30_DMC = (
    "walker-stand",
    "walker-walk",
    "walker-run",
    "cheetah-run",
    "reacher-easy",
    "reacher-hard",
    "acrobot-swingup",
    "pendulum-swingup",
    "cartpole-balance",
    "cartpole-balance-sparse",
    "cartpole-swingup",
    "cartpole-swingup-sparse",
    "cup-catch",
    "finger-spin",
    "finger-turn-easy",
    "finger-turn-hard",
    "fish-swim",
    "hopper-stand",
    "hopper-hop",
)
_MW = (
    "assembly basketball button-press-topdown button-press-topdown-wall button-press button-press-wall "
    "coffee-button coffee-pull coffee-push dial-turn disassemble door-open door-close drawer-close drawer-open "
    "faucet-open faucet-close hammer handle-press-side handle-press handle-pull-side handle-pull lever-pull "
    "peg-insert-side peg-unplug-side pick-out-of-hole pick-place pick-place-wall plate-slide plate-slide-side "
    "plate-slide-back plate-slide-back-side push-back push push-wall reach reach-wall shelf-place soccer stick-push "
    "stick-pull sweep-into sweep window-open window-close bin-picking box-close door-lock door-unlock hand-insert"
)
# the list index is the task id of the official multi-task models and datasets
TASK_SETS = {"mt30": _MT30_DMC + CUSTOM_DMC}
TASK_SETS["mt80"] = TASK_SETS["mt30"] + tuple("mw-" + t for t in _MW.split())
# (observation dim, action dim) of every mt30/mt80 task, as the official multi-task models and datasets have them
# (tests/test_multitask.py builds each env and checks); the list order above is what the task ids index
_DMC_DIMS = {
    "walker": (24, 6),
    "cheetah": (17, 6),
    "reacher": (6, 2),
    "acrobot": (6, 1),
    "pendulum": (3, 1),
    "cartpole": (5, 1),
    "cup": (8, 2),
    "fish": (24, 5),
    "hopper": (15, 4),
}
TASK_DIMS = {task: _DMC_DIMS[task.split("-")[0]] for task in TASK_SETS["mt30"] if not task.startswith("finger")}
TASK_DIMS.update(
    {
        "finger-spin": (9, 2),
        "finger-turn-easy": (12, 2),
        "finger-turn-hard": (12, 2),
        "reacher-three-easy": (8, 3),
        "reacher-three-hard": (8, 3),
    }
)  # the 3-link reacher has 3 motors
TASK_DIMS.update({task: (39, 4) for task in TASK_SETS["mt80"] if task.startswith("mw-")})
# agent steps per episode: DMControl 500 (action repeat 2), Meta-World 100 (action repeat 2)
TASK_EPISODE_LENGTHS = {task: 100 if task.startswith("mw-") else 500 for task in TASK_SETS["mt80"]}


def action_dims(name):
    """The action dim of every task of a multi-task set (mt30, mt80) in task-id order, or [dim] of one of its tasks;
    the official multi-task models pad actions to the largest and mask the rest."""
    tasks = TASK_SETS.get(name, (name,))
    return [TASK_DIMS[task][1] for task in tasks]


def obs_dims(name):
    """The observation dim of every task of a multi-task set (zero-padded to the largest), or [dim] of one task."""
    tasks = TASK_SETS.get(name, (name,))
    return [TASK_DIMS[task][0] for task in tasks]


def episode_lengths(name):
    tasks = TASK_SETS.get(name, (name,))
    return [TASK_EPISODE_LENGTHS[task] for task in tasks]
