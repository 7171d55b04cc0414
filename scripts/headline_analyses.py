"""The generated blocks of docs/analyses.md's gradient (appendix D.2) and exploitation (appendix D.3) sections:
every number there is computed here from tracked result files, never typed by hand. `python scripts/headline.py`
writes them with its own blocks (and `--check`s them; tests/test_docs.py too). Sources:
- results/gradients/ (the TD-MPC2 variant), results/gradients-dreamer/ (the paper's setup: a Dreamer agent with
  action repeat 2) and results/gradients-dreamer-mean/ (the same without the RSSM's sampling noise), each a
  `summary.json` of scripts/analyze_gradients.py; results/gradients-dreamer/training/ (train.csv, eval.csv of the
  Dreamer agent's run);
- results/exploitation/records/ (TD-MPC2 and BMPC agents), results/exploitation/dreamer-records/ (the bundled
  Dreamer agent) and results/exploitation/dreamer-acrobot-records/ (figure 15's setup: three Dreamer agents trained
  on acrobot-swingup, their train.csv in results/exploitation/dreamer-acrobot-training/seed<N>/), evaluation records
  read through scripts/exploitation.py (the paper's sign: actual minus predicted).
"""

import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = "docs/analyses.md"
GRADIENTS = {
    "tdmpc2": "results/gradients",
    "dreamer": "results/gradients-dreamer",
    "dreamer-mean": "results/gradients-dreamer-mean",
}
DREAMER_TRAINING = "results/gradients-dreamer/training"
EXPLOITATION = {
    "bundled": "results/exploitation/records",
    "dreamer": "results/exploitation/dreamer-records",
    "acrobot": "results/exploitation/dreamer-acrobot-records",  # the paper's task
}
METHOD = {"grad": "Grad-MPC", "dream": "Dream-MPC"}
MODEL = {"true": "ground truth", "learned": "learned"}


def _g(x):
    return f"{x:.3g}"


# ---------------------------------------------------------------------------------------------------- gradients
def gradient_summary(name):
    path = ROOT / GRADIENTS[name] / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _row(summary, model, method, H):
    return next(r for r in summary["summary"] if (r["model"], r["method"], r["horizon"]) == (model, method, H))


