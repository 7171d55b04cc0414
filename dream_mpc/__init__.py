"""Dream-MPC's planning plug-in: the world-model protocol, the planners, registries and option declarations.

CPU threads are the caller's: TD-MPC2's agents run each acting step at the thread count that is fastest at the
moment (tdmpc2/threads.py), so one core taken by another process does not make OpenMP's threads wait for it.
docs/performance.md, "Busy machines", has the measurements.
"""
