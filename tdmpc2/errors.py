"""The user-facing errors live in dream_mpc.errors (shared by the agents and the planning plug-in)."""

from dream_mpc.errors import UserError, by_closeness, run_cli, unknown  # noqa: F401
