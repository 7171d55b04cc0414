"""Median ms per planning step (batch 1, eval mode) of every planner on the same model.

    python scripts/benchmark_planners.py --model-size 5 --device cpu [--threads 2] [--json out.json] [--plot out.png]
    python scripts/benchmark_planners.py --model-size 5 --from-json out.json   # re-plot a run: out.png
    python scripts/benchmark_planners.py --model-size 1 --busy [--wait-policy default passive] [--busy-threads 1 2 auto]
        [--rounds 5]   # quiet vs one core taken by a CPU hog (DESIGN: a busy machine slows planning by <= 1.5x)

GFLOP are the step's matrix products (PyTorch's FLOP counter); the floor is their time at the dense product rate
measured in the same run (in the planning dtype). "MB read by products" sums the larger operand of each product:
for few-row planners (dream, hybrid, policy) the weights, whose traffic bounds those products. --json writes
{"meta": the run's record (bench_utils.provenance: command, date, commit, torch, CPU, threads, load average; the
model, planning dtype and product rate), "planners": {planner: {ms_per_step, ...}}} ("samples" instead of "planners"
with --busy: every timed step's ms, keyed "wait policy|threads|quiet or busy|planner").
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

if "--worker" in sys.argv:  # a --busy worker: its OpenMP wait policy is set before torch loads OpenMP
    _policy = sys.argv[sys.argv.index("--worker") + 1]
    os.environ.pop("GOMP_SPINCOUNT", None)
    if _policy in ("default", "spin"):  # libgomp's own: spin a while (GOMP_SPINCOUNT 300000), then sleep
        os.environ.pop("OMP_WAIT_POLICY", None)
        if _policy == "spin":  # a short spin (~10-30 us), then sleep
            os.environ["GOMP_SPINCOUNT"] = "10000"
    else:
        os.environ["OMP_WAIT_POLICY"] = _policy

import torch  # noqa: E402
from bench_utils import (  # noqa: E402
    build_agent,
    count_gflop,
    finished,
    floor_ms,
    markdown_table,
    matmul_peak_gflops,
    median_ms,
    provenance,
    weight_megabytes,
)
from outputs import output_file  # noqa: E402

from dream_mpc.errors import UserError  # noqa: E402
from dream_mpc.registry import planners  # noqa: E402

PLANNERS = tuple(planners.names())  # every registered planner (plug-ins included)
SLOW = 1000  # model evaluations per step from which a planner is timed on a fifth of --repeats (MPPI, Grad-MPC, CEM)


def model_evaluations(cfg, name):
    """World-model (dynamics + reward) evaluations per step, as the planner declares them (`Options.work`: e.g.
    candidates x horizon x (iterations + rollout + scoring)); 0 for a planner that declares none (the policy)."""
    cls = planners.get(name)
    work = getattr(cls.Options, "work", None)
    return work(cls.declared_options(cfg)) if work is not None else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-size", type=int, default=5, choices=(1, 5, 19, 48, 317))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--repeats",
        type=int,
        default=30,
        help=f"timed steps per planner (a fifth, at least 5, for planners of >= {SLOW:,} model evaluations a step)",
    )
    p.add_argument("--planners", nargs="+", default=list(PLANNERS), choices=PLANNERS)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. fused=false")
    p.add_argument("--json", help="write {planner: {ms_per_step, ...}} here")
    p.add_argument("--plot", help="save a bar chart of ms/step against the floor here (.png)")
    p.add_argument("--from-json", help="plot the results a --json run wrote, without measuring again")
    p.add_argument("--overwrite", action="store_true", help="replace --json / --plot files that exist")
    p.add_argument("--busy", action="store_true", help="quiet vs a CPU hog pinned to one core, in interleaved rounds")
    p.add_argument(
        "--wait-policy",
        nargs="+",
        default=["default"],
        choices=("default", "active", "passive", "spin"),
        help="--busy: OMP_WAIT_POLICY of each measured configuration (one worker process each; default: "
        "unset, libgomp's spin-then-sleep; spin: unset with GOMP_SPINCOUNT=10000)",
    )
    p.add_argument(
        "--busy-threads",
        nargs="+",
        default=["1", "2", "auto"],
        help="--busy: thread counts to compare; auto: every core, each step at the fastest count (plan_threads=0)",
    )
    p.add_argument("--rounds", type=int, default=5, help="--busy: interleaved rounds (medians are reported)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return busy_worker(args)
    try:  # before measuring: an existing (possibly tracked) file is not replaced by accident
        output_file(args.json, args.overwrite)
        output_file(
            args.plot or (args.from_json and args.from_json.replace(".json", ".png")), args.overwrite, flag="--plot"
        )
    except UserError as err:
        p.exit(2, f"error: {err}\n")
    if args.busy:
        return busy_benchmark(args)
    if args.from_json:
        with open(args.from_json) as f:
            data = json.load(f)
        results = data.get("planners", data)  # files written before the "meta" record hold the planners alone
        meta = data.get("meta", {})
        title = f"model size {meta.get('model_size', args.model_size)}, {meta.get('device', args.device)}, "
        title += f"{meta.get('threads', args.threads)} threads"
        if "planning_dtype" in meta:  # the run's own record
            title += f", {meta['planning_dtype']}; products at {meta['matmul_peak_gflops']:.0f} GFLOP/s"
        plot(results, args.plot or args.from_json.replace(".json", ".png"), f"{title} ({args.from_json})")
        return
    torch.set_num_threads(args.threads)
    start, meta = time.perf_counter(), provenance(args.threads, args.device)
    agent = build_agent(args.model_size, args.device, overrides=args.set)
    obs = torch.randn(agent.cfg.obs_shape["state"][0])
    results = {}
    dtype = agent.cfg.get("planning_dtype", "float32")
    peak = matmul_peak_gflops(args.device, dtype)
    for name in args.planners:
        agent.set_planner(name)
        agent.act(obs, t0=True, eval_mode=True)
        evaluations = model_evaluations(agent.cfg, name)
        repeats = max(5, args.repeats // 5) if evaluations >= SLOW else args.repeats
        ms = median_ms(lambda: agent.act(obs, t0=False, eval_mode=True), args.device, warmup=3, repeats=repeats)
        gflop = count_gflop(lambda: agent.act(obs, t0=False, eval_mode=True))
        results[name] = {
            "ms_per_step": ms,
            "model_evaluations": evaluations,
            "repeats": repeats,
            "gflop_per_step": gflop,
            "floor_ms": floor_ms(gflop, peak),
            "product_mb_per_step": weight_megabytes(lambda: agent.act(obs, t0=False, eval_mode=True)),
        }
    base = results.get("mppi", {}).get("ms_per_step")
    rows = [
        [
            n,
            f"{r['ms_per_step']:.2f}",
            r["model_evaluations"],
            f"{r['gflop_per_step']:.3f}",
            f"{r['floor_ms']:.2f}",
            f"{r['product_mb_per_step']:.1f}",
            f"{base / r['ms_per_step']:.0f}x" if base else "-",
        ]
        for n, r in results.items()
    ]
    print(
        f"model size {args.model_size}, {agent.model.total_params:,} parameters, device {args.device}, "
        f"{args.threads} threads, batch 1, median of {args.repeats} steps (of {max(5, args.repeats // 5)} for slow "
        f"planners); products at up to {peak:.0f} GFLOP/s ({dtype} 1024x1024) now: 'floor' is the time of a step's "
        "products at that rate"
    )
    print(
        markdown_table(
            [
                "planner",
                "ms / step",
                "model evals / step",
                "GFLOP / step",
                "floor ms",
                "MB read by products / step",
                "speed-up vs mppi",
            ],
            rows,
        )
    )
    if args.json:
        meta.update(
            model_size=args.model_size,
            parameters=agent.model.total_params,
            planning_dtype=dtype,
            matmul_peak_gflops=peak,
            repeats=args.repeats,
        )
        with open(args.json, "w") as f:
            json.dump({"meta": finished(meta, start), "planners": results}, f, indent=2)
    if args.plot:
        plot(
            results,
            args.plot,
            f"model size {args.model_size}, {args.device}, {args.threads} threads, {dtype}; "
            f"products at {peak:.0f} GFLOP/s",
        )


def busy_worker(args):
    """--busy's measuring process: builds one agent per planner once, then answers each line `measure` on stdin with
    one JSON line {planner: [ms of each step]} (so the parent can start and stop the hog between measurements).
    The agents live as long as the process, so an adaptive thread choice carries over from quiet to busy and back,
    as in a long run on a machine whose load comes and goes; every timed step counts, its tries included."""
    adaptive = args.threads == 0
    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    overrides = ["plan_threads=0"] * adaptive + args.set
    agents = {name: build_agent(args.model_size, "cpu", planner=name, overrides=overrides) for name in args.planners}
    obs = torch.randn(next(iter(agents.values())).cfg.obs_shape["state"][0])
    for agent in agents.values():  # warm-up: allocator, kernels
        agent.act(obs, t0=True, eval_mode=True)
        median_ms(lambda: agent.act(obs, t0=False, eval_mode=True), warmup=2, repeats=1)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "measure":
            break
        out = {}
        for name, agent in agents.items():
            agent.act(obs, t0=True, eval_mode=True)  # an episode's first step (not timed)
            repeats = max(5, args.repeats // 3) if name in ("mppi", "grad") else args.repeats
            out[name] = [step_ms(lambda: agent.act(obs, t0=False, eval_mode=True)) for _ in range(repeats)]
        print(json.dumps(out), flush=True)


def step_ms(fn):
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def start_hog(core):
    """A CPU hog: one process spinning on `core` (as another user's job would)."""
    code = f"import os\nos.sched_setaffinity(0, {{{core}}})\nwhile True:\n    pass\n"
    hog = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.5)  # pinned and spinning before the measurement starts
    return hog


