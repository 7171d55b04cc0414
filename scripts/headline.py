"""The headline numbers of README.md and the docs, computed from tracked result files, never typed by hand.

    python scripts/headline.py            # rewrite the generated blocks of README.md and the docs
    python scripts/headline.py --check    # exit 1 (and say which block) when a doc disagrees with the files

Each block sits between `<!-- headline:NAME -->` and `<!-- /headline:NAME -->` in the docs (DOCS) and is rebuilt
from:
- results/compare/episodes.csv (scripts/compare_planners.py: the six bundled agents with the policy, MPPI and
  Dream-MPC, 3 seeds x 10 episodes): how often Dream-MPC beats its policy prior with confidence, how often it is
  worse with confidence, against the policy and against MPPI, and MPPI's planning time per step over Dream-MPC's.
  "With confidence" means the paired 95 % interval excludes 0; the intervals are recomputed here from the episodes
  with dream_mpc/evaluation/intervals.py (Student's t over the evaluation seeds, their number beside each), never
  read from an older summary's stored numbers. The same for the tables of the ablation and sweep folders (TABLES);
- agents/*.pt: each bundled agent's training steps (the checkpoint's `step`) and its policy return (the episodes,
  and the episodes.csv of results/dreamer/compare for the Dreamer agent);
- results/dreamer/ (docs/results.md, "Dreamer"): the four pixel runs of table 14 (`training/<task>/` holds each
  run's train.csv, eval.csv and config.json), the bundled Dreamer agent with every planner (`compare/`) and table
  15 on this CPU (`table15.json`), beside the paper's numbers (`TABLE14_PAPER`, `table15.PAPER_MS`);
- results/budget/overrun.json (scripts/budget_overrun.py: the anytime mode's overrun; docs/planners.md) and
  results/adaptive/ (scripts/compare_adaptive.py; docs/analyses.md).
tests/test_docs.py fails when a block differs from what this script computes.
"""

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import headline_analyses  # noqa: E402  (docs/analyses.md's gradient and exploitation blocks)
import headline_performance  # noqa: E402  (docs/performance.md's speed tables)

SUMMARY = "results/compare/summary.json"
COMPARE = "results/compare/episodes.csv"  # the records SUMMARY was made from: the blocks are computed from these
DREAMER = "results/dreamer"
BUDGET = "results/budget/overrun.json"
ADAPTIVE = "results/adaptive"
DOCS = (
    "README.md",
    "docs/results.md",
    "docs/planners.md",
    "docs/analyses.md",
    "docs/dreamer.md",
    "docs/performance.md",
)
# generated tables: block name -> (episodes.csv, the baseline of the paired differences)
TABLES = {
    "compare-table": (COMPARE, "policy"),
    "ablation-table": ("results/ablation-walker-walk-bmpc/episodes.csv", "paper defaults"),
    "sweep-table": ("results/sweep-walker-walk-bmpc/episodes.csv", "paper defaults"),
}
AGENT_NAMES = {"tdmpc2": "TD-MPC2", "bmpc": "BMPC", "dreamer": "Dreamer"}
# the paper's table 14 (3 seeds x 10 episodes, mean +- std): Dreamer with its policy, and Dream-MPC in Dreamer
TABLE14_PAPER = {
    "acrobot-swingup": {"Dreamer": (134, 91), "Dream-MPC (Dreamer)": (147, 101)},
    "cheetah-run": {"Dreamer": (751, 111), "Dream-MPC (Dreamer)": (836, 49)},
    "hopper-hop": {"Dreamer": (182, 43), "Dream-MPC (Dreamer)": (298, 86)},
    "walker-run": {"Dreamer": (575, 33), "Dream-MPC (Dreamer)": (632, 52)},
}


def _compare_planners():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import compare_planners

    return compare_planners


def summary_of(path, baseline="policy"):
    """compare_planners' summary of an episodes.csv, its paired intervals computed now (intervals.py)."""
    cp = _compare_planners()
    return cp.summarise(cp.read_rows(ROOT / path), baseline=baseline)


