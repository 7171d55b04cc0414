"""The paper's per-task tables (tables 8-13) from evaluation records: rows tasks, columns methods, cells mean ± std
over runs of the per-run mean (return, or success for Meta-World), a Mean row, the best two marked; as Markdown,
LaTeX and CSV (scripts/report.py writes them)."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dream_mpc.evaluation import aggregates as agg  # noqa: E402


def value_column(suite):
    """What the paper's tables show for a suite: Meta-World success, else the episode return."""
    return "success" if suite == "metaworld" else "return"


def task_table(df, suite, runs=("train_seed",), baselines=None):
    """The layout of tables 8-13 for one suite: rows tasks, columns methods, cells mean ± std over runs of the
    per-run mean (return, or success for Meta-World), plus a Mean row (mean ± std over the task means).
    Returns (cells, missing): cells[task][method] = dict(mean, std, n) (n runs), missing = list of notes for cells
    with fewer runs than the most any cell of the table has, or no runs at all."""
    value = value_column(suite)
    d = df[df["suite"] == suite]
    cells = {}
    if len(d):
        for _, r in agg.run_task_scores(d, value, runs).groupby(["task", "method"], sort=False):
            v = r[value].to_numpy(dtype=float)
            cells.setdefault(r["task"].iat[0], {})[r["method"].iat[0]] = {
                "mean": float(v.mean()),
                "std": float(v.std()),
                "n": len(v),
            }
    for name, per_task in (baselines or {}).items():
        for task, cell in per_task.items():
            if task in cells or not len(d):
                cells.setdefault(task, {})[name] = cell
    methods = list(dict.fromkeys(m for row in cells.values() for m in row))
    most = max((c["n"] for row in cells.values() for c in row.values() if c.get("n")), default=0)
    missing = []
    for task in sorted(cells):
        for m in methods:
            c = cells[task].get(m)
            if c is None:
                missing.append(f"{task} / {m}: no runs")
            elif c.get("n") and c["n"] < most:
                missing.append(f"{task} / {m}: {c['n']} of {most} runs")
    return cells, methods, missing


def _fmt(x, suite):
    return f"{x:.2f}" if suite == "metaworld" else f"{x:.0f}"


def table_rows(cells, methods, suite):
    """[(task, [(text, rank)])] with the Mean row last; rank 1 best, 2 second best (higher is better)."""
    rows = []
    tasks = sorted(cells)
    means = {m: [cells[t][m]["mean"] for t in tasks if m in cells[t]] for m in methods}
    complete = {m: len(v) == len(tasks) for m, v in means.items()}
    for task in tasks + ["Mean"]:
        vals = {}
        for m in methods:
            if task == "Mean":
                if complete[m] and means[m]:
                    vals[m] = (float(np.mean(means[m])), float(np.std(means[m])), len(means[m]))
            elif m in cells[task]:
                c = cells[task][m]
                vals[m] = (c["mean"], c.get("std", float("nan")), c.get("n"))
        order = sorted({round(v[0], 6) for v in vals.values()}, reverse=True)
        row = []
        for m in methods:
            if m not in vals:
                row.append(("–", 0))
                continue
            mean, std, n = vals[m]
            if n == 1:  # one run (or one task in the Mean row): there is no spread to estimate, not a spread of 0
                text = _fmt(mean, suite) + (" (1 task)" if task == "Mean" else " (1 run)")
            elif np.isnan(std):
                text = _fmt(mean, suite)
            else:  # a spread too small for the shown digits reads "< 1", never "± 0"
                shown = _fmt(std, suite)
                small = "0.01" if suite == "metaworld" else "1"
                text = _fmt(mean, suite) + (f" ± {shown}" if float(shown) > 0 or std == 0 else f" ± <{small}")
            rank = order.index(round(mean, 6)) + 1 if len(vals) > 1 else 0
            row.append((text, rank if rank <= 2 else 0))
        rows.append((task, row))
    return rows


def to_markdown(rows, methods, title):
    lines = [f"| {title} | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for task, row in rows:
        lines.append(
            f"| {task} | " + " | ".join(f"**{t}**" if r == 1 else f"<u>{t}</u>" if r == 2 else t for t, r in row) + " |"
        )
    return "\n".join(lines)


def to_latex(rows, methods, title):
    esc = lambda s: str(s).replace("_", r"\_").replace("%", r"\%").replace("±", r"$\pm$")  # noqa: E731
    lines = [
        r"\begin{tabular}{l" + "c" * len(methods) + "}",
        r"\toprule",
        esc(title) + " & " + " & ".join(esc(m) for m in methods) + r" \\",
        r"\midrule",
    ]
    for task, row in rows:
        if task == "Mean":
            lines.append(r"\midrule")
        cells = [
            r"\textbf{" + esc(t) + "}" if r == 1 else r"\underline{" + esc(t) + "}" if r == 2 else esc(t)
            for t, r in row
        ]
        lines.append(esc(task) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def to_csv_rows(cells, methods):
    out = [["task", "method", "mean", "std", "runs"]]
    for task in sorted(cells):
        for m in methods:
            c = cells[task].get(m)
            if c is not None:
                out.append([task, m, c["mean"], c.get("std", ""), c.get("n", "")])
    return out
