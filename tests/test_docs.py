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
    for name in ("comparison", "bundled"):  # README's
        assert f"<!-- headline:{name} -->{generated[name]}<!-- /headline:{name} -->" in readme


def test_headline_counts_follow_the_episodes(tmp_path, monkeypatch):
    """The sentence is computed from the episodes, not typed (nor read from a summary's stored intervals): episodes
    where Dream-MPC does 300 worse on reacher-easy BMPC make one more confident loss."""
    import csv

    with open(ROOT / headline.COMPARE, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        if r["planner"] == "dream" and r["task"] == "reacher-easy" and r["agent"] == "bmpc":
            r["return"] = str(float(r["return"]) - 300.0)
    (tmp_path / "results" / "compare").mkdir(parents=True)
    with open(tmp_path / headline.COMPARE, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    before = headline.comparison()
    monkeypatch.setattr(headline, "ROOT", tmp_path)
    c = headline.comparison()
    assert (c["better"], c["worse"], c["agents"]) == (before["better"], before["worse"] + 1, 6)
    assert "reacher-easy BMPC (-340.4 [" in headline.verdict_sentence(headline._rows(), "dream", "policy")


def test_performance_numbers_are_those_of_the_result_files():
    """docs/performance.md's blocks are what scripts/headline_performance.py computes from results/performance/, the
    doc holds every one of them (and no block left over from a missing file), and no measured number outside them."""
    import headline_performance

    generated = headline_performance.blocks()
    text = (ROOT / headline_performance.DOC).read_text()
    assert {"perf-runs", "perf-benchmark", "perf-planners", "perf-dream", "perf-floor"} <= set(generated)
    assert set(re.findall(r"<!-- headline:([\w-]+) -->", text)) == set(generated)
    assert headline.render(text, generated) == text
    assert headline.hand_typed(text) == []


def test_performance_blocks_follow_the_result_files(tmp_path, monkeypatch):
    """A number changed in a copy of a result file changes the generated block: Dream-MPC at half its measured time
    at model size 5 halves the time the sentence and the table give, and doubles MPPI's ratio."""
    import json
    import shutil

    import headline_performance as hp

    folder = tmp_path / hp.FOLDER
    shutil.copytree(ROOT / hp.FOLDER, folder)
    path = folder / hp.PLANNERS[5, "float32"]
    data = json.loads(path.read_text())
    dream = data["planners"]["dream"]
    before = hp.blocks()
    dream["ms_per_step"] /= 2
    path.write_text(json.dumps(data))
    monkeypatch.setattr(hp, "ROOT", tmp_path)
    after = hp.blocks()
    assert after["perf-dream"] != before["perf-dream"] and after["perf-planners"] != before["perf-planners"]
    assert f"{hp._ms(dream['ms_per_step'])} ms, " in after["perf-dream"]
    row = next(line for line in after["perf-planners"].splitlines() if line.startswith("| `dream` |"))
    assert row.endswith(f" {data['planners']['mppi']['ms_per_step'] / dream['ms_per_step']:.3g}x |")
    assert after["perf-runs"] == before["perf-runs"] and after["perf-benchmark"] == before["perf-benchmark"]


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


def test_no_measured_number_is_typed_by_hand():
    """Outside the generated blocks the result docs hold settings and counts, never a number that looks measured."""
    typed = {doc: headline.hand_typed((ROOT / doc).read_text()) for doc in headline.MEASURED_DOCS}
    assert {doc: lines for doc, lines in typed.items() if lines} == {}


def test_the_hand_typed_check_catches_measured_numbers():
    """What the check flags and what it lets through (settings, shapes, the paper's sections)."""
    flagged = [
        "the fixed step took 19-25 ms per step",
        "a gain of +16 over the defaults",
        "it lost 136 on average (an interval from −318 to +47)",
        "an interval [-3.3, +4.3]",
        "12.3 GB of pixels",
        "27x faster than CEM",
        "82 % of the actions",
        "return 18.8 ± 2.1",
    ]
    allowed = [
        "3 seeds × 10 episodes from 64 x 64 frames, table 16 and eq. 15",
        "`dream.lr=0.5` with 32 candidates; a 95 % interval",
        "actions in [-1, 1]; h_t = GRUCell(h_{t-1}, a_{t-1}); floor(x / 8) / 32 - 0.5",
        "<!-- headline:x -->took 34 min<!-- /headline:x -->",
    ]
    assert [t for t in flagged if not headline.hand_typed(t)] == []
    assert [t for t in allowed if headline.hand_typed(t)] == []
