"""The docs cannot drift from the code and the results: the headline numbers of README.md and docs/results.md are
those scripts/headline.py computes from the tracked result files, and every file a doc or a docstring names exists."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import headline  # noqa: E402

# a path inside the repository: a top-level folder, then names, ending in a file suffix
PATH = re.compile(
    r"(?<![\w./-])((?:tdmpc2|dream_mpc|dreamer|scripts|tests|docs|results|agents)/[\w./-]*\.(?:py|md|json|png|csv|yaml|cpp|pt|jsonl))"
)


def named_paths(text):
    return {p for p in PATH.findall(text) if "*" not in p and "<" not in p and "/tmp/" not in p}


def test_headline_numbers_are_those_of_the_result_files():
    generated = headline.blocks()
    assert headline.stale(generated) == []
    readme = (ROOT / "README.md").read_text()
    for name in ("comparison", "bundled"):
        assert f"<!-- headline:{name} -->{generated[name]}<!-- /headline:{name} -->" in readme


def test_headline_counts_follow_the_summary(tmp_path, monkeypatch):
    """The sentence is computed, not typed: a summary with one more confident loss says so."""
    import json

    rows = json.loads((ROOT / headline.SUMMARY).read_text())
    for r in rows:
        if r["planner"] == "dream" and r["task"] == "reacher-easy" and r["agent"] == "bmpc":
            r["vs_policy"] = [-40.0, -60.0, -20.0]
    (tmp_path / "results" / "compare").mkdir(parents=True)
    (tmp_path / headline.SUMMARY).write_text(json.dumps(rows))
    monkeypatch.setattr(headline, "ROOT", tmp_path)
    c = headline.comparison()
    assert (c["better"], c["worse"], c["agents"]) == (4, 1, 6)


# files named bare that belong to other projects (HumanoidBench's setup.py)
EXTERNAL = {"setup.py"}


def test_every_path_a_doc_or_docstring_names_exists():
    sources = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for package in ("tdmpc2", "dream_mpc", "dreamer", "scripts", "tests"):
        sources += sorted((ROOT / package).rglob("*.py"))
    modules = {p.name for p in ROOT.rglob("*.py") if ".venv" not in p.parts}
    missing = []
    for src in sources:
        for p in named_paths(src.read_text()):
            candidates = [ROOT / p, src.parent / p]
            if not any(c.exists() for c in candidates):
                missing.append(f"{src.relative_to(ROOT)} names {p}")
        for name in set(re.findall(r"(?<![\w/.-])([A-Za-z_]\w*\.py)\b", src.read_text())) - EXTERNAL:
            if name not in modules:  # a bare file name: some file of the project has it
                missing.append(f"{src.relative_to(ROOT)} names {name}")
    assert missing == []


def test_the_planner_reference_is_generated_from_the_declarations():
    """docs/planners.md lists every built-in planner, with or without options, as scripts/planner_docs.py makes it."""
    import planner_docs

    text = (ROOT / "docs" / "planners.md").read_text()
    assert planner_docs.BLOCK.search(text).group(2) == planner_docs.generated()
    assert "### `planner=policy`" in text and "No options." in text
