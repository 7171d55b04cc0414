"""Where the scripts write: nothing tracked in git is overwritten by accident (DESIGN: "No command overwrites
results tracked in git").

Defaults go under results/tmp/ (ignored by git). Writing into a folder that already holds results, or onto a file
that exists, needs --resume (a folder: keep its episodes and add the missing ones) or --overwrite (replace);
without them the script stops with a one-line error before it measures or evaluates anything.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dream_mpc.errors import UserError  # noqa: E402

TMP = ROOT / "results" / "tmp"  # ignored by git (.gitignore: /results/tmp/)


def add_flags(parser, resume=True):
    """--overwrite (and --resume where a run can go on) on an argparse parser."""
    if resume:
        parser.add_argument(
            "--resume",
            action="store_true",
            help="the output folder holds an earlier run: keep its episodes, run only the missing ones",
        )
    parser.add_argument("--overwrite", action="store_true", help="replace the results already in the output folder")


def output_folder(path, files, resume=False, overwrite=False, resumable=True):
    """The folder `path`, created if needed; a UserError if it already holds any of `files` and neither `resume`
    nor `overwrite` says what to do with them."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder: choose a folder, e.g. --out {TMP.relative_to(ROOT)}/run")
    held = sorted(name for name in files if (out / name).exists())
    if held and not (resume or overwrite):
        how = "--resume to keep them and run only the missing episodes, " if resumable else ""
        raise UserError(
            f"{out} already holds results ({', '.join(held)}): add {how}--overwrite to replace them, "
            f"or choose another --out (nothing was written)"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def output_file(path, overwrite=False, flag="--json"):
    """A file the script is about to write: a UserError if it exists and `overwrite` is not set."""
    if path is None:
        return None
    file = Path(path)
    if file.exists() and not overwrite:
        raise UserError(
            f"{flag} {file} exists: add --overwrite to replace it, or write elsewhere, e.g. "
            f"{flag} {TMP.relative_to(ROOT)}/{file.name} (nothing was written)"
        )
    file.parent.mkdir(parents=True, exist_ok=True)
    return file


def _tracked(path):
    try:
        rel = Path(path).resolve().relative_to(ROOT)
    except ValueError:
        return False
    r = subprocess.run(["git", "ls-files", "--error-unmatch", str(rel)], cwd=ROOT, capture_output=True)
    return r.returncode == 0


class Writer:
    """Writes files into one folder; refuses to replace a file git tracks unless overwrite=True."""

    def __init__(self, out, overwrite=False):
        self.out, self.overwrite, self.written = Path(out), overwrite, []
        self.out.mkdir(parents=True, exist_ok=True)

    def path(self, name):
        p = self.out / name
        if p.exists() and not self.overwrite and _tracked(p):
            raise UserError(f"{p} is tracked by git: pass --overwrite to replace it (or choose another --out)")
        self.written.append(p)
        return p

    def text(self, name, text):
        p = self.path(name)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, p)
        return p
