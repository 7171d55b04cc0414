"""The README runs as written: its Python snippet runs, its train/evaluate commands compose a valid config
(`--cfg job`: every key, value and task checked), and every script and doc it names exists."""

import re
import shlex

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text()


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def commands():
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():  # continued lines joined
            line = line.split("#", 1)[0].strip()
            if line.startswith("python "):
                yield line


def test_the_python_snippet_runs(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # it runs from anywhere, not only from the project root
    (snippet,) = blocks("python")
    scope = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    assert scope["t"] == 500 and scope["agent"].nonfinite_actions == 0


@pytest.mark.parametrize("line", [c for c in commands() if c.split()[1] in ("train.py", "evaluate.py")])
def test_train_and_evaluate_commands_build_a_valid_config(line):
    """Every value of every sweep list is validated (the config as each job would build it)."""
    from dream_mpc import config

    args = [a for a in shlex.split(line)[2:] if "=" in a and not a.startswith(("-", "hydra/", "hydra."))]  # no flags
    variants = [[]]
    for arg in args:
        key, value = arg.split("=", 1)
        variants = [v + [f"{key}={one}"] for v in variants for one in value.split(",")]
    for overrides in variants:
        config.load(overrides)
        for o in overrides:
            if o.startswith("checkpoint=agents/"):
                assert (ROOT / o.split("=", 1)[1]).is_file(), o


def test_named_files_exist():
    for line in commands():
        assert (ROOT / shlex.split(line)[1]).is_file(), line
    for link in re.findall(r"\]\(((?:docs|results)/[^)#]+|[A-Z]+\.(?:md|cff))\)", README):
        assert (ROOT / link).is_file(), link