def _rows(baseline="policy"):
    return summary_of(COMPARE, baseline)


DREAMER_BASELINE = "policy eval_action=mode"  # Dreamer's own action, as DreamerV1 evaluates it (the most likely of 100)


def _dreamer_rows():
    """compare_planners' summary of the Dreamer comparison against the policy with DreamerV1's evaluation rule (an
    older comparison without the rule: its plain policy)."""
    path = Path(DREAMER) / "compare" / "episodes.csv"
    if not (ROOT / path).is_file():
        return []
    cp = _compare_planners()
    rows = cp.read_rows(ROOT / path)
    return cp.summarise(rows, baseline=_dreamer_baseline(rows))


def _dreamer_baseline(rows):
    """The rows' policy under DreamerV1's rule, or the plain policy of a comparison that predates the rule."""
    return DREAMER_BASELINE if any(r["planner"] == DREAMER_BASELINE for r in rows) else "policy"


def _label(r):
    return f"{r['task']} {AGENT_NAMES.get(r['agent'], r['agent'])}"


def verdicts(rows, planner, baseline):
    """{+1: [(label, Interval)], -1: [...], 0: [...]}: the rows of `planner` better / worse with confidence than
    `baseline` (the paired 95 % interval above / below 0) or neither."""
    cp = _compare_planners()
    out = {1: [], -1: [], 0: []}
    for r in rows:
        if r["planner"] == planner:
            iv = cp.interval_of(r, baseline)
            out[iv.verdict()].append((_label(r), iv))
    return out


def comparison():
    """{agents, better, worse, ratio_low, ratio_high} of Dream-MPC against its policy prior and MPPI."""
    rows = _rows()
    by = {(r["checkpoint"], r["planner"]): r for r in rows}
    checkpoints = list(dict.fromkeys(r["checkpoint"] for r in rows))
    v = verdicts(rows, "dream", "policy")
    ratios = [by[c, "mppi"]["ms_per_step"] / by[c, "dream"]["ms_per_step"] for c in checkpoints if (c, "mppi") in by]
    return {
        "agents": sum(map(len, v.values())),
        "better": len(v[1]),
        "worse": len(v[-1]),
        "ratio_low": min(ratios),
        "ratio_high": max(ratios),
    }


def _items(pairs, digits=1):
    return "; ".join(f"{label} ({iv.text(digits)})" for label, iv in pairs) or "none"


def verdict_sentence(rows, planner, baseline):
    """'better with confidence on A (+98 [+85, +111], n=3), ...; worse with confidence on ...; within noise ...'."""
    v = verdicts(rows, planner, baseline)
    return (
        f"better with confidence on {_items(v[1])}; worse with confidence on {_items(v[-1])}; level within the "
        f"noise (the interval holds 0) on {_items(v[0])}"
    )


# the recommended setting on two more agents (docs/results.md): folder -> (its variant, the baseline)
MORE_AGENTS = {
    "results/sweep-walker-walk-tdmpc2/episodes.csv": ("step 0.5, 32 cand., 3 it.", "paper defaults"),
    "results/sweep-reacher-easy-bmpc/episodes.csv": ("step 0.5, 32 cand., 3 it.", "paper defaults"),
}


def more_agents_line():
    """'walker-walk TD-MPC2 152.6 → 205.3 (+52.7 [...], n=3), ...' for MORE_AGENTS."""
    cp, parts = _compare_planners(), []
    for path, (variant, baseline) in MORE_AGENTS.items():
        if not (ROOT / path).is_file():
            continue
        rows = summary_of(path, baseline)
        base = next(r for r in rows if r["planner"] == baseline)
        r = next(r for r in rows if r["planner"] == variant)
        parts.append(
            f"{_label(r)} {base['return_mean']:.1f} → {r['return_mean']:.1f} ({cp.interval_of(r, baseline).text(1)})"
        )
    return ", ".join(parts)


