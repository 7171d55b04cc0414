"""The planner reference of docs/planners.md, generated from the planners' own declarations.

    python scripts/planner_docs.py           # rewrite the block between <!-- planners --> and <!-- /planners -->
    python scripts/planner_docs.py --check   # exit 1 when the docs differ from the declarations

For every built-in planner (a module of dream_mpc/planners/): what it is (its class docstring), what it needs of
a world model (a policy prior, a value), the root keys it reads besides its options, and its options table
(dream_mpc/options.py's `table`), or "No options". A planner without options is listed like the others.
tests/test_registry.py fails when the block is out of date.
"""

import argparse
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dream_mpc import options  # noqa: E402
from dream_mpc.registry import planners  # noqa: E402

DOC = ROOT / "docs" / "planners.md"
BLOCK = re.compile(r"(<!-- planners -->\n)(.*?)(<!-- /planners -->)", re.S)


def needs_line(cls):
    """What the planner needs of a world model with its default options, and the option that removes a need."""
    from dream_mpc.config import Config

    opt = cls.Options()
    needed = sorted(cls.requirements(Config(**vars(opt))))
    text = "Needs of the world model: " + (" and ".join(f"a {n}" for n in needed) if needed else "nothing more")
    prefix = "" if cls.option_block is None else cls.option_block + "."
    reliefs = [f"`{prefix}{cls.relief[n]}` removes the {n}" for n in needed if n in cls.relief]
    return text + (f" ({'; '.join(reliefs)})" if reliefs else "") + "."


def section(name, cls):
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "").split("\n\n")[0].replace("\n", " ")
    where = "root keys" if cls.option_block is None else f"block `{cls.option_block}`"
    fields = options.specs(cls.Options)
    lines = [f"### `planner={name}`" + (f" ({where})" if fields else ""), ""]
    if doc:
        lines += [doc, ""]
    lines += [needs_line(cls), ""]
    if cls.root_keys:
        lines += ["Root keys it reads besides its options: " + ", ".join(f"`{k}`" for k in cls.root_keys) + ".", ""]
    prefix = "" if cls.option_block is None else cls.option_block + "."
    lines += [options.table(cls.Options, prefix) if fields else "No options.", ""]
    limits = getattr(cls.Options, "limits", None)
    if limits is not None and limits.__doc__:
        lines += [f"Checked when the config is built: {limits.__doc__.strip()}", ""]
    return "\n".join(lines)


def generated():
    """The block: every planner defined in this package, in name order."""
    return "\n".join(section(n, c) for n, c in planners.items() if c.__module__.startswith("dream_mpc.planners."))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="exit 1 when docs/planners.md is out of date")
    a = p.parse_args(argv)
    text = DOC.read_text()
    new = BLOCK.sub(lambda m: m.group(1) + generated() + m.group(3), text)
    if a.check:
        if new != text:
            print("docs/planners.md is out of date: python scripts/planner_docs.py rewrites it")
            return 1
        return 0
    if new != text:
        DOC.write_text(new)
        print(f"updated {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