def gradient_table(summary):
    """The table of one run: geometric mean ×/÷ factor of the positive metrics, mean ± std of the ESNRs."""
    lines = [
        "| model | method | H | magnitude (mean L2 norm) | variance over draws | variance over draws and states "
        "| ESNR (eq. 17, unbiased) | median SNR over states | plug-in ESNR (biased) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(summary["summary"], key=lambda r: (r["model"] != "true", r["method"] != "grad", r["horizon"])):
        geo = [f"{_g(r[f'{m}_gmean'])} ×/÷ {r[f'{m}_gsd']:.2f}" for m in ("norm", "var_within", "var_total")]
        lines.append(
            f"| {MODEL[r['model']]} | {METHOD[r['method']]} | {r['horizon']} | {' | '.join(geo)} "
            f"| {_g(r['esnr_mean'])} ± {_g(r['esnr_std'])} | {_g(r['esnr_median_mean'])} ± {_g(r['esnr_median_std'])} "
            f"| {_g(r['esnr_plugin_mean'])} |"
        )
    return "\n".join(lines)


def _prior(summary, method):
    """Mean over the rows of a method (all horizons, both models, seeds) of the first-action statistics."""
    rows = [r for r in summary["summary"] if r["method"] == method]
    sat = sum(r["saturated_mean"] for r in rows) / len(rows)
    std = sum(r["first_action_std_mean"] for r in rows) / len(rows)
    return sat, std


def _esnr_at(summary, model, method, horizons=(3, 10, 30)):
    return " / ".join(_g(_row(summary, model, method, H)["esnr_mean"]) for H in horizons)


def dreamer_agent_line():
    folder = ROOT / DREAMER_TRAINING
    if not (folder / "train.csv").is_file():
        return None
    train = list(csv.DictReader(open(folder / "train.csv")))
    evals = list(csv.DictReader(open(folder / "eval.csv")))
    last = train[-1]
    episode_returns = [float(r["episode_reward"]) for r in train]
    steps = ", ".join(f"{int(r['step']):,}" for r in evals)
    returns = ", ".join(f"{float(r['episode_reward']):.0f}" for r in evals)
    last5, first5 = sum(episode_returns[-5:]) / 5, sum(episode_returns[:5]) / 5
    return (
        f"{int(last['step']):,} agent steps ({int(last['episode'])} episodes of {int(last['episode_length'])} agent "
        f"steps, {2 * int(last['step']):,} simulator steps), {float(last['elapsed_time']) / 60:.1f} min of training "
        f"(train.csv's elapsed time, one thread on the shared 2-core CPU). Its evaluation returns (3 episodes, "
        f"planner=policy) at steps {steps}: {returns}; the last five training episodes {last5:.0f} on average, "
        f"against {first5:.0f} for the five random seed episodes (random actions average -1229.9, docs/suites.md): "
        f"a weak policy, a model trained on {int(last['step']):,} transitions (`{DREAMER_TRAINING}/`)"
    )


def gradient_blocks():
    out = {}
    td, dr, mean = (gradient_summary(k) for k in ("tdmpc2", "dreamer", "dreamer-mean"))
    walls = [
        f"{s['machine']['measure_wall_s']:.0f} s ({label}, load average {s['machine']['load_average']:.1f} on "
        f"{s['machine']['cpus']} CPUs)"
        for s, label in ((dr, "the paper's setup"), (mean, "without sampling noise"), (td, "the TD-MPC2 variant"))
        if s and "machine" in s
    ]
    if walls:
        out["gradients-wall"] = ", ".join(walls)
    if td:
        out["gradients-tdmpc2-table"] = gradient_table(td)
        draws = td["setup"]["draws"]
        plain = _row(td, "true", "grad", 1)
        sat, std = _prior(td, "dream")
        out["gradients-tdmpc2-facts"] = (
            f"Grad-MPC through the ground truth at H = 1 has no signal (the gradient -0.008 a of zero-mean "
            f"candidates): the unbiased ESNR is {_g(plain['esnr_mean'])} ± {_g(plain['esnr_std'])}, where the plug-in "
            f"estimator said {_g(plain['esnr_plugin_mean'])}, its bias 1/K = 1/{draws} = {1 / draws:.3g} plus noise. "
            f"Dream-MPC's candidates on this agent hardly vary: {100 * sat:.0f} % of the sampled first actions have "
            f"|a| > 0.99 (its tanh policy saturates) and the median per-state std of a sampled first action is "
            f"{std:.3f} (Grad-MPC's: {_prior(td, 'grad')[1]:.3f}), so its draws give nearly the same gradient and its "
            f"ESNR is large: {_esnr_at(td, 'true', 'dream')} through the ground truth and "
            f"{_esnr_at(td, 'learned', 'dream')} through the learned model at H = 3 / 10 / 30 (Grad-MPC: "
            f"{_esnr_at(td, 'true', 'grad')} and {_esnr_at(td, 'learned', 'grad')})"
        )
    if dr:
        out["gradients-dreamer-table"] = gradient_table(dr)
        sat, std = _prior(dr, "dream")
        line = (
            f"Ground truth, ESNR at H = 3 / 10 / 30: Grad-MPC {_esnr_at(dr, 'true', 'grad')}, Dream-MPC "
            f"{_esnr_at(dr, 'true', 'dream')}. Learned Dreamer model with the planners' imagination noise (appendix D: "
            f"independent draws per candidate): Grad-MPC {_esnr_at(dr, 'learned', 'grad')}, Dream-MPC "
            f"{_esnr_at(dr, 'learned', 'dream')}. Dream-MPC's candidates (one shared policy rollout plus action noise "
            f"0.2) spread more than on TD-MPC2: {100 * sat:.0f} % of first actions at |a| > 0.99, a median per-state "
            f"std of {std:.3f}"
        )
        if mean:
            line += (
                f". With the RSSM's mean instead of its samples (`--imagination mean`, "
                f"`{GRADIENTS['dreamer-mean']}/`) the learned model's ESNR is Grad-MPC "
                f"{_esnr_at(mean, 'learned', 'grad')}, Dream-MPC {_esnr_at(mean, 'learned', 'dream')}"
            )
        out["gradients-dreamer-facts"] = line
        agent = dreamer_agent_line()
        if agent:
            out["gradients-dreamer-agent"] = agent
    return out


# ---------------------------------------------------------------------------------------------------- exploitation
def _exploitation_rows(folder):
    path = ROOT / folder
    if not path.is_dir():
        return None
    sys.path.insert(0, str(ROOT / "scripts"))
    import exploitation

    from dream_mpc.evaluation import records

    rows = exploitation.recorded(records.collect([str(path)]))
    return (exploitation, exploitation.summary_rows(rows), rows) if rows else None


def _relative(s):
    return abs(s["reward_gap"]) / abs(s["realised_reward"]) if s["realised_reward"] else float("inf")


def _runs_text(mine):
    """'30 episodes (3 training seeds x 10, 10, 10 with evaluation seed 1, 500 agent steps each)' or, for one
    training seed, its evaluation seeds."""
    train = sorted({r.get("train_seed") for r in mine}, key=str)
    unit, key = ("training seeds", "train_seed") if len(train) > 1 else ("evaluation seeds", "seed")
    values = sorted({r[key] for r in mine}, key=str)
    counts = ", ".join(str(sum(1 for r in mine if r[key] == v)) for v in values)
    also = ""
    if len(train) > 1:
        evals = sorted({r["seed"] for r in mine})
        also = f" with evaluation seed{'s' if len(evals) > 1 else ''} {', '.join(map(str, evals))}"
    return f"{len(mine)} episodes ({len(values)} {unit} x {counts}{also}, {mine[0]['length']} agent steps each)"


def _over_training_seeds(mine):
    """The mean reward gap per training seed and Student's t interval over them (None for one training seed)."""
    from dream_mpc.evaluation.intervals import t_interval

    by = {}
    for r in mine:
        by.setdefault(r.get("train_seed"), []).append(r["exploitation"]["reward_gap"]["mean"])
    if len(by) < 2:
        return None
    means = [sum(v) / len(v) for _, v in sorted(by.items(), key=lambda kv: str(kv[0]))]
    iv = t_interval(means)
    return f"per training seed {', '.join(f'{m:+.3f}' for m in means)}, over training seeds {iv.text(3)}"


def _dreamer_exploitation(folder, name):
    """The table and facts blocks (`<name>-table`, `<name>-facts`) of a Dreamer agent's exploitation records."""
    out = {}
    found = _exploitation_rows(folder)
    if found:
        module, summary, rows = found
        out[f"{name}-table"] = module.markdown(summary)
        weights = sorted({str(r.get("weights")) for r in rows})
        parts = []
        for s in summary:
            mine = [r for r in rows if r["method"] == s["method"]]
            means = [r["exploitation"]["reward_gap"]["mean"] for r in mine]
            gap = sum(means) / len(means)
            spread = (sum((x - gap) ** 2 for x in means) / max(1, len(means) - 1)) ** 0.5
            seeds = _over_training_seeds(mine)
            parts.append(
                f"{s['method']}: {_runs_text(mine)}, return {sum(r['return'] for r in mine) / len(mine):.1f} on "
                f"average; actual minus predicted {s['horizon']}-step reward {gap:+.3f} ± {spread:.3f} (mean ± std "
                f"over episodes of each episode's mean{'; ' + seeds if seeds else ''}), against a realised "
                f"{s['realised_reward']:.3f} and a predicted {s['predicted_reward']:.3f} per window "
                f"({100 * _relative(s):.0f} % of the realised); with the value head to the episode's end (steps with "
                f"an untruncated tail) {s['return_gap']:+.2f}"
            )
        which = f"weights {weights[0]} in every row" if len(weights) == 1 else f"weights {', '.join(weights)}"
        out[f"{name}-facts"] = "; ".join(parts) + f" ({which})"
    return out


ACROBOT_TRAINING = "results/exploitation/dreamer-acrobot-training"


def acrobot_training_line():
    """Steps and minutes of each figure-15 training run (train.csv of each seed's folder)."""
    import pandas as pd

    runs = sorted((ROOT / ACROBOT_TRAINING).glob("seed*/train.csv"))
    if not runs:
        return None
    parts = []
    for run in runs:
        train = pd.read_csv(run)
        minutes = train["elapsed_time"].iloc[-1] / 60
        steps = int(train["step"].iloc[-1])
        parts.append(f"training seed {run.parent.name[4:]}: {steps:,} steps in {minutes:.0f} min")
    return f"{'; '.join(parts)} (2 threads each, the machine not always quiet; `{ACROBOT_TRAINING}/`)"


def exploitation_blocks():
    out = {}
    line = acrobot_training_line()
    if line:
        out["exploitation-acrobot-training"] = line
    found = _exploitation_rows(EXPLOITATION["bundled"])
    if found:
        module, summary, _ = found
        out["exploitation-table"] = module.markdown(summary)
        parts = []
        for task in sorted({s["task"] for s in summary}):
            sel = sorted((s for s in summary if s["task"] == task), key=_relative)
            worst = sel[-1]
            parts.append(
                f"on {task} the mean reward gap is {100 * _relative(sel[0]):.1f} % ({sel[0]['method']}) to "
                f"{100 * _relative(worst):.1f} % ({worst['method']}: {worst['reward_gap']:+.3f} against a realised "
                f"{worst['realised_reward']:.3f} per window) of the realised H-step reward"
            )
        most = min(summary, key=lambda s: s["reward_gap"])
        out["exploitation-facts"] = (
            "; ".join(parts)
            + f". The most negative mean gap (the model promised more than it delivered) is {most['method']} on "
            f"{most['task']}: predicted {most['predicted_reward']:.3f}, realised {most['realised_reward']:.3f} per "
            f"{most['horizon']}-step window ({most['episodes']} episode(s))"
        )
    for key, name in (("dreamer", "exploitation-dreamer"), ("acrobot", "exploitation-acrobot")):
        out.update(_dreamer_exploitation(EXPLOITATION[key], name))
    return out


def blocks():
    """{block name: generated Markdown} for docs/analyses.md's gradient and exploitation sections."""
    return {**gradient_blocks(), **exploitation_blocks()}
