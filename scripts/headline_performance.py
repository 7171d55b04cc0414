"""The generated blocks of docs/performance.md: every measured number there is computed here from the result files
in results/performance/, never typed by hand. `python scripts/headline.py` writes them with its own blocks (and
`--check`s them; tests/test_docs.py too). Sources, each a JSON file whose "meta" records its run (command, date,
commit, torch, CPU, threads, load average before and after: scripts/bench_utils.py's provenance):
- benchmark.json (scripts/benchmark.py): updates/s, MPPI and policy ms per acting step, their product GFLOP and
  floors, the training loop's env steps/s;
- planners_size1.json, planners_size5.json and their _bf16 twins (scripts/benchmark_planners.py, the twins with
  `--set planning_dtype=bfloat16`): ms per planning step of every planner, GFLOP, floor, MB of weights read;
- fused_ab.json (scripts/benchmark_ab.py, `--a fused=false --b fused=true`): the plain ops against the fused CPU
  operators, interleaved in one process;
- busy_size1.json (scripts/benchmark_planners.py --busy): ms per step quiet and with one core taken by a CPU hog.
A block whose file is missing is left out (and its place in the doc keeps its old text).
"""

import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = "docs/performance.md"
FOLDER = "results/performance"
BENCHMARK = "benchmark.json"
PLANNERS = {  # (model size, planning dtype) -> file
    (1, "float32"): "planners_size1.json",
    (1, "bfloat16"): "planners_size1_bf16.json",
    (5, "float32"): "planners_size5.json",
    (5, "bfloat16"): "planners_size5_bf16.json",
}
FUSED = "fused_ab.json"
BUSY = "busy_size1.json"
DTYPE = {"float32": "", "bfloat16": ", bf16"}


def load(name):
    """The JSON result file `name` of results/performance/, or None where it is missing."""
    path = ROOT / FOLDER / name
    return json.loads(path.read_text()) if path.is_file() else None


def _ms(x):
    """A time in ms to three significant digits (whole ms from 100 on)."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _fraction(ratio):
    """'1/15' for a time that is 1/15 of another's."""
    return f"1/{ratio:.0f}" if ratio >= 10 else f"1/{ratio:.1f}"


def _files():
    """[(file name, its JSON)] of every result file present, in the order of the doc's tables."""
    names = [BENCHMARK, *PLANNERS.values(), FUSED, BUSY]
    return [(n, d) for n in names if (d := load(n)) is not None]


# ---------------------------------------------------------------------------------------------------- the runs
def _commit(meta):
    return meta["commit"] + ("+" if meta.get("uncommitted_changes") else "")


