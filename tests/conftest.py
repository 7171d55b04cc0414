import os
import sys
from pathlib import Path

# headless rendering; must be set before dm_control is first imported by any test
os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tdmpc2 import reproducible_products  # noqa: E402

reproducible_products()  # the test process is a program: the same bits at any thread count, as train.py sets it