def _row(rows, task, agent, planner):
    return next(r for r in rows if (r["task"], r["agent"], r["planner"]) == (task, agent, planner))


def shortfall_line():
    """Where MPPI is ahead of Dream-MPC: with confidence, and by the largest point estimate, and what MPPI gains over
    the policy there (results/compare/episodes.csv, paired against MPPI and against the policy)."""
    cp, vs_mppi, vs_policy = _compare_planners(), _rows("mppi"), _rows()
    dream = [(r, cp.interval_of(r, "mppi")) for r in vs_mppi if r["planner"] == "dream"]
    ahead = [r for r, iv in dream if iv.verdict() == -1]
    largest, iv = min(dream, key=lambda x: x[1].mean)
    shown = list({_label(r): r for r in [*ahead, largest]}.values())
    gains = [cp.interval_of(_row(vs_policy, r["task"], r["agent"], "mppi"), "policy") for r in shown]
    return (
        f"MPPI is ahead of Dream-MPC with confidence on {', '.join(map(_label, ahead)) or 'no agent'} and by the "
        f"largest point estimate on {_label(largest)} ({iv.text(1)}); MPPI gains over the policy there: "
        + "; ".join(f"{_label(r)} {g.text(1)}" for r, g in zip(shown, gains))
    )


ABLATION, SWEEP = TABLES["ablation-table"][0], TABLES["sweep-table"][0]
RECOMMENDED = "step 0.5, 32 cand., 3 it."  # the sweep's variant that docs/results.md recommends for young agents


def ablation_line():
    """Each ablation variant against the paper's defaults, largest effect first, and MPPI's return on the agent."""
    rows = summary_of(ABLATION, "paper defaults")
    cp, r0 = _compare_planners(), rows[0]
    ivs = sorted(((r["planner"], cp.interval_of(r, "paper defaults")) for r in rows[1:]), key=lambda x: -x[1].mean)
    mppi = _row(_rows(), r0["task"], r0["agent"], "mppi")
    return (
        f"against the paper's defaults ({r0['return_mean']:.1f}): "
        + "; ".join(f"{name} {iv.text(1)}" for name, iv in ivs)
        + f". MPPI returns {mppi['return_mean']:.1f} on this agent ({mppi['episodes']} episodes, `{COMPARE}`)"
    )


def sweep_line():
    """The recommended setting against the defaults, MPPI and 128 candidates alone, with the runs' planning times."""
    rows = summary_of(SWEEP, "paper defaults")
    cp, base = _compare_planners(), rows[0]
    best, wide = (next(r for r in rows if r["planner"] == p) for p in (RECOMMENDED, "128 cand."))
    mppi = _row(_rows(), base["task"], base["agent"], "mppi")
    return (
        f"{RECOMMENDED} returns {best['return_mean']:.1f} against the defaults' {base['return_mean']:.1f} "
        f"({cp.interval_of(best, 'paper defaults').text(1)}) and MPPI's {mppi['return_mean']:.1f} "
        f"({mppi['episodes']} episodes in the comparison), at {best['ms_per_step']:.0f} ms per step against MPPI's "
        f"{mppi['ms_per_step']:.0f} ms in those runs (one thread each, the cores shared, so a rough ratio); "
        f"128 candidates alone: {wide['return_mean']:.1f} ({cp.interval_of(wide, 'paper defaults').text(1)})"
    )


def table_block(path, baseline):
    """compare_planners' table of an episodes.csv, its intervals computed now."""
    return _compare_planners().table(summary_of(path, baseline), baseline=baseline)


def bundled():
    """[(file, agent, task, steps, policy return, bytes)] of every agents/*.pt."""
    import torch

    policy = {
        r["checkpoint"]: r["return_mean"]
        for r in _rows() + _dreamer_rows()
        if r["planner"] in ("policy", DREAMER_BASELINE)
    }
    out = []
    for f in sorted((ROOT / "agents").glob("*.pt")):
        obj = torch.load(f, map_location="cpu", weights_only=True, mmap=True)
        cfg = obj.get("config", {})
        rel = f"agents/{f.name}"
        out.append(
            (
                rel,
                cfg.get("agent", "tdmpc2"),
                cfg.get("task", "?"),
                int(obj.get("step", 0)),
                policy.get(rel),
                f.stat().st_size,
            )
        )
    return out


