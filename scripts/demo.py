"""The main job (`make demo`): the bundled agent evaluated with the policy alone, MPPI and Dream-MPC.

    python scripts/demo.py [--episodes 3] [--checkpoint agents/cartpole-swingup-tdmpc2-1M.pt] [--threads N]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compare_planners  # noqa: E402
from tdmpc2.errors import run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "agents" / "cartpole-swingup-tdmpc2-1M.pt"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(DEFAULT))
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "results" / "demo"))
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args(argv)
    print(f"Bundled agent {Path(args.checkpoint).name}: policy prior vs MPPI vs Dream-MPC, "
          f"{args.episodes} episodes each (seed 1)\n")
    compare_planners.main(["--checkpoints", args.checkpoint, "--planners", "policy", "mppi", "dream",
                           "--seeds", "1", "--episodes", str(args.episodes), "--out", args.out,
                           "--threads", str(args.threads)])


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
