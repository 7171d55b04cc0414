"""The paper's gradient analysis (appendix D.2, figures 13 and 14) on gym-pendulum (gymnasium's Pendulum-v1).

For Grad-MPC and Dream-MPC, through the ground-truth dynamics (dream_mpc/models/pendulum.py) and through a learned
model (--checkpoint: a TD-MPC2 or Dreamer agent trained on gym-pendulum by train.py), at each horizon H: the gradient
of the planning objective with respect to the planner's initial action sequences, its mean L2 norm, its variance
and its expected signal-to-noise ratio (eq. 17, dream_mpc/gradient_stats.py).

The agent's family sets the rest, as in its runs: the planners' options (Dreamer: appendix D's, table 16; only
the horizon and the number of candidates, = --draws, are changed here), the discount, and the action repeat of
the suite for that family (dream_mpc/envs/pendulum.py: 1 for TD-MPC2, table 16's 2 for Dreamer), which the true
model repeats too. A latent from an observation: TD-MPC2's encoder; Dreamer's filter (one posterior step from its
initial state, the posterior mean: the latent its act starts an episode with, up to the posterior's sample). A
stochastic model (Dreamer's RSSM) imagines with the planner's imagination noise (appendix D: independent draws per
candidate), the same for the candidates' rollout and the gradient pass, as in a plan: that noise is part of a draw.

What is resampled, per seed (the seed also seeds torch):
- conditions: --states start states, drawn from gymnasium's reset distribution (theta ~ U[-pi, pi], theta_dot ~
  U[-1, 1], the env seeded with the seed) or, with --start visited, uniformly from the states the agent's policy
  visits in evaluation episodes of the env seeded with the seed. The same states serve every method, model and
  horizon of a seed.
- draws: --draws candidate initialisations per state from the planner's own distribution (its
  `initial_candidates`, at an episode's start so nothing is reused): Dream-MPC rolls out the policy prior through
  the model it plans with (the agent's policy on the true observations for the true model, --true-prior agent,
  or the model's Gaussian prior, --true-prior gaussian); Grad-MPC draws N(0, grad.init_std^2) clamped to [-1, 1].
The inner mean and variance of the ESNR are over the draws at one state (|E g|^2 estimated without its 1/K bias,
dream_mpc/gradient_stats.py), the outer mean over the states. Figure 13 (log axes): geometric mean over seeds, band
x/÷ the geometric std factor; figure 14 (symmetric log axes, the ESNR can be 0 or below): mean over seeds, band
min to max over seeds.

The objective (--objective): `return` (default, the paper's eq. 17) is R = sum_{h<H} r_h, the undiscounted sum of
the H predicted rewards; `planner` is the planner's own objective J (dream_mpc/objective.py: discounted rewards,
the terminal value and, for Dream-MPC, the uncertainty penalty). The gradient is the raw one (before the planner's
norm clipping), taken with respect to the H actions that R depends on.

    python scripts/analyze_gradients.py                               # reduced scale: minutes on 2 CPU cores
    python scripts/analyze_gradients.py --checkpoint agents/analysis/gym-pendulum-dreamer.pt --out results/tmp/g
    python scripts/analyze_gradients.py --states 64 --draws 128 --out results/tmp/gradients-full
"""

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dream_mpc import reproducible_products

reproducible_products()  # the same bits at any CPU thread count (before MKL's first product)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from dream_mpc.checkpoint import load_agent  # noqa: E402
from dream_mpc.envs import suite_of  # noqa: E402
from dream_mpc.envs.pendulum import Pendulum  # noqa: E402
from dream_mpc.errors import UserError, run_cli  # noqa: E402
from dream_mpc.gradient_stats import gradient_stats, median  # noqa: E402
from dream_mpc.models.pendulum import PendulumModel  # noqa: E402
from dream_mpc.planner import make_planner  # noqa: E402
from dream_mpc.rollout import latent_rollout, step_rewards  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import outputs  # noqa: E402