def busy_benchmark(args):
    """Median ms per planning step, quiet and with one core taken by a hog, for each (wait policy, threads): every
    configuration is one worker process; rounds alternate quiet/busy and rotate the workers, so slow drifts in the
    machine's other load hit every cell alike."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count()))
    planners = [n for n in args.planners if n in ("mppi", "dream")] or args.planners
    configs = [(policy, threads) for policy in args.wait_policy for threads in args.busy_threads]
    bad = [t for t in args.busy_threads if t != "auto" and not (t.isdigit() and int(t) > 0)]
    if bad:
        raise SystemExit(f"error: --busy-threads takes positive integers or auto, not {', '.join(bad)}")
    script = str(Path(__file__).resolve())
    start, meta = time.perf_counter(), provenance(args.busy_threads, "cpu")
    workers = {}
    for policy, threads in configs:
        cmd = [
            sys.executable,
            script,
            "--worker",
            policy,
            "--model-size",
            str(args.model_size),
            "--threads",
            "0" if threads == "auto" else threads,
            "--repeats",
            str(args.repeats),
            "--planners",
            *planners,
            "--set",
            *args.set,
        ]
        workers[policy, threads] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for w in workers.values():
        if w.stdout.readline().strip() != "ready":
            raise SystemExit("error: a --busy worker did not start (run it alone to see why)")
    samples = {}  # (policy, threads, state, planner) -> [ms, ...]
    print(
        f"model size {args.model_size}, batch 1, cpu, {len(cores)} cores; hog pinned to core {cores[-1]}; "
        f"{args.rounds} rounds x {len(configs)} configurations x quiet/busy",
        flush=True,
    )
    try:
        for r in range(args.rounds):
            for state in ("quiet", "busy") if r % 2 == 0 else ("busy", "quiet"):
                hog = start_hog(cores[-1]) if state == "busy" else None
                try:
                    for cfg in configs[r % len(configs) :] + configs[: r % len(configs)]:
                        workers[cfg].stdin.write("measure\n")
                        workers[cfg].stdin.flush()
                        for name, ms in json.loads(workers[cfg].stdout.readline()).items():
                            samples.setdefault((*cfg, state, name), []).extend(ms)
                finally:
                    if hog is not None:
                        hog.kill()
                        hog.wait()
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    finally:
        for w in workers.values():
            w.stdin.close()
            w.wait()
    med = {k: statistics.median(v) for k, v in samples.items()}
    mean = {k: statistics.fmean(v) for k, v in samples.items()}
    ref = (args.wait_policy[0], "2" if "2" in args.busy_threads else args.busy_threads[-1])  # the old default
    rows = []
    for name in planners:
        base = med[(*ref, "quiet", name)]
        for policy, threads in configs:
            q, b = (policy, threads, "quiet", name), (policy, threads, "busy", name)
            rows.append(
                [name, policy, threads]
                + [f"{med[q]:.1f}", f"{med[b]:.1f}", f"{med[b] / med[q]:.2f}x", f"{med[q] / base:.2f}x"]
                + [
                    f"{mean[q]:.1f}",
                    f"{mean[b]:.1f}",
                    f"{mean[b] / mean[q]:.2f}x",
                    f"{mean[q] / mean[(*ref, 'quiet', name)]:.2f}x",
                ]
            )
    ref_name = f"quiet({ref[0]}, {ref[1]} thr)"
    print(
        markdown_table(
            ["planner", "OMP_WAIT_POLICY", "threads"]
            + ["median quiet ms", "median busy ms", "busy / quiet", f"quiet / {ref_name}"]
            + ["mean quiet ms", "mean busy ms", "busy / quiet", f"quiet / {ref_name}"],
            rows,
        )
    )
    if args.json:
        meta.update(model_size=args.model_size, hog_core=cores[-1], rounds=args.rounds, repeats=args.repeats)
        with open(args.json, "w") as f:
            keyed = {"|".join(map(str, k)): v for k, v in samples.items()}
            json.dump({"meta": finished(meta, start), "samples": keyed}, f, indent=2)
    return med


def plot(results, path, title):
    """Measured ms per step (bars) against the floor, the products alone at the machine's rate (black ticks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 3.6))
    ax.bar(names, [results[n]["ms_per_step"] for n in names], color="tab:blue", label="measured")
    positive = [n for n in names if results[n]["floor_ms"] > 0]  # a planner without products has no floor to draw
    ax.scatter(
        positive,
        [results[n]["floor_ms"] for n in positive],
        marker="_",
        s=900,
        color="black",
        zorder=3,
        label="floor (products at peak rate)",
    )
    for i, n in enumerate(names):
        count = f" (n={results[n]['repeats']})" if "repeats" in results[n] else ""  # timed steps behind the median
        ax.annotate(
            f"{results[n]['ms_per_step']:.3g}{count}",
            (i, results[n]["ms_per_step"]),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_yscale("log")
    ax.set_ylim(top=30 * max(r["ms_per_step"] for r in results.values()))  # room for the legend
    ax.set_ylabel("median ms per planning step\n(batch 1; n timed steps)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left", markerscale=0.3, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
