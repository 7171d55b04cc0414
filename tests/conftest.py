import os
import sys
from pathlib import Path

# headless rendering; must be set before dm_control is first imported by any test
os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tdmpc2 import reproducible_products  # noqa: E402

reproducible_products()  # the test process is a program: the same bits at any thread count, as train.py sets it

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
_NOT_WATCHED = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "build"}


def _snapshot():
    """Every file and folder of the checkout (but the venv, git and caches) with its size and modification time."""
    out = {}
    stack = [ROOT]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for e in entries:
                if e.name in _NOT_WATCHED or e.name.endswith(".egg-info"):
                    continue
                st = e.stat(follow_symlinks=False)
                out[os.path.relpath(e.path, ROOT)] = (st.st_size, st.st_mtime_ns) if e.is_file() else None
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
    return out


@pytest.fixture(autouse=True)
def no_writes_into_the_checkout():
    """Tests write under their tmp_path only: a test that creates, changes or removes anything in the checkout (a
    results row in logs/results, an empty logs/<task> folder, a tracked file) fails, naming what it touched."""
    before = _snapshot()
    yield
    after = _snapshot()
    touched = sorted(p for p in set(before) | set(after) if before.get(p, "gone") != after.get(p, "gone"))
    if touched:
        pytest.fail(f"the test wrote into the checkout (write under tmp_path instead): {', '.join(touched[:8])}")