TASK = "gym-pendulum"
# outside agents/*.pt, which are the comparison's agents (scripts/headline.py describes every one of them)
AGENT = "agents/analysis/gym-pendulum-tdmpc2.pt"
METHODS = {"grad": "Grad-MPC", "dream": "Dream-MPC"}
MODELS = {"true": "ground truth", "learned": "learned"}
FAMILIES = {"tdmpc2": "TD-MPC2", "bmpc": "BMPC", "dreamer": "Dreamer"}
FILES = ("gradients.csv", "summary.csv", "summary.json", "fig13_gradients.png", "fig14_esnr.png")
METRICS = ("norm", "var_within", "var_total", "esnr", "esnr_median", "esnr_plugin", "saturated", "first_action_std")
POSITIVE = ("norm", "var_within", "var_total")  # figure 13: geometric statistics over seeds on log axes
SYMLOG_LINEAR = 1e-2  # figure 14's symmetric log axis is linear within +-this (the ESNR may be 0 or below)


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkpoint",
        default=AGENT,
        help="a TD-MPC2 or Dreamer agent for gym-pendulum (default: the bundled TD-MPC2 one; a relative path may be "
        "the repository's)",
    )
    p.add_argument("--horizons", type=int, nargs="+", default=[1, 3, 5, 10, 15, 20, 30])
    p.add_argument("--seeds", type=int, default=3, help="seeds 1..N")
    p.add_argument("--states", type=int, default=32, help="start states (conditions) per seed")
    p.add_argument("--draws", type=int, default=64, help="candidate initialisations per state (>= 2)")
    p.add_argument("--start", choices=("reset", "visited"), default="reset", help="where start states come from")
    p.add_argument("--objective", choices=("return", "planner"), default="return")
    p.add_argument(
        "--true-prior",
        choices=("agent", "gaussian"),
        default="agent",
        help="Dream-MPC's candidates through the true model: the agent's policy, or the model's Gaussian prior",
    )
    p.add_argument(
        "--clip-grad",
        choices=("zero", "straight_through"),
        default="zero",
        help="gradient of the true model through gymnasium's speed and torque clips",
    )
    p.add_argument(
        "--imagination",
        choices=("independent", "sample", "mean"),
        default=None,
        help="a stochastic model's imagination noise (dream_mpc/noise.py) instead of the planners' own (Dreamer: "
        "independent): `mean` takes the sampling noise out of the draws",
    )
    p.add_argument("--methods", nargs="+", choices=tuple(METHODS), default=list(METHODS))
    p.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(outputs.TMP / "gradients"))
    outputs.add_flags(p, resume=False)
    args = p.parse_args(argv)
    if args.draws < 2 or args.states < 1 or args.seeds < 1 or min(args.horizons) < 1:
        raise UserError("--draws must be >= 2, and --states, --seeds and every horizon >= 1")
    if not Path(args.checkpoint).exists() and (outputs.ROOT / args.checkpoint).exists():
        args.checkpoint = str(outputs.ROOT / args.checkpoint)
    if not Path(args.checkpoint).exists():
        raise UserError(
            f"--checkpoint {args.checkpoint} not found: train one with "
            f"`python train.py task={TASK} model_size=1` and pass its models/final.pt"
        )
    return args


# ---------------------------------------------------------------------------------------------------- conditions
def action_repeat(agent):
    """The action repeat of the agent's runs on gym-pendulum (its family's, dream_mpc/envs/pendulum.py)."""
    return suite_of(TASK).action_repeat(agent.cfg)


def start_states(agent, seed, n, where):
    """n true states (theta, theta_dot) of gym-pendulum, float64 (n, 2), for this seed."""
    env = Pendulum(seed=seed, action_repeat=action_repeat(agent))
    if where == "reset":
        states = []
        for _ in range(n):
            env.reset()
            states.append(env.state)
        return np.array(states)
    visited = []  # the agent's policy (its mean) in whole episodes, every state it passes through
    while len(visited) < 4 * n:
        obs, done, t = env.reset(), False, 0
        while not done:
            visited.append(env.state)
            obs, _, done, _ = env.step(agent.act(obs, t0=t == 0, eval_mode=True).numpy())
            t += 1
    pick = np.random.default_rng(seed).choice(len(visited), n, replace=False)
    return np.array(visited)[pick]


# ---------------------------------------------------------------------------------------------------- models
def encoder(agent):
    """obs (B, 3) -> the agent's latent (B, ...): TD-MPC2's encoder, or Dreamer's filter at an episode's start
    (belief from the initial state and a zero action, then the posterior's mean on the observation)."""
    if hasattr(agent, "dreamer"):
        d = agent.dreamer

        def encode(obs):
            from dreamer.world_model import latent

            init = d.initial_state(obs.shape[0])
            h = d.rssm.belief(init["h"], init["s"], init["action"])
            mean, _ = d.rssm.posterior(h, d.encoder(d.preprocess(obs)))
            return latent(h, mean)

        return encode
    return lambda obs: agent.model.encode(obs, None)


def learned_model(agent):
    """The world model the agent's planners plan with."""
    return agent.planner.model


def true_model(agent, args):
    """The ground-truth model with the agent's action repeat; its policy prior is the agent's policy on the true
    observations (--true-prior agent)."""
    policy_fn = None
    if args.true_prior == "agent":
        encode, model = encoder(agent), learned_model(agent)

        def policy_fn(z):
            return model.policy(encode(PendulumModel.observe(z).float()))

    return PendulumModel(policy_fn=policy_fn, clip_grad=args.clip_grad, action_repeat=action_repeat(agent))


