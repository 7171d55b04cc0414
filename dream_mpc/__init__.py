"""Dream-MPC's planning plug-in: the world-model protocol, the planners, registries and option declarations.

OpenMP's wait policy is left to the user: on a machine shared with other jobs, `OMP_WAIT_POLICY=PASSIVE` (set
before torch loads) keeps a 2-thread batch-1 MPPI step within 1.35x of its time on a quiet machine instead of 3-4x,
but on a quiet machine it costs MPPI ~20 % and Dream-MPC ~2.4x (its many small operations wait on sleeping
threads). docs/performance.md, "Busy machines", has the measurements.
"""
