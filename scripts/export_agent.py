"""Copy a training checkpoint without its optimizer, buffer and RNG state: what we bundle in agents/.

python scripts/export_agent.py logs/cartpole-swingup/1/bundle/models/final.pt agents/cartpole-swingup-tdmpc2-1M.pt
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dream_mpc import checkpoint  # noqa: E402

KEEP = ("model", "config", "input_transform", "step", "metadata")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("--overwrite", action="store_true", help="replace target if it exists")
    args = p.parse_args()
    if Path(args.target).exists() and not args.overwrite:
        p.exit(2, f"error: {args.target} exists: add --overwrite to replace it (nothing was written)\n")
    obj = checkpoint.read(args.source)
    checkpoint.atomic_save({k: v for k, v in obj.items() if k in KEEP}, args.target)
    kept = ", ".join(k for k in KEEP if k in obj)
    print(f"{args.target}: {Path(args.target).stat().st_size / 1e6:.1f} MB (kept {kept})")


if __name__ == "__main__":
    main()
