"""Planning latency (tables 2 and 15) and how it scales, in one command:

    python scripts/latency.py --out results/latency [--device cpu] [--threads 2] [--repeats 3]
        [--action-dims 1 6 61] [--envs 1 8 64] [--model-sizes 1 5] [--table-model-size 5] [--planners ...]

1. ms per planning step of every registered planner (randomly initialised TD-MPC2 model of --table-model-size on
   Acrobot Swingup's dims, obs 6 / action 1, batch 1, eval mode): mean ± std over --repeats timed steps;
2. curves of ms per step for MPPI and Dream-MPC against the action dimension (1..61), the number of environments
   planned at once (batch 1..64) and the model size (1..48), each varied around (model size 1, action dim 6,
   batch 1), with the world-model evaluations per step beside each point.
Writes <out>/latency.json (read by `scripts/report.py --latency`), <out>/latency.md and <out>/latency.png.
The defaults are small for a laptop CPU (few points, few repeats); pass more points and --repeats for the paper.
Timing needs a quiet machine: numbers on a shared CPU are upper bounds.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dream_mpc import reproducible_products

reproducible_products()  # the same bits at any CPU thread count (before MKL's first product)
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from bench_utils import build_agent, sync  # noqa: E402
from benchmark_planners import model_evaluations  # noqa: E402

from dream_mpc.errors import run_cli  # noqa: E402

CURVE_PLANNERS = ("mppi", "dream")


def time_plan(agent, batch, device, repeats, warmup=1):
    """ms per planning step (planner.plan on a batch of latent states), mean and std over `repeats` steps."""
    obs = torch.randn(batch, agent.cfg.obs_shape["state"][0], device=device)
    with torch.no_grad():
        z = agent.model.encode(obs, None)
    planner = agent.planner
    planner.reset()
    planner.plan(z, t0=True, eval_mode=True)
    for _ in range(warmup):
        planner.plan(z, t0=False, eval_mode=True)
    times = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        planner.plan(z, t0=False, eval_mode=True)
        sync(device)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.mean(times), (statistics.pstdev(times) if len(times) > 1 else 0.0)


def measure(planner, model_size, action_dim, batch, device, repeats, obs_dim=24):
    agent = build_agent(model_size, device, planner=planner, obs_dim=obs_dim, action_dim=action_dim)
    ms, std = time_plan(agent, batch, device, repeats)
    return {"ms": ms, "std": std, "evals": model_evaluations(agent.cfg, planner) * batch}


def run(
    out,
    device="cpu",
    threads=2,
    repeats=3,
    action_dims=(1, 6, 61),
    envs=(1, 8, 64),
    model_sizes=(1, 5),
    table_model_size=5,
    planners=None,
    log=print,
):
    from dream_mpc.registry import planners as registry

    torch.set_num_threads(threads)
    planners = list(planners or registry.names())
    table = {}
    for name in planners:
        r = measure(name, table_model_size, 1, 1, device, repeats, obs_dim=6)
        table[name] = r
        log(f"table: {name}: {r['ms']:.2f} ± {r['std']:.2f} ms/step, {r['evals']} model evaluations")
    curves = {"action dim": {}, "envs planned at once": {}, "model size": {}}
    for name in [p for p in CURVE_PLANNERS if p in registry.names()]:
        for a in action_dims:
            curves["action dim"].setdefault(name, []).append({"x": a, **measure(name, 1, a, 1, device, repeats)})
        for b in envs:
            curves["envs planned at once"].setdefault(name, []).append(
                {"x": b, **measure(name, 1, 6, b, device, repeats)}
            )
        for s in model_sizes:
            curves["model size"].setdefault(name, []).append({"x": s, **measure(name, s, 6, 1, device, repeats)})
        log(f"curves: {name} done")
    lines = [
        f"Planning ms per step ({device}, {threads} threads, model size {table_model_size}, obs 6 / action 1 "
        f"(Acrobot Swingup), batch 1; mean ± std over {repeats} steps):",
        "",
        "| planner | ms / step | model evaluations / step |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | {r['ms']:.2f} ± {r['std']:.2f} | {r['evals']} |" for n, r in table.items()]
    data = {
        "device": device,
        "threads": threads,
        "repeats": repeats,
        "table": table,
        "curves": curves,
        "table_md": "\n".join(lines),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latency.json").write_text(json.dumps(data, indent=1))
    (out / "latency.md").write_text(data["table_md"] + "\n\n![latency](latency.png)\n")
    import report

    report.latency_plot(data, report.Writer(out, overwrite=True))
    log(data["table_md"])
    log(f"wrote {out / 'latency.json'}, {out / 'latency.md'}, {out / 'latency.png'}")
    return data


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="logs/latency")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--action-dims", type=int, nargs="+", default=[1, 6, 61])
    p.add_argument("--envs", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--model-sizes", type=int, nargs="+", default=[1, 5], choices=(1, 5, 19, 48, 317))
    p.add_argument("--table-model-size", type=int, default=5, choices=(1, 5, 19, 48, 317))
    p.add_argument("--planners", nargs="+", default=None, help="for the table (default: every registered planner)")
    a = p.parse_args(argv)
    return run(
        a.out, a.device, a.threads, a.repeats, a.action_dims, a.envs, a.model_sizes, a.table_model_size, a.planners
    )


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