def latents(kind, agent, states):
    """The latent a planner starts from: the true state, or the agent's encoding of its observation."""
    z = torch.tensor(states, dtype=torch.float32)
    return z if kind == "true" else encoder(agent)(PendulumModel.observe(z))


def planner_for(method, model, agent, H, draws):
    cfg = agent.cfg
    block = getattr(cfg, method)
    block.horizon, block.num_candidates = H, draws
    return make_planner(method, model, cfg, agent.discount)


def gradients(planner, model, z, H, objective, imagination=None):
    """(gradients (S, K, H*A), first actions (S, K, A)): the gradient of the objective at K initial candidates for
    each of the S latents z, and those candidates' first actions. One
    imagination noise for the S latents, as one plan has: the candidates' rollout and the gradient pass see it
    (`imagination`: its mode instead of the planner's)."""
    S, K = z.shape[0], planner.num_candidates
    noise = planner.imagination_noise(S, imagination or planner.opt.imagination)
    planner.objective.noise = noise
    with torch.no_grad():
        actions = planner.initial_candidates(z, None, t0=True, reanalyze=False)  # (S*K, seq_len, A)
    actions = actions.detach().requires_grad_(True)
    z_rows = z.repeat_interleave(K, 0)
    with torch.enable_grad():
        if objective == "return":  # eq. 17's R: the undiscounted sum of the H predicted rewards
            steps = actions[:, :H].transpose(0, 1)
            zs = latent_rollout(model, z_rows, steps, noise=noise)
            J = step_rewards(model, zs, steps).sum(0)  # r(z_h, a_h) or r(z_{h+1}), as the model reads it
        else:
            J = planner.objective(model, z_rows, actions, None, planner.discount)
        (g,) = torch.autograd.grad(J.sum(), actions)
    return g[:, :H].reshape(S, K, -1), actions.detach()[:, 0].reshape(S, K, -1)


def first_action_stats(first):
    """first (S, K, A): the candidates' first actions -> {saturated: the fraction with |a| > 0.99 (a tanh policy at
    its bounds), first_action_std: the median over states of the std over draws (how much the draws differ)}."""
    f = first.double()
    return {
        "saturated": float((f.abs() > 0.99).double().mean()),
        "first_action_std": float(median(f.std(1, correction=1).mean(-1))),
    }


# ---------------------------------------------------------------------------------------------------- run
def measure(args, agent):
    rows = []
    models = {"true": true_model(agent, args), "learned": learned_model(agent)}
    jobs = [
        (s, m, k, H) for s in range(1, args.seeds + 1) for k in args.models for m in args.methods for H in args.horizons
    ]
    states = {}
    for seed, method, kind, H in tqdm(jobs, unit="setting", dynamic_ncols=True):
        if seed not in states:
            states[seed] = start_states(agent, seed, args.states, args.start)
        torch.manual_seed(1000 * seed + H)  # the same draws for a seed and horizon whatever else runs
        model = models[kind]
        planner = planner_for(method, model, agent, H, args.draws)
        with torch.no_grad():
            z = latents(kind, agent, states[seed])
        g, first = gradients(planner, model, z, H, args.objective, args.imagination)
        stats = {**gradient_stats(g), **first_action_stats(first)}
        rows.append({"seed": seed, "model": kind, "method": method, "horizon": H, **stats})
    return rows


def summarise(rows):
    """One row per (model, method, horizon): mean, std, min and max over seeds of every metric, and for the positive
    ones (magnitude, variances) the geometric mean and geometric std factor over seeds (figure 13's log axes)."""
    out = []
    keys = sorted({(r["model"], r["method"], r["horizon"]) for r in rows})
    for model, method, H in keys:
        sel = [r for r in rows if (r["model"], r["method"], r["horizon"]) == (model, method, H)]
        row = {"model": model, "method": method, "horizon": H, "seeds": len(sel)}
        for m in METRICS:
            v = np.array([r[m] for r in sel])
            row[f"{m}_mean"], row[f"{m}_std"] = float(v.mean()), float(v.std(ddof=1) if len(v) > 1 else 0.0)
            row[f"{m}_min"], row[f"{m}_max"] = float(v.min()), float(v.max())
        for m in POSITIVE:
            logs = np.log(np.array([r[m] for r in sel]))
            row[f"{m}_gmean"] = float(np.exp(logs.mean()))
            row[f"{m}_gsd"] = float(np.exp(logs.std(ddof=1)) if len(logs) > 1 else 1.0)
        out.append(row)
    return out


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# ---------------------------------------------------------------------------------------------------- figures
def model_label(model, family):
    return f"{MODELS[model]} ({FAMILIES.get(family, family)})" if model == "learned" else MODELS[model]


