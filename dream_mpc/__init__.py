"""Dream-MPC's planning plug-in: the world-model protocol, the planners, registries and option declarations."""

import os

# OpenMP threads sleep instead of spinning while they wait (read once, when torch loads libgomp: before any import of
# torch). Spinning, a thread whose sibling shares a core with another process burns its time slices waiting: with
# one core of two taken, a batch-1 MPPI step was 4x slower, and on a loaded 2-core machine 10-20x slower than with
# sleeping threads, which stayed within 1.1x of quiet (docs/performance.md, "Busy machines"). An OMP_WAIT_POLICY
# already in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