def _wall_seconds(elapsed):
    """A run's training time from train.csv's elapsed_time, which restarts at 0 when a run is resumed: the sum of
    each segment's last value."""
    ends = [e for e, nxt in zip(elapsed, elapsed[1:]) if nxt < e]
    return sum(ends) + (elapsed[-1] if elapsed else 0.0)


def _best_window(train, n=5):
    """(mean return, step) of the best n consecutive training episodes."""
    means = train["episode_reward"].rolling(n).mean()
    best = int(means.idxmax())
    return float(means.iloc[best]), int(train["step"].iloc[best])


RISE = 5.0  # a task rose when its last five training episodes beat the random seed episodes by more than this


def dreamer_training():
    """Per task of results/dreamer/training: (task, steps, minutes, seed episodes, their mean return, the last five
    training episodes' mean return, first and last evaluation return, the best five consecutive training episodes'
    mean return and the step it ended at)."""
    import pandas as pd

    out = []
    for run in sorted((ROOT / DREAMER / "training").glob("*/train.csv")):
        folder = run.parent
        train, evals = pd.read_csv(run), pd.read_csv(folder / "eval.csv")
        seed = json.loads((folder / "config.json").read_text())["dreamer"]["seed_episodes"]
        out.append(
            (
                folder.name,
                int(train["step"].iloc[-1]),
                _wall_seconds(train["elapsed_time"].tolist()) / 60,
                seed,
                float(train["episode_reward"].iloc[:seed].mean()),
                float(train["episode_reward"].iloc[-5:].mean()),
                float(evals["episode_reward"].iloc[0]),
                float(evals["episode_reward"].iloc[-1]),
                *_best_window(train),
            )
        )
    return out


def dreamer_agent_line(folder=f"{DREAMER}/bundled-agent"):
    """How long the bundled Dreamer agent trained, from its train.csv."""
    import pandas as pd

    train = pd.read_csv(ROOT / folder / "train.csv")
    minutes = _wall_seconds(train["elapsed_time"].tolist()) / 60
    return (
        f"{int(train['step'].iloc[-1]):,} steps ({len(train)} episodes, {minutes:.0f} min on one thread with other "
        f"jobs running; `{folder}/train.csv`)"
    )


