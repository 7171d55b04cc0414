"""Train an agent online: python train.py task=dog-run planner=dream steps=1000000 (any config.yaml key=value)."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; before anything imports mujoco

import sys

from tdmpc2.errors import UserError


def make_agent(cfg):
    from tdmpc2.agent import TDMPC2
    if cfg.agent != "bmpc":
        return TDMPC2(cfg)
    try:
        from tdmpc2.bmpc import BMPC
    except ModuleNotFoundError as err:
        if err.name != "tdmpc2.bmpc":
            raise
        raise UserError("agent=bmpc needs tdmpc2/bmpc.py, which this checkout does not have yet") from None
    return BMPC(cfg)


def main(argv):
    from tdmpc2 import config, runtime
    from tdmpc2.buffer import Buffer
    from tdmpc2.envs import make_env
    from tdmpc2.logger import Logger
    from tdmpc2.trainer import OnlineTrainer

    cfg = config.load(argv)
    runtime.setup(cfg)
    env = make_env(cfg)
    agent = make_agent(cfg)
    OnlineTrainer(cfg, env, agent, Buffer(cfg), Logger(cfg)).train()


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to resume from the last checkpoint", file=sys.stderr)
        sys.exit(2)