def runs_block():
    """One row per result file: the command that wrote it, when, at which commit, under which load, how long."""
    files = _files()
    lines = [
        "| command | date | commit | load average before (1, 5, 15 min) | after | wall s |",
        "|---|---|---|---|---|---|",
    ]
    for _, d in files:
        m = d["meta"]
        before = ", ".join(f"{x:.2f}" for x in m["load_average_before"])
        lines.append(
            f"| `{m['command']}` | {m['date']} | {_commit(m)} | {before} | {m['load_average_after'][0]:.2f} | "
            f"{m['wall_s']:.0f} |"
        )
    m = files[0][1]["meta"]
    dirty = any(d["meta"].get("uncommitted_changes") for _, d in files)
    loads = [d["meta"]["load_average_before"][0] for _, d in files]
    busy = sum(load > d["meta"]["cpus"] for load, (_, d) in zip(loads, files))
    lines += [
        "",
        f"{m['cpu']} ({', '.join(m['cpu_flags'])}), {m['cpus']} CPUs, torch {m['torch']}, {m['device']}. "
        + ("A commit with + ran with uncommitted changes to tracked files (listed in its file's meta). " * dirty)
        + f"The 1-minute load average before the runs was {min(loads):.2f} to {max(loads):.2f} (it still holds the "
        f"previous run's own work); {busy} of {len(files)} runs started above the CPU count, where other jobs shared "
        "the machine and the numbers carry their load.",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ updates and acting
def benchmark_block():
    """scripts/benchmark.py's table: updates/s, MPPI and policy ms per acting step, GFLOP and floors."""
    d = load(BENCHMARK)
    sizes = [k for k in d if k.isdigit()]
    lines = [
        "| model size | updates/s | update GFLOP | updates/s at the products' floor | MPPI ms / step | MPPI GFLOP "
        "| MPPI floor ms | policy ms / step | training loop env steps/s (`planner=dream`) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sizes:
        r = d[s]
        loop = f"{r['train_env_steps_per_s']:.1f}" if "train_env_steps_per_s" in r else "–"
        lines.append(
            f"| {s} | {r['updates_per_s']:.2f} | {r['update_gflop']:.1f} | {1e3 / r['update_floor_ms']:.1f} | "
            f"{_ms(r['mppi_ms'])} | {r['mppi_gflop']:.1f} | {_ms(r['mppi_floor_ms'])} | {r['policy_ms']:.2f} | {loop} |"
        )
    lines += [
        "",
        f"(Dense float32 products ran at {d['matmul_peak_gflops']:.0f} GFLOP/s in this run; `{FOLDER}/{BENCHMARK}`.)",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- planners
def _planner_runs():
    """{(model size, dtype): {planner: result}} of the planner files present."""
    return {key: d["planners"] for key, name in PLANNERS.items() if (d := load(name)) is not None}


ORDER = ("policy", "mppi", "dream", "grad", "hybrid", "cem", "cem_policy")  # the planners' table, then the rest


def _order(name):
    return ORDER.index(name) if name in ORDER else len(ORDER)


def _planner_cells(n, runs):
    """One planner's cells of planners_block: ms per run; GFLOP and floor per float32 size; MB, evaluations, ratio."""
    fp32 = {s: runs[s, "float32"] for s in (1, 5) if (s, "float32") in runs}
    cells = [_ms(r[n]["ms_per_step"]) if n in r else "–" for r in runs.values()]
    cells += [f"{r[n]['gflop_per_step']:.3g}" if n in r else "–" for r in fp32.values()]
    cells += [_ms(r[n]["floor_ms"]) if n in r else "–" for r in fp32.values()]
    big = fp32.get(5)
    if big is not None:
        cells.append(f"{big[n]['product_mb_per_step']:,.1f}" if n in big else "–")
    cells.append(f"{next(r[n] for r in runs.values() if n in r)['model_evaluations']:,}")
    if big is not None and "mppi" in big:
        cells.append(f"{big['mppi']['ms_per_step'] / big[n]['ms_per_step']:.3g}x" if n in big else "–")
    return cells


def planners_block():
    """Every planner's ms per step at each model size and dtype measured, with its products and floor (float32)."""
    runs = _planner_runs()
    fp32 = [s for s in (1, 5) if (s, "float32") in runs]
    head = [f"size {s}{DTYPE[t]}: ms / step" for s, t in runs]
    head += [f"GFLOP / step (size {s})" for s in fp32] + [f"floor ms (size {s})" for s in fp32]
    if 5 in fp32:
        head.append("MB of weights read / step (size 5)")
    head.append("model evals / step")
    if 5 in fp32 and "mppi" in runs[5, "float32"]:
        head.append("MPPI's time / this (size 5)")
    lines = ["| planner | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    for n in sorted(dict.fromkeys(n for r in runs.values() for n in r), key=_order):
        lines.append(f"| `{n}` | " + " | ".join(_planner_cells(n, runs)) + " |")
    files = ", ".join(f"`{FOLDER}/{PLANNERS[k]}`" for k in runs)
    steps = sorted({r[n]["repeats"] for r in runs.values() for n in r if "repeats" in r[n]}, reverse=True)
    return "\n".join(lines) + (
        f"\n\n(Median of {' or '.join(map(str, steps))} timed steps (fewer for planners of many model evaluations); "
        f"batch 1, eval mode; {files}.)"
    )


def dream_line():
    """'Dream-MPC plans a step in X ms, 1/Y of MPPI's time (Z ms), at model size 5 in float32; ...' for each planner
    file with both planners, the larger model first."""
    runs = sorted(_planner_runs().items(), key=lambda item: (-item[0][0], item[0][1] != "float32"))
    parts = []
    for (size, dtype), r in runs:
        if "dream" in r and "mppi" in r:
            dream, mppi = r["dream"]["ms_per_step"], r["mppi"]["ms_per_step"]
            parts.append(
                f"{_ms(dream)} ms, {_fraction(mppi / dream)} of MPPI's time ({_ms(mppi)} ms), at model size {size} "
                f"in {dtype}"
            )
    if not parts:
        return None
    n = next(d for name in PLANNERS.values() if (d := load(name)))["meta"]["threads"]
    return f"Dream-MPC plans a step in {'; '.join(parts)} ({n} thread{'s' * (n != 1)})"


def floor_line():
    """Where Dream-MPC's time goes at model size 5: its products' floor against its measured time, and the weights."""
    d = load(PLANNERS[5, "float32"])
    dream, mppi, peak = d["planners"]["dream"], d["planners"].get("mppi"), d["meta"]["matmul_peak_gflops"]
    line = (
        f"At model size 5 a Dream-MPC step's matrix products are {dream['gflop_per_step']:.3g} GFLOP: "
        f"{_ms(dream['floor_ms'])} ms at the {peak:.0f} GFLOP/s this run measured for a dense 1024 x 1024 product, "
        f"against {_ms(dream['ms_per_step'])} ms measured. They read {dream['product_mb_per_step']:.1f} MB of weights"
    )
    if mppi:
        line += (
            f"; MPPI's {mppi['gflop_per_step']:.1f} GFLOP, on 512 candidates at once, take {_ms(mppi['ms_per_step'])} "
            f"ms against a floor of {_ms(mppi['floor_ms'])} ms"
        )
    return line + f" (`{FOLDER}/{PLANNERS[5, 'float32']}`)"


# ------------------------------------------------------------------------------------------- the fast paths
def fused_block():
    """The plain ops (A, `fused=false`) against the fused operators (B), interleaved in one process."""
    d = load(FUSED)
    lines = [
        "| what | model size | plain ops | fused operators | fused time / plain time | rounds |",
        "|---|---|---|---|---|---|",
    ]
    for r in d["rows"]:
        rate = r["what"] == "update"
        fmt = (lambda ms: f"{1e3 / ms:.2f} updates/s") if rate else (lambda ms: f"{_ms(ms)} ms")
        lines.append(
            f"| {r['what']} | {r['model_size']} | {fmt(r['a_ms'])} | {fmt(r['b_ms'])} | {r['b_over_a']:.2f} | "
            f"{len(r['rounds_a_ms'])} |"
        )
    m = d["meta"]
    return "\n".join(lines) + (
        f"\n\n(Median over interleaved rounds, {m['threads']} threads; below 1 the fused operators are faster; "
        f"`{FOLDER}/{FUSED}`.)"
    )


def busy_block():
    """Median ms per step quiet and with a CPU hog on one core, per planner and thread setting."""
    d = load(BUSY)
    med = {}
    for key, ms in d["samples"].items():
        policy, threads, state, planner = key.split("|")
        med.setdefault((planner, threads), {})[state] = statistics.median(ms)
    lines = [
        "| planner | threads | median ms quiet | median ms busy | busy / quiet |",
        "|---|---|---|---|---|",
    ]
    for (planner, threads), m in sorted(med.items(), key=lambda item: _order(item[0][0])):
        label = "`plan_threads=0` (adaptive)" if threads == "auto" else threads
        lines.append(f"| {planner} | {label} | {_ms(m['quiet'])} | {_ms(m['busy'])} | {m['busy'] / m['quiet']:.2f}x |")
    meta = d["meta"]
    return "\n".join(lines) + (
        f"\n\n(Model size {meta['model_size']}, {meta['rounds']} rounds alternating quiet and busy; every step timed, "
        f"the adaptive agent's tries included; `{FOLDER}/{BUSY}`.)"
    )


def blocks():
    """{block name: generated Markdown} for docs/performance.md, for the result files present."""
    have = {name for name, _ in _files()}
    out = {"perf-runs": runs_block()} if have else {}
    if BENCHMARK in have:
        out["perf-benchmark"] = benchmark_block()
    if have & set(PLANNERS.values()):
        out["perf-planners"] = planners_block()
        out["perf-dream"] = dream_line()
    if PLANNERS[5, "float32"] in have:
        out["perf-floor"] = floor_line()
    if FUSED in have:
        out["perf-fused"] = fused_block()
    if BUSY in have:
        out["perf-busy"] = busy_block()
    return {name: text for name, text in out.items() if text}
