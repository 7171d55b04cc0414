"""Train an agent online: python train.py task=dog-run planner=dream steps=1000000 (any config.yaml key=value)."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; before anything imports mujoco

import sys

from tdmpc2.errors import run_cli


def main(argv):
    from tdmpc2 import config, runtime
    from tdmpc2.agent import agent_class
    from tdmpc2.buffer import Buffer
    from tdmpc2.envs import make_env
    from tdmpc2.logger import Logger
    from tdmpc2.trainer import OnlineTrainer

    cfg = config.load(argv)
    runtime.setup(cfg)
    env = make_env(cfg)
    agent = agent_class(cfg.agent)(cfg)
    OnlineTrainer(cfg, env, agent, Buffer(cfg), Logger(cfg)).train()


if __name__ == "__main__":
    run_cli(main, sys.argv[1:], interrupted="interrupted; run the same command again to resume from the last checkpoint")
