"""Train an agent online: python train.py task=dog-run planner=dream steps=1000000 (any config key=value).

A Hydra application (dream_mpc/cli.py): `python train.py -m seed=1,2,3` runs a sweep, `--cfg job` prints the config.
"""

from dream_mpc import cli


def main(argv):
    """In-process, on a list of overrides (tests, notebooks)."""
    return cli.run(cli.train_job, argv)


if __name__ == "__main__":
    cli.train()
