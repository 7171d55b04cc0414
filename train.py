"""Train an agent online: python train.py task=dog-run planner=dream steps=1000000 (any config key=value).

A Hydra application (tdmpc2/cli.py): `python train.py -m seed=1,2,3` runs a sweep, `--cfg job` prints the config.
"""
from tdmpc2.cli import train

if __name__ == "__main__":
    train()