def dreamer_blocks():
    """The Dreamer blocks of docs/results.md (empty where their files are missing)."""
    out = {}
    if (ROOT / DREAMER / "bundled-agent" / "train.csv").is_file():
        out["dreamer-agent"] = dreamer_agent_line()
    runs = dreamer_training()
    if runs:
        table = [
            "| task (pixels) | steps | wall min | random (seed episodes) | best 5 training episodes (at step) "
            "| last 5 training episodes | eval: first → last | paper: Dreamer | paper: Dream-MPC (Dreamer) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for task, steps, minutes, seed, rand, last, e0, e1, best, best_step in runs:
            paper = TABLE14_PAPER.get(task, {})
            cells = [f"{m} ± {s}" for m, s in (paper.get("Dreamer", ("–", "–")), paper.get("Dream-MPC (Dreamer)"))]
            table.append(
                f"| {task} | {steps:,} | {minutes:.0f} | {rand:.1f} ({seed} episodes) | {best:.1f} ({best_step:,}) | "
                f"{last:.1f} | {e0:.1f} → {e1:.1f} | {cells[0]} | {cells[1]} |"
            )
        rose = [r[0] for r in runs if r[5] > r[4] + RISE]
        flat = [r[0] for r in runs if r[0] not in rose]
        out["dreamer-training"] = "\n".join(table)
        out["dreamer-rise"] = (
            f"returns rose (the last five training episodes above the random seed episodes by more than {RISE:g}) on "
            f"{len(rose)} of {len(runs)} tasks ({', '.join(rose) or 'none'}), not on {', '.join(flat) or 'none'}"
        )
    rows = _dreamer_rows()
    if rows:
        cp = _compare_planners()
        base = _dreamer_baseline(rows)  # summary rows carry the planner label as episode rows do
        table = [
            f"| planner | return (mean ± std over seeds) | episodes | vs {base} [95 % t-interval over seeds], n seeds "
            "| ms / step |",
            "|---|---|---|---|---|",
        ]
        for r in rows:
            vs = "–" if r["planner"] == base else cp.interval_of(r, base).text(1)
            spread = f"± {r['seed_std']:.1f}" if r["seed_std"] is not None else f"({r['seeds']} seed)"
            table.append(
                f"| {r['planner']} | {r['return_mean']:.1f} {spread} | {r['episodes']} | {vs} | "
                f"{r['ms_per_step']:.1f} |"
            )
        out["dreamer-planners"] = "\n".join(table)
        sides = {1: [], -1: [], 0: []}
        for r in rows:
            if r["planner"] != base:
                iv = cp.interval_of(r, base)
                sides[iv.verdict()].append(f"{r['planner']}" if iv.verdict() else f"{r['planner']} ({iv.text(1)})")
        out["dreamer-vs-policy"] = (
            f"better than the policy it starts from with confidence: {', '.join(sides[1]) or 'none'}; worse with "
            f"confidence: {', '.join(sides[-1]) or 'none'}; within the noise: {', '.join(sides[0]) or 'none'}"
        )
    path = ROOT / DREAMER / "table15.json"
    if path.is_file():
        sys.path.insert(0, str(ROOT / "scripts"))
        from table15 import PAPER_MS, PAPER_NAMES

        res = json.loads(path.read_text())
        meta, planners = res["meta"], res["planners"]
        dream = planners["dream"]["median_ms"]
        table = [
            "| planner (appendix D settings) | ms / step here (median; mean ± std) | model evaluations / step | "
            "time vs Dream-MPC | paper, RTX 4090 |",
            "|---|---|---|---|---|",
        ]
        for name, r in planners.items():
            paper = PAPER_MS.get(name)
            table.append(
                f"| {PAPER_NAMES.get(name, name)} | {r['median_ms']:.1f} ({r['mean_ms']:.1f} ± {r['std_ms']:.1f}) | "
                f"{r['model_evaluations']:,} | {r['median_ms'] / dream:.1f}x | "
                f"{'–' if paper is None else f'{paper[0]:.2f} ± {paper[1]:.2f} ms'} |"
            )
        params = meta.get("world_model_parameters")
        if params:  # what was timed: table 16's sizes (random weights) or a file's
            table += ["", f"({params:,} world-model parameters; {meta['threads']} threads, {meta['device']}.)"]
        out["table15"] = "\n".join(table)
        cem = planners.get("cem", {}).get("median_ms")
        out["table15-line"] = (
            f"Dream-MPC on Dreamer at appendix D's settings plans a step in {dream:.1f} ms on this CPU "
            f"({meta['threads']} threads; the paper: 44.86 ms on an RTX 4090)"
            + (f", {cem / dream:.0f}x faster than CEM at PlaNet's settings ({cem:,.0f} ms)" if cem else "")
            + f" (`{DREAMER}/table15.json`)"
        )
    return out


BUFFER_MEMORY = f"{DREAMER}/buffer_memory.json"


def buffer_memory_block():
    """docs/dreamer.md's pixel-buffer memory, measured by scripts/buffer_memory.py (BUFFER_MEMORY)."""
    path = ROOT / BUFFER_MEMORY
    if not path.is_file():
        return {}
    r = json.loads(path.read_text())
    parts = [
        f"{x['agent']} ({x['frame_stack']} frame{'s' if x['frame_stack'] > 1 else ''} a step): "
        f"{x['bytes_per_step']:,.0f} bytes a step, a {x['steps']:,}-step buffer {x['buffer_bytes'] / 1e9:.1f} GB, the "
        f"process at most {x['peak_rss_bytes'] / 1e9:.1f} GB while it filled"
        for x in r["runs"]
    ]
    return {"buffer-memory": "; ".join(parts) + f" (`{r['command']}`, {r['date'][:10]}, `{BUFFER_MEMORY}`)"}


def budget_block():
    """docs/planners.md's table of the anytime mode's overrun, from results/budget/overrun.json."""
    path = ROOT / BUDGET
    if not path.is_file():
        return {}
    r = json.loads(path.read_text())
    loads = ", ".join(f"{x['condition']} {x['budget_ms']:g} ms: {x['load_average_before']:.1f}" for x in r["runs"])
    return {
        "budget-overrun": (
            f"```bash\n{r['command']}\n```\n\n{r['table_md']}\n\n"
            f"({r['date']}, {r['cpus']} CPUs, {r['threads']} torch thread(s), `{BUDGET}`; load average (1 min) before "
            f"each run: {loads}. A load above the CPU count means other jobs shared the machine: those numbers carry "
            "their load, including the `quiet` rows.)"
        )
    }


ADAPTIVE_AGENTS = ("cartpole-swingup-tdmpc2", "cartpole-swingup-bmpc", "walker-walk-bmpc")  # results/adaptive/<agent>


def adaptive_blocks():
    """docs/analyses.md's adaptive comparison: the tables of results/adaptive/<agent>/episodes.csv (intervals computed
    now) and, per variant, where it is better or worse than the fixed step with confidence."""
    folders = [ROOT / ADAPTIVE / a for a in ADAPTIVE_AGENTS if (ROOT / ADAPTIVE / a / "episodes.csv").is_file()]
    if not folders:
        return {}
    cp = _compare_planners()
    import compare_adaptive

    lines, by_variant, fixed_ms = [], {}, []
    for folder in folders:
        rows = [
            dict(r, iterations=float(r["iterations"]), evaluations=float(r["evaluations"]))
            for r in cp.read_rows(folder / "episodes.csv")
        ]
        summary = cp.summarise(rows, baseline="fixed")
        table = compare_adaptive.table(summary, rows, "fixed").splitlines()
        lines += table if not lines else table[2:]
        fixed_ms += [r["ms_per_step"] for r in summary if r["planner"] == "fixed"]
        for r in summary:
            if r["planner"] != "fixed":
                by_variant.setdefault(r["planner"], []).append((_label(r), cp.interval_of(r, "fixed")))
    verdicts = []
    for variant, items in by_variant.items():
        sides = {1: [], -1: [], 0: []}
        for label, iv in items:
            sides[iv.verdict()].append(f"{label} ({iv.text(1)})")
        verdicts.append(
            f"- `{variant}`: better with confidence: {', '.join(sides[1]) or 'none'}. Worse with confidence: "
            f"{', '.join(sides[-1]) or 'none'}. Level (the interval holds 0): {', '.join(sides[0]) or 'none'}."
        )
    return {
        "adaptive-table": "\n".join(lines),
        "adaptive-verdicts": "\n".join(verdicts),
        "adaptive-ms": f"the fixed step took {min(fixed_ms):.0f} to {max(fixed_ms):.0f} ms per step in these runs",
    }


def _n(x):
    return "none" if x == 0 else str(x)


def blocks():
    """{block name: generated Markdown}."""
    c = comparison()
    agents = bundled()
    family = [a for a in agents if a[1] in ("tdmpc2", "bmpc")]
    steps = [a[3] for a in family]
    returns = [a[4] for a in family if a[4] is not None]
    table = [
        "| file | agent | task | training steps | policy return (mean over its evaluation seeds, below) | MB |",
        "|---|---|---|---|---|---|",
    ]
    table += [
        f"| `{f}` | {agent} | {task} | {s:,} | {'–' if r is None else f'{r:.0f}'} | {size / 1e6:.1f} |"
        for f, agent, task, s, r, size in agents
    ]
    rows, vs_mppi = _rows(), _rows("mppi")
    return {
        **{name: table_block(path, baseline) for name, (path, baseline) in TABLES.items() if (ROOT / path).is_file()},
        "compare-vs-policy": "Dream-MPC is " + verdict_sentence(rows, "dream", "policy"),
        "sweep-more-agents": more_agents_line(),
        "compare-shortfall": shortfall_line(),
        "ablation-reading": ablation_line(),
        "sweep-reading": sweep_line(),
        "compare-vs-mppi": "Dream-MPC is " + verdict_sentence(vs_mppi, "dream", "mppi"),
        "comparison": (
            f"Dream-MPC beats its policy prior with confidence on {c['better']} of {c['agents']} agents and is worse "
            f"with confidence on {_n(c['worse'])} (paired 95 % t-intervals over 3 evaluation seeds), at "
            f"1/{c['ratio_low']:.1f} to 1/{c['ratio_high']:.1f} of MPPI's planning time per step on this CPU "
            f"(`{COMPARE}`)"
        ),
        "bundled": (
            f"The bundled TD-MPC2 and BMPC agents are young: {min(steps):,} to {max(steps):,} training steps (model "
            f"size 1), policy "
            f"returns {min(returns):.0f} to {max(returns):.0f}; they demonstrate the planners, not the paper's scores"
        ),
        "bundled-table": "\n".join(table),
        **dreamer_blocks(),
        **budget_block(),
        **buffer_memory_block(),
        **adaptive_blocks(),
        **headline_analyses.blocks(),  # docs/analyses.md's D.2 and D.3
        **headline_performance.blocks(),
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


# ------------------------------------------------------------------------------------ numbers typed by hand
# Measured numbers live in generated blocks. Outside them a doc may name settings (in `code`, or plain counts such as
# "3 seeds"), the paper's section numbers and formulas, but no number that looks measured: one with a unit of time,
# memory, a percentage or a speed-up, a sign (+16, -13), a "±" or an interval. tests/test_docs.py checks MEASURED_DOCS.
MEASURED_DOCS = ("README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))
_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?(?:e[-+]?\d+)?"
_MEASURED = re.compile(
    rf"(?<![\w.])(?:{_NUM})\s*(?:ms|µs|s|sec|seconds?|min|minutes?|h|hours?|%|GB|GiB|MB|MiB|kB|KB|bytes?)(?![\w])"
    rf"|(?<![\w.])(?:{_NUM})(?:[x×](?![\w(])|\s[x×]\s+(?:faster|slower|as|more|less|that|longer|shorter)\b)"  # a
    # speed-up (27x, 1.5 x as long), not a shape or a product (64x64, 3 x 10, 32 x cnn_depth)
    rf"|(?<![\w)\]])[+−](?:{_NUM})|(?<![\w)\]\s(^*/])-(?:{_NUM})"  # a signed difference, not a formula's minus
    rf"|±|\[[-+−]?{_NUM},\s*[-+−]?{_NUM}\]",
    re.I,
)
_NOT_TEXT = (
    r"<!-- headline:([\w-]+) -->.*?<!-- /headline:\1 -->",  # generated
    r"<!-- planners -->.*?<!-- /planners -->",  # docs/planners.md's reference, generated by scripts/planner_docs.py
    r"```.*?```",  # commands
    r"`[^`\n]*`",  # settings and code
    r"\]\([^)]*\)",  # link targets
    r"<!--.*?-->",
    r"\[[-−]1, 1\]|\[-pi, pi\]|\b95 % |\b95 %$",  # the action range, the start-state range, the interval's level
    r"mean ± std|± (?:1|one) std",  # a format, not a number
)


def hand_typed(text):
    """The lines of a doc's prose that hold a number that looks measured (see MEASURED_DOCS)."""
    for pattern in _NOT_TEXT:
        text = re.sub(pattern, "", text, flags=re.S | re.M)
    return [line.strip() for line in text.splitlines() if _MEASURED.search(line)]


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
