"""The main job (`make demo`): the bundled agent evaluated with the policy alone, MPPI and Dream-MPC, in about
three minutes on two cores.

    python scripts/demo.py [--episodes 3] [--mppi-episodes 1] [--checkpoint agents/cartpole-swingup-tdmpc2-1M.pt]
                           [--threads N] [--out results/tmp/demo-<time>] [--resume | --overwrite]

MPPI plans ~10x slower than Dream-MPC on a CPU, so by default it runs 1 episode where the policy and Dream-MPC run 3
(all from seed 1, so MPPI's episode is the others' first one); the printed table says how many each ran. One
evaluation seed is one run: the differences to the policy come without an interval ("n=1: no interval") and there is
no spread over seeds; for intervals and a fair comparison use scripts/compare_planners.py with --seeds 2 or more
(Student's t over seeds, dream_mpc/evaluation/intervals.py) and the same number of episodes for every planner.
Episodes run through evaluate.py's evaluation path and are recorded in out/records; episodes.csv, summary.json and
returns.png are written from them, to a new folder under results/tmp/ (ignored by git); an existing
folder given with --out is kept as it is unless --resume or --overwrite says otherwise.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dream_mpc import reproducible_products

reproducible_products()  # the same bits at any CPU thread count (before MKL's first product)

import compare_planners  # noqa: E402
import outputs  # noqa: E402

from dream_mpc.errors import UserError, run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "agents" / "cartpole-swingup-tdmpc2-1M.pt"


# seconds per cartpole episode (500 steps) on 2 cores, measured on a shared machine: the bar moves per episode
EXPECTED_S = {"policy": 2, "mppi": 110, "dream": 7}


def _announce(planner, episodes):
    print(
        f"{planner}: {episodes} episode{'s' * (episodes != 1)} of 500 steps, ~{EXPECTED_S[planner]} s each on 2 cores",
        flush=True,
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(DEFAULT))
    p.add_argument("--episodes", type=int, default=3, help="episodes of the policy and of Dream-MPC")
    p.add_argument("--mppi-episodes", type=int, default=1, help="episodes of MPPI (0: leave MPPI out)")
    p.add_argument("--out", default=None, help="output folder (default: a new results/tmp/demo-<time>)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    outputs.add_flags(p)
    args = p.parse_args(argv)
    if args.episodes < 1 or args.mppi_episodes < 0:
        raise UserError(
            f"--episodes must be >= 1 and --mppi-episodes >= 0, got {args.episodes} and {args.mppi_episodes}"
        )
    if not Path(args.checkpoint).is_file():
        raise UserError(f"checkpoint not found: {args.checkpoint}")
    out = args.out or outputs.TMP / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    out = outputs.output_folder(out, compare_planners.OUTPUT_FILES, resume=args.resume, overwrite=args.overwrite)
    runs = [("policy", args.episodes), ("mppi", args.mppi_episodes), ("dream", args.episodes)]
    runs = [(planner, n) for planner, n in runs if n > 0]
    print(
        f"Bundled agent {Path(args.checkpoint).name}: policy prior vs MPPI vs Dream-MPC, seed 1: "
        + ", ".join(f"{planner} {n} episode{'s' * (n != 1)}" for planner, n in runs)
        + (
            " (MPPI plans ~10x slower on a CPU: fewer episodes to keep the demo short)"
            if 0 < args.mppi_episodes < args.episodes
            else ""
        )
        + f"\nresults -> {out}\n",
        flush=True,
    )
    if args.overwrite and (out / "records").is_dir():
        shutil.rmtree(out / "records")  # --overwrite: every episode again (--resume keeps the recorded ones)
    start = time.perf_counter()
    for planner, n in runs:  # through evaluate.py's path: recorded episodes in out/records are not run again
        _announce(planner, n)
        compare_planners.evaluate_all([args.checkpoint], [planner], 1, n, out / "records", threads=args.threads)
    rows = compare_planners.rows_from_records([out / "records"])
    order = {planner: i for i, (planner, _) in enumerate(runs)}
    rows.sort(key=lambda r: (order.get(r["planner"], len(order)), r["seed"], r["episode"]))
    summary = compare_planners.report(compare_planners.write_rows(rows, out / "episodes.csv"), out)
    print(
        "\nOne evaluation seed is one run: no interval and no spread over seeds. For 95 % intervals run "
        "scripts/compare_planners.py with --seeds 2 or more."
    )
    print(f"demo finished in {time.perf_counter() - start:.0f} s of evaluation")
    return summary


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
