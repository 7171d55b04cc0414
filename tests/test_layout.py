"""The layout the architecture promises: `dream_mpc` (the planning core and what every agent family shares: envs,
trainer, buffer, evaluation, records, checkpoint files, config) imports no agent family's module and names no
agent in its code; the families register themselves through entry points. Docstrings and comments may mention
them (they explain what the protocol serves); code may not."""

import ast
import re

from conftest import ROOT

from dream_mpc.registry import agents

CORE = ROOT / "dream_mpc"


def _family_packages():
    """{top-level package of each registered agent's module} minus the core itself."""
    return {cls.__module__.split(".")[0] for _, cls in agents.items()} - {"dream_mpc"}


def _docstring_nodes(tree):
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def test_the_agent_families_are_registered_packages_beside_the_core():
    families = _family_packages()
    assert {"tdmpc2", "dreamer"} <= families  # the built-in families, found through their entry points
    for name in ("tdmpc2", "dreamer"):
        assert (ROOT / name / "__init__.py").is_file()
    for shared in ("envs", "training", "evaluation", "checkpoint"):
        assert (CORE / shared / "__init__.py").is_file()


def test_the_core_imports_no_agent_module():
    families = _family_packages()
    found = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in families
            ]
    assert not found, "\n".join(found)


def test_the_core_names_no_agent_in_its_code():
    names = set(agents.names())
    word = re.compile(r"\bagent\s*=\s*(" + "|".join(map(re.escape, names)) + r")\b")
    found = []
    for path in sorted(CORE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = _docstring_nodes(tree)
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if node.value in names or word.search(node.value):
                    found.append(f"{where} string {node.value!r}")
            identifiers = []
            if isinstance(node, ast.Name):
                identifiers = [node.id]
            elif isinstance(node, ast.Attribute):
                identifiers = [node.attr]
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
                identifiers = [node.name]
            elif isinstance(node, ast.arg):
                identifiers = [node.arg]
            found += [f"{where} identifier {i}" for i in identifiers if any(n in i.lower() for n in names)]
    assert not found, "\n".join(found)
