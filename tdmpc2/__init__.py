"""The TD-MPC2 family: the TD-MPC2 and BMPC agents (`agent.py`, `bmpc.py`), their world model and its layers, the
planning adapter through which every planner of `dream_mpc` plans on it, and every official checkpoint layout
(`checkpoint/`). They register as `agent=tdmpc2` and `agent=bmpc` through entry points (pyproject.toml)."""
