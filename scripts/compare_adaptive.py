"""Adaptive planning (dream_mpc/adaptive.py) against Dream-MPC's fixed step.

    python scripts/compare_adaptive.py --checkpoints agents/cartpole-swingup-*-1M.pt agents/walker-walk-*-1M.pt \\
        --seeds 5 --episodes 1 --out results/adaptive/<name> [--variants "label=dream.key=value[,...]" ...] \\
        [--resume | --overwrite]

Every variant on every checkpoint, the same initial states per evaluation seed (as scripts/compare_planners.py,
whose table and statistics it reuses): each variant's return difference to the first variant on the same episodes,
averaged per evaluation seed, with Student's t 95 % interval over the seeds and their number
(dream_mpc/evaluation/intervals.py; one seed: no interval), plus the planning ms per step and the mean gradient
iterations and objective evaluations (forward passes) per plan. Writes episodes.csv, summary.json, adaptive.png
(differences with intervals, and ms per step) and table.md to --out.

The iterations and evaluations are read from each plan as it ran (`SearchCounter`), without touching the planner:
the anytime mode (`dream.budget_ms`) remembers its iteration times across plans, and a harness that reset the
planner's state after each plan would measure a planner that never remembers. The budget's overrun in
milliseconds is measured by scripts/budget_overrun.py. Times are wall clock: on a shared machine they carry its load
(say so when quoting them).
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dream_mpc import reproducible_products  # noqa: E402

reproducible_products()  # the same bits at any CPU thread count (before MKL's first product)

import compare_planners  # noqa: E402
import numpy as np  # noqa: E402
import outputs  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from dream_mpc.checkpoint import load_agent  # noqa: E402
from dream_mpc.envs import make_env  # noqa: E402
from dream_mpc.errors import UserError, run_cli  # noqa: E402
from dream_mpc.evaluation.episodes import run_episode, seed_everything  # noqa: E402

# label=override[,override...]; the first is the reference of the paired differences
DEFAULT_VARIANTS = [
    "fixed=",
    "backtracking=dream.step_rule=backtracking",
    "normalized=dream.step_rule=normalized",
    "fixed 5 it=dream.iterations=5",
    "tol 1e-3 (max 5 it)=dream.tol=0.001,dream.iterations=5",
    "budget 5 ms=dream.budget_ms=5",
]
OUTPUT_FILES = ("episodes.csv", "summary.json", "adaptive.png", "table.md")


def parse_variant(text):
    label, sep, overrides = text.partition("=")  # a label holds no "="
    if not sep or not label:
        raise UserError(f"a variant is 'label=dream.key=value[,dream.key=value]', got {text!r}")
    return label, [o for o in overrides.split(",") if o]


class SearchCounter:
    """Per plan: the gradient iterations and objective evaluations the planner took, read as it ran and without
    changing it. Installed as a wrapper around `planner.plan` (removed by `close()`, or use it as a context
    manager); after each call it reads `planner.last_search`: a new search object is the plan's own adaptive search
    (its `iterations` and `evaluations`); the same object as before the call (or none) means a fixed-step plan, which
    takes the configured iterations and iterations + 1 evaluations. The planner's state, the anytime mode's memory of
    its iteration times included, is left exactly as the plan left it."""

    def __init__(self, planner):
        self.planner, self.iterations, self.evaluations = planner, [], []
        self._own = planner.__dict__.get("plan")  # an instance-level plan (a compiled one) to restore
        self._inner = planner.plan
        planner.plan = self._plan

    def _plan(self, *args, **kwargs):
        before = self.planner.last_search
        result = self._inner(*args, **kwargs)
        search = self.planner.last_search
        if search is not None and search is not before:
            self.iterations.append(search.iterations)
            self.evaluations.append(search.evaluations)
        else:  # a fixed-step plan
            self.iterations.append(self.planner.iterations)
            self.evaluations.append(self.planner.iterations + 1)
        return result

    def close(self):
        if self._own is None:
            self.planner.__dict__.pop("plan", None)
        else:
            self.planner.plan = self._own

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def compare(checkpoints, variants, seeds, episodes, device, done=()):
    """Yields one row per episode (compare_planners' fields, the variant as `planner`, plus search counts); the
    episodes whose (checkpoint, variant, seed, episode) is in `done` are skipped (their initial states still drawn)."""
    done = set(done)
    total = len(checkpoints) * len(variants) * seeds * episodes - len(done)
    bar = tqdm(total=total, unit="episode", dynamic_ncols=True)
    for path in checkpoints:
        for label, overrides in variants:
            if all((str(path), label, s, e) in done for s in range(1, seeds + 1) for e in range(episodes)):
                continue
            agent = load_agent(path, device=device, overrides=["planner=dream", *overrides])
            env = make_env(agent.cfg)
            for seed in range(1, seeds + 1):
                seed_everything(seed, env)
                skipped = False
                for episode in range(episodes):
                    if (str(path), label, seed, episode) in done:
                        env.reset()  # this episode's initial state, as in a full run
                        skipped = True
                        continue
                    if skipped:  # a full run's noise stream cannot be recovered: a fixed new one (compare_planners)
                        torch.manual_seed(seed * 100_003 + episode)
                        skipped = False
                    with SearchCounter(agent.planner) as counter:
                        ep = run_episode(agent, env, eval_mode=True)
                    bar.set_postfix_str(f"{Path(path).stem} {label} seed {seed}: {ep['return']:.0f}")
                    bar.update()
                    yield {
                        "checkpoint": str(path),
                        "task": agent.cfg.task,
                        "agent": agent.cfg.agent,
                        "planner": label,
                        "seed": seed,
                        "episode": episode,
                        "return": ep["return"],
                        "success": ep["success"],
                        "ms_per_step": ep["ms_per_step"],
                        "iterations": float(np.mean(counter.iterations)),
                        "evaluations": float(np.mean(counter.evaluations)),
                    }
    bar.close()


def table(summary, rows, reference):
    """compare_planners' table with the mean iterations and evaluations per step added."""
    counts = {}
    for r in rows:
        counts.setdefault((r["checkpoint"], r["planner"]), []).append((r["iterations"], r["evaluations"]))
    lines = compare_planners.table(summary, baseline=reference).splitlines()
    lines[0] += " iterations / step | evaluations / step |"
    lines[1] += "---|---|"
    for i, s in enumerate(summary):
        it, ev = np.mean(counts[(s["checkpoint"], s["planner"])], axis=0)
        lines[i + 2] += f" {it:.2f} | {ev:.2f} |"
    return "\n".join(lines)


def plot(summary, reference, path):
    """adaptive.png: per variant, the paired return difference to the reference with its 95 % t-interval over seeds
    (left; a hollow marker and no bar where one seed gives no interval) and the planning ms per step (right); one
    marker series per checkpoint, labelled with its task and agent; the title gives the seeds and episodes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(s["planner"] for s in summary))
    groups = list(dict.fromkeys((s["task"], s["agent"]) for s in summary))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.45 * len(variants) + 2.0), sharey=True)
    for g, (task, agent) in enumerate(groups):
        offset = (g - (len(groups) - 1) / 2) * 0.18
        rows = [s for s in summary if (s["task"], s["agent"]) == (task, agent)]
        ys = [variants.index(s["planner"]) + offset for s in rows]
        ivs = [compare_planners.interval_of(s, reference) for s in rows]
        mid = [0.0 if iv is None else iv.mean for iv in ivs]
        err = [
            [0.0 if iv is None or not iv.defined else iv.mean - iv.low for iv in ivs],
            [0.0 if iv is None or not iv.defined else iv.high - iv.mean for iv in ivs],
        ]
        (line, *_) = left.errorbar(mid, ys, xerr=err, fmt="o", capsize=3, label=f"{task} ({agent})")
        hollow = [(m, y) for m, y, iv in zip(mid, ys, ivs) if iv is not None and not iv.defined]
        if hollow:
            left.plot(*zip(*hollow), "o", mfc="white", color=line.get_color())
        right.plot([s["ms_per_step"] for s in rows], ys, "s", label=f"{task} ({agent})")
    left.axvline(0.0, color="0.3", lw=0.8, ls=":", label=f"= {reference}")
    left.set_yticks(range(len(variants)), variants)
    left.invert_yaxis()
    seeds = sorted({s["seeds"] for s in summary})
    episodes = sorted({s["episodes"] for s in summary})
    left.set_xlabel(f"return − {reference} on the same episodes\n(mean; bars: 95 % t-interval over seeds)")
    right.set_xlabel("planning ms / step (mean over episodes)")
    fig.suptitle(
        f"per variant and agent: {', '.join(map(str, seeds))} evaluation seeds, {', '.join(map(str, episodes))} "
        "episodes in all; hollow: one seed, no interval",
        fontsize="small",
    )
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="+", default=[])
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, help="label=dream.key=value[,...]")
    p.add_argument("--seeds", type=int, default=5, help="evaluation seeds 1..N (the runs of the intervals)")
    p.add_argument("--episodes", type=int, default=1, help="episodes per seed")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N")
    p.add_argument("--out", default="results/tmp/adaptive", help="output folder (default: ignored by git)")
    outputs.add_flags(p)  # --resume: keep out/episodes.csv and run only the missing episodes
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for path in args.checkpoints:
        if not Path(path).is_file():
            raise UserError(f"checkpoint not found: {path}")
    if not args.checkpoints:
        raise UserError("give --checkpoints (the budget's overrun in ms: scripts/budget_overrun.py)")
    variants = [parse_variant(v) for v in args.variants]
    out = outputs.output_folder(args.out, OUTPUT_FILES, resume=args.resume, overwrite=args.overwrite)
    earlier = []
    if args.resume and (out / "episodes.csv").is_file():
        earlier = [
            dict(r, iterations=float(r["iterations"]), evaluations=float(r["evaluations"]))
            for r in compare_planners.read_rows(out / "episodes.csv")
        ]
    done = {(r["checkpoint"], r["planner"], r["seed"], r["episode"]) for r in earlier}
    compare_planners.FIELDS += [f for f in ("iterations", "evaluations") if f not in compare_planners.FIELDS]
    rows = compare_planners.record(
        earlier, compare(args.checkpoints, variants, args.seeds, args.episodes, args.device, done), out / "episodes.csv"
    )
    summary = compare_planners.summarise(rows, baseline=variants[0][0])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(summary, variants[0][0], out / "adaptive.png")
    text = table(summary, rows, variants[0][0])
    (out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