def plot(summary, panels, path, title, geometric, family):
    """One panel per metric against H, a line per method x model. geometric=True (positive metrics, log axis): the
    line is the geometric mean over seeds and the band spans it divided and multiplied by the geometric std factor
    exp(std of log) (always positive, nothing clipped). geometric=False (the ESNR, which the unbiased estimate
    lets go to 0 or below, and which spans orders of magnitude across seeds): the line is the mean over seeds, the
    band the range (min to max) over seeds, on a symmetric log axis (linear within +-SYMLOG_LINEAR)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    colors = {"grad": "tab:orange", "dream": "tab:blue"}
    styles = {"true": "-", "learned": "--"}
    seeds = summary[0]["seeds"]
    band = (
        f"band: geometric mean ×/÷ geometric std over {seeds} seeds"
        if geometric
        else f"band: min to max over {seeds} seeds"
    )
    for ax, (metric, ylabel) in zip(axes[0], panels):
        for model in MODELS:
            for method in METHODS:
                sel = [r for r in summary if r["model"] == model and r["method"] == method]
                if not sel:
                    continue
                H = np.array([r["horizon"] for r in sel])
                name = f"{METHODS[method]}, {model_label(model, family)}"
                if geometric:
                    centre = np.array([r[f"{metric}_gmean"] for r in sel])
                    factor = np.array([r[f"{metric}_gsd"] for r in sel])
                    low, high = centre / factor, centre * factor
                else:
                    centre = np.array([r[f"{metric}_mean"] for r in sel])
                    low = np.array([r[f"{metric}_min"] for r in sel])
                    high = np.array([r[f"{metric}_max"] for r in sel])
                ax.plot(H, centre, styles[model], marker="o", ms=3, color=colors[method], label=name)
                ax.fill_between(H, low, high, color=colors[method], alpha=0.15, lw=0)
        if geometric:
            ax.set_yscale("log")
        else:
            ax.set_yscale("symlog", linthresh=SYMLOG_LINEAR)
            ax.axhline(0.0, color="0.4", lw=0.7, ls=":")
        ax.set_xlabel("planning horizon H")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    handles.append(plt.matplotlib.patches.Patch(color="0.6", alpha=0.3))
    labels.append(band)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", ncol=2, fontsize=8, bbox_to_anchor=(0.5, 0.0))  # below the axes
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv):
    args = parse(argv)
    out = outputs.output_folder(args.out, FILES, overwrite=args.overwrite, resumable=False)
    torch.set_num_threads(args.threads)
    agent = load_agent(args.checkpoint, task=TASK, device="cpu")
    if agent.cfg.task != TASK:
        raise UserError(f"--checkpoint must be an agent trained on {TASK}, not {agent.cfg.task}")
    family, repeat = agent.cfg.agent, action_repeat(agent)
    tic = time.perf_counter()
    rows = measure(args, agent)
    wall = time.perf_counter() - tic
    summary = summarise(rows)
    write_csv(out / "gradients.csv", rows)
    write_csv(out / "summary.csv", summary)
    setup = {k: v for k, v in vars(args).items() if k not in ("overwrite",)}
    setup.update(agent=family, action_repeat=repeat, discount=float(agent.discount))
    setup["planners"] = {  # the family's options these planners ran with (horizon and candidates: per row, --draws)
        m: {k: v for k, v in vars(getattr(agent.cfg, m)).items() if k not in ("horizon", "num_candidates")}
        for m in args.methods
    }
    machine = {"measure_wall_s": round(wall, 1), "cpus": os.cpu_count(), "load_average": os.getloadavg()[0]}
    (out / "summary.json").write_text(json.dumps({"setup": setup, "machine": machine, "summary": summary}, indent=1))
    what = (
        f"{FAMILIES.get(family, family)} agent, action repeat {repeat}; {args.states} {args.start} states x "
        f"{args.draws} draws" + (f", imagination {args.imagination}" if args.imagination else "")
    )
    plot(
        summary,
        [
            ("norm", "gradient magnitude (mean L2 norm)"),
            ("var_within", "variance over the planner's draws (trace)"),
            ("var_total", "variance over draws and states (trace)"),
        ],
        out / "fig13_gradients.png",
        f"Planner gradients on Pendulum-v1 ({what})",
        geometric=True,
        family=family,
    )
    plot(
        summary,
        [("esnr", "ESNR (eq. 17: mean over states)"), ("esnr_median", "median over states of the SNR")],
        out / "fig14_esnr.png",
        f"ESNR of planner gradients ({what}; unbiased |E g|², symlog axis)",
        geometric=False,
        family=family,
    )
    for r in summary:
        print(
            f"{r['model']:8s} {r['method']:6s} H={r['horizon']:3d}  |g| {r['norm_mean']:.3g} ± {r['norm_std']:.2g}  "
            f"var {r['var_within_mean']:.3g}  ESNR {r['esnr_mean']:.3g} ± {r['esnr_std']:.2g}"
        )
    print(f"wrote {', '.join(FILES)} to {out}")


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
