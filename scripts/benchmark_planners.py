"""Median ms per planning step (batch 1, eval mode) of every planner on the same model.

    python scripts/benchmark_planners.py --model-size 5 --device cpu [--threads 2] [--json out.json] [--plot out.png]
    python scripts/benchmark_planners.py --model-size 5 --from-json out.json   # re-plot a run: out.png

GFLOP are the step's matrix products (PyTorch's FLOP counter); the floor is their time at the dense product rate
measured in the same run (in the planning dtype). "MB read by products" sums the larger operand of each product:
for few-row planners (dream, hybrid, policy) the weights, whose traffic bounds those products.
"""
import argparse
import json

import torch

from bench_utils import (build_agent, count_gflop, floor_ms, markdown_table, matmul_peak_gflops, median_ms,
                         weight_megabytes)

PLANNERS = ("policy", "mppi", "dream", "grad", "hybrid")


def model_evaluations(cfg, name):
    """World-model (dynamics + reward) evaluations per step: candidates x iterations x horizon (+ rollouts)."""
    if name == "policy":
        return 0
    if name == "mppi":
        return cfg.num_samples * cfg.iterations * cfg.horizon
    block = getattr(cfg, name)
    # the policy rollout (dream, hybrid), one forward+backward per iteration, one scoring forward
    rollout = block.horizon * block.num_candidates * (name != "grad")
    return rollout + block.num_candidates * block.horizon * (block.iterations + 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-size", type=int, default=5, choices=(1, 5, 19, 48, 317))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--planners", nargs="+", default=list(PLANNERS), choices=PLANNERS)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. fused=false")
    p.add_argument("--json", help="write {planner: {ms_per_step, ...}} here")
    p.add_argument("--plot", help="save a bar chart of ms/step against the floor here (.png)")
    p.add_argument("--from-json", help="plot the results a --json run wrote, without measuring again")
    args = p.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            results = json.load(f)
        plot(results, args.plot or args.from_json.replace(".json", ".png"),
             f"model size {args.model_size}, {args.device}, {args.threads} threads ({args.from_json})")
        return
    torch.set_num_threads(args.threads)
    agent = build_agent(args.model_size, args.device, overrides=args.set)
    obs = torch.randn(agent.cfg.obs_shape["state"][0])
    results = {}
    dtype = agent.cfg.get("planning_dtype", "float32")
    peak = matmul_peak_gflops(args.device, dtype)
    for name in args.planners:
        agent.set_planner(name)
        agent.act(obs, t0=True, eval_mode=True)
        repeats = max(5, args.repeats // 5) if name in ("mppi", "grad") else args.repeats
        ms = median_ms(lambda: agent.act(obs, t0=False, eval_mode=True), args.device, warmup=3, repeats=repeats)
        gflop = count_gflop(lambda: agent.act(obs, t0=False, eval_mode=True))
        results[name] = {"ms_per_step": ms, "model_evaluations": model_evaluations(agent.cfg, name),
                         "gflop_per_step": gflop, "floor_ms": floor_ms(gflop, peak),
                         "product_mb_per_step": weight_megabytes(lambda: agent.act(obs, t0=False, eval_mode=True))}
    base = results.get("mppi", {}).get("ms_per_step")
    rows = [[n, f"{r['ms_per_step']:.2f}", r["model_evaluations"], f"{r['gflop_per_step']:.3f}",
             f"{r['floor_ms']:.2f}", f"{r['product_mb_per_step']:.1f}",
             f"{base / r['ms_per_step']:.0f}x" if base else "-"] for n, r in results.items()]
    print(f"model size {args.model_size}, {agent.model.total_params:,} parameters, device {args.device}, "
          f"{args.threads} threads, batch 1, median of {args.repeats} steps; products at up to {peak:.0f} GFLOP/s "
          f"({dtype} 1024x1024) now: 'floor' is the time of a step's products at that rate")
    print(markdown_table(["planner", "ms / step", "model evals / step", "GFLOP / step", "floor ms",
                          "MB read by products / step", "speed-up vs mppi"], rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    if args.plot:
        plot(results, args.plot, f"model size {args.model_size}, {args.device}, {args.threads} threads, {dtype}; "
                                 f"products at {peak:.0f} GFLOP/s")


def plot(results, path, title):
    """Measured ms per step (bars) against the floor, the products alone at the machine's rate (black ticks)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(results)
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 3.6))
    ax.bar(names, [results[n]["ms_per_step"] for n in names], color="tab:blue", label="measured")
    ax.scatter(names, [max(results[n]["floor_ms"], 1e-3) for n in names], marker="_", s=900, color="black",
               zorder=3, label="floor (products at peak rate)")
    for i, n in enumerate(names):
        ax.annotate(f"{results[n]['ms_per_step']:.3g}", (i, results[n]["ms_per_step"]), ha="center", va="bottom",
                    fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(top=30 * max(r["ms_per_step"] for r in results.values()))  # room for the legend
    ax.set_ylabel("ms per planning step (batch 1)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left", markerscale=0.3, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
