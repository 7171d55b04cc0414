"""User-facing errors: entry points print them without a traceback."""

import difflib


class UserError(Exception):
    """A mistake in what the user asked for (unknown name, bad file, mismatched checkpoint)."""


def warn(message):
    """A warning for the user: one line on stderr (`warning: ...`), no source line of Python's warnings."""
    import sys

    print(f"warning: {message}", file=sys.stderr)


_warned = set()


def warn_once(message):
    """`warn`, once per process for each message (a command may build its config more than once)."""
    if message not in _warned:
        _warned.add(message)
        warn(message)


def first_line(err):
    """An exception's message in one line (its first), or its type's name when it has none."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def by_closeness(name, valid):
    """The valid names, closest to `name` first."""
    name = str(name)
    return sorted(valid, key=lambda v: (-difflib.SequenceMatcher(None, name, str(v)).ratio(), str(v)))


def unknown(kind, name, valid, limit=12):
    """An error for an unknown `kind` (task, planner, config key ...) listing the valid names, closest first."""
    ordered = by_closeness(name, valid)
    shown = ", ".join(str(v) for v in ordered[:limit])
    more = f" (and {len(ordered) - limit} more)" if len(ordered) > limit else ""
    return UserError(f"unknown {kind} {name!r}. Valid {kind}s, closest first: {shown}{more}")


def run_cli(main, argv, interrupted="interrupted"):
    """Run an entry point: a user's mistake prints `error: ...` and exits 2, without a traceback."""
    import sys

    try:
        main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"error: {interrupted}", file=sys.stderr)
        sys.exit(2)
