"""TD-MPC2's multi-task sets: mt30 (DMControl and 11 custom tasks) and mt80 (mt30 and 50 Meta-World tasks)."""
_MT30_CUSTOM = ("walker-walk-backwards", "walker-run-backwards", "cheetah-run-backwards", "cheetah-run-front",
                "cheetah-run-back", "cheetah-jump", "hopper-hop-backwards", "reacher-three-easy", "reacher-three-hard",
                "cup-spin", "pendulum-spin")
_MT30_DMC = ("walker-stand", "walker-walk", "walker-run", "cheetah-run", "reacher-easy", "reacher-hard",
             "acrobot-swingup", "pendulum-swingup", "cartpole-balance", "cartpole-balance-sparse", "cartpole-swingup",
             "cartpole-swingup-sparse", "cup-catch", "finger-spin", "finger-turn-easy", "finger-turn-hard", "fish-swim",
             "hopper-stand", "hopper-hop")
_MW = ("assembly basketball button-press-topdown button-press-topdown-wall button-press button-press-wall "
       "coffee-button coffee-pull coffee-push dial-turn disassemble door-open door-close drawer-close drawer-open "
       "faucet-open faucet-close hammer handle-press-side handle-press handle-pull-side handle-pull lever-pull "
       "peg-insert-side peg-unplug-side pick-out-of-hole pick-place pick-place-wall plate-slide plate-slide-side "
       "plate-slide-back plate-slide-back-side push-back push push-wall reach reach-wall shelf-place soccer stick-push "
       "stick-pull sweep-into sweep window-open window-close bin-picking box-close door-lock door-unlock hand-insert")
# the list index is the task id of the official multi-task models and datasets
TASK_SETS = {"mt30": _MT30_DMC + _MT30_CUSTOM}
TASK_SETS["mt80"] = TASK_SETS["mt30"] + tuple("mw-" + t for t in _MW.split())
# action dims of the mt30/mt80 tasks by domain, needed to rebuild multi-task models without their envs
MT_ACTION_DIMS = {"walker": 6, "cheetah": 6, "reacher": 2, "acrobot": 1, "pendulum": 1, "cartpole": 1, "cup": 2,
                  "finger": 2, "fish": 5, "hopper": 4, "mw": 4}
