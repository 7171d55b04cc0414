import os
import sys
from pathlib import Path

# headless rendering; must be set before dm_control is first imported by any test
os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
