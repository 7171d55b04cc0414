"""Evaluate a checkpoint with any planner:
python evaluate.py task=dog-run checkpoint=dog-run-1.pt planner=mppi|policy|dream [eval_episodes=10 seed=1
save_video=false eval_noise=false]

A Hydra application (dream_mpc/cli.py): `python evaluate.py -m planner=mppi,dream seed=1,2,3` runs a sweep.
"""

from dream_mpc import cli


def main(argv):
    """In-process, on a list of overrides (tests, notebooks)."""
    return cli.run(cli.evaluate_job, argv)


if __name__ == "__main__":
    cli.evaluate()
