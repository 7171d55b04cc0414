"""The headline numbers of README.md and docs/results.md, computed from tracked result files, never typed by hand.

    python scripts/headline.py            # rewrite the generated blocks of README.md and docs/results.md
    python scripts/headline.py --check    # exit 1 (and say which block) when a doc disagrees with the files

Each block sits between `<!-- headline:NAME -->` and `<!-- /headline:NAME -->` in the docs and is rebuilt from:
- results/compare/summary.json (scripts/compare_planners.py: the six bundled agents with the policy, MPPI and
  Dream-MPC, 3 seeds x 10 episodes): how often Dream-MPC beats its policy prior with confidence (the paired 95 %
  interval above 0), how often it is worse with confidence, and MPPI's planning time per step over Dream-MPC's;
- agents/*.pt: each bundled agent's training steps (the checkpoint's `step`) and its policy return (summary.json).
tests/test_docs.py fails when a block differs from what this script computes.
"""

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SUMMARY = "results/compare/summary.json"
DOCS = ("README.md", "docs/results.md")


def _rows():
    return json.loads((ROOT / SUMMARY).read_text())


def comparison():
    """{agents, better, worse, ratio_low, ratio_high} of Dream-MPC against its policy prior and MPPI."""
    rows = _rows()
    by = {(r["checkpoint"], r["planner"]): r for r in rows}
    checkpoints = list(dict.fromkeys(r["checkpoint"] for r in rows))
    dream = [by[c, "dream"] for c in checkpoints if (c, "dream") in by]
    ratios = [by[c, "mppi"]["ms_per_step"] / by[c, "dream"]["ms_per_step"] for c in checkpoints if (c, "mppi") in by]
    return {
        "agents": len(dream),
        "better": sum(r["vs_policy"][1] > 0 for r in dream),
        "worse": sum(r["vs_policy"][2] < 0 for r in dream),
        "ratio_low": min(ratios),
        "ratio_high": max(ratios),
    }


def bundled():
    """[(file, agent, task, steps, policy return)] of every agents/*.pt."""
    import torch

    policy = {r["checkpoint"]: r["return_mean"] for r in _rows() if r["planner"] == "policy"}
    out = []
    for f in sorted((ROOT / "agents").glob("*.pt")):
        obj = torch.load(f, map_location="cpu", weights_only=True, mmap=True)
        cfg = obj.get("config", {})
        rel = f"agents/{f.name}"
        out.append((rel, cfg.get("agent", "tdmpc2"), cfg.get("task", "?"), int(obj.get("step", 0)), policy.get(rel)))
    return out


def _n(x):
    return "none" if x == 0 else str(x)


def blocks():
    """{block name: generated Markdown}."""
    c = comparison()
    agents = bundled()
    steps = [a[3] for a in agents]
    returns = [a[4] for a in agents if a[4] is not None]
    table = [
        "| file | agent | task | training steps | policy return (3 seeds × 10 episodes) |",
        "|---|---|---|---|---|",
    ]
    table += [
        f"| `{f}` | {agent} | {task} | {s:,} | {'–' if r is None else f'{r:.0f}'} |" for f, agent, task, s, r in agents
    ]
    return {
        "comparison": (
            f"Dream-MPC beats its policy prior with confidence on {c['better']} of {c['agents']} agents and is worse "
            f"with confidence on {_n(c['worse'])}, at 1/{c['ratio_low']:.1f} to 1/{c['ratio_high']:.1f} of MPPI's "
            f"planning time per step on this CPU (`{SUMMARY}`)"
        ),
        "bundled": (
            f"The bundled agents are young: {min(steps):,} to {max(steps):,} training steps (model size 1), policy "
            f"returns {min(returns):.0f} to {max(returns):.0f}; they demonstrate the planners, not the paper's scores"
        ),
        "bundled-table": "\n".join(table),
    }


PATTERN = r"(<!-- headline:{name} -->)(.*?)(<!-- /headline:{name} -->)"


def render(text, generated):
    """The text with every generated block it holds replaced by the current one."""
    for name, body in generated.items():
        sep = "\n" if "\n" in body else ""
        text = re.sub(
            PATTERN.format(name=re.escape(name)), lambda m: m.group(1) + sep + body + sep + m.group(3), text, flags=re.S
        )
    return text


def stale(generated=None):
    """[(doc, block)] whose text differs from what the files say."""
    generated = generated or blocks()
    out = []
    for doc in DOCS:
        text = (ROOT / doc).read_text()
        for name in generated:
            found = re.search(PATTERN.format(name=re.escape(name)), text, flags=re.S)
            if found and render(found.group(0), {name: generated[name]}) != found.group(0):
                out.append((doc, name))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only check; exit 1 when a doc disagrees with the files")
    a = p.parse_args(argv)
    generated = blocks()
    if a.check:
        bad = stale(generated)
        for doc, name in bad:
            print(f"{doc}: block {name!r} disagrees with the result files (python scripts/headline.py rewrites it)")
        return 1 if bad else 0
    for doc in DOCS:
        path = ROOT / doc
        text = path.read_text()
        new = render(text, generated)
        if new != text:
            path.write_text(new)
            print(f"updated {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
