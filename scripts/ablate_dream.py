"""Dream-MPC variants on one agent: which part (step size, iterations, candidates, reuse, penalty sign, horizon)
moves the return. Each variant is a set of `dream.*` overrides; every variant sees the same initial states.

    python scripts/ablate_dream.py --checkpoint agents/walker-walk-bmpc-1M.pt --seeds 1 --episodes 10 \\
        --out results/tmp/ablation-walker-walk-bmpc [--variants "lr 0.5=dream.lr=0.5" ...] [--overwrite]

Writes episodes.csv, summary.json and a bar plot (returns.png) like compare_planners.py, one bar per variant, to
--out (default results/tmp/ablation, ignored by git); a folder that already holds them needs --overwrite.
"""

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dream_mpc import reproducible_products

reproducible_products()  # the same bits at any CPU thread count (before MKL's first product)

import compare_planners  # noqa: E402
import outputs  # noqa: E402

from dream_mpc.errors import UserError, run_cli  # noqa: E402

# label=override[,override...]: one knob of the paper's defaults at a time
DEFAULT_VARIANTS = [
    "paper defaults=",
    "step 0.5=dream.lr=0.5",
    "5 iterations=dream.iterations=5",
    "32 candidates=dream.num_candidates=32",
    "no reuse=dream.reuse=0",
    "signed penalty=dream.uncertainty_sign=signed",
    "no penalty=dream.uncertainty_coef=0",
    "horizon 5=dream.horizon=5",
]


def parse_variant(text):
    label, sep, overrides = text.partition("=")
    if not sep or not label:
        raise UserError(f"a variant is 'label=key=value[,key=value]', got {text!r}")
    return label, [o for o in overrides.split(",") if o]


def evaluate_variants(checkpoints, variants, seeds, episodes, out, device="auto", threads=0):
    """Every (label, overrides) variant of Dream-MPC on the checkpoints through evaluate.py's path, a records folder
    per variant in out/records (recorded episodes are skipped); episodes.csv rows with the label as `planner`."""
    rows = []
    for i, (label, overrides) in enumerate(variants):
        folder = out / "records" / f"variant-{i}"
        compare_planners.evaluate_all(
            checkpoints, ["dream"], seeds, episodes, folder, overrides, device=device, threads=threads
        )
        rows += [dict(r, planner=label) for r in compare_planners.rows_from_records([folder])]
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, help="label=key=value[,key=value]")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N")
    p.add_argument("--out", default="results/tmp/ablation", help="output folder (default: ignored by git)")
    outputs.add_flags(p, resume=False)
    args = p.parse_args(argv)
    if not Path(args.checkpoint).is_file():
        raise UserError(f"checkpoint not found: {args.checkpoint}")
    variants = [parse_variant(v) for v in args.variants]
    out = outputs.output_folder(args.out, compare_planners.OUTPUT_FILES, overwrite=args.overwrite, resumable=False)
    if (out / "records").is_dir():
        shutil.rmtree(out / "records")  # --overwrite: every variant again
    rows = evaluate_variants([args.checkpoint], variants, args.seeds, args.episodes, out, args.device, args.threads)
    rows = compare_planners.write_rows(rows, out / "episodes.csv")
    compare_planners.report(rows, out, baseline=variants[0][0])  # paired against the first variant


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
