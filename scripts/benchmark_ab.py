"""Two configurations, A and B, timed in interleaved rounds in one process: for effects of a few per cent on a
noisy machine, where two separate benchmark runs differ by more than the effect.

    python scripts/benchmark_ab.py --a compile=false --b compile=true --what mppi dream update --sizes 1 5

mppi / dream / policy: median ms of one eval-mode act at batch 1; update: updates/s at batch 256, horizon 3
(synthetic data). "first calls" is the time of the warm-up calls (compilation, when B compiles). --json writes
{"meta": the run's record (bench_utils.provenance), "a": [...], "b": [...], "rows": [{what, model_size, a_ms, b_ms,
b_over_a, rounds_a_ms, rounds_b_ms, first_a_s, first_b_s}]} (ms per call; an update's rate is 1000 / ms).
"""

import argparse
import json
import statistics
import time

import torch
from bench_utils import (
    apply_process_settings,
    build_agent,
    finished,
    markdown_table,
    median_ms,
    provenance,
    synthetic_batch,
)
from outputs import output_file

from dream_mpc.errors import UserError
from dream_mpc.registry import planners

PLANNERS = tuple(planners.names())  # every registered planner (plug-ins included)


def timed_call(agent, what):
    """The call to time and its warm-up: act with a planner, or one update. Each call first applies its agent's
    process-wide settings (e.g. `fused`), so A and B each run with their own."""

    def setup():
        apply_process_settings(agent.cfg)

    if what == "update":
        batch = synthetic_batch(agent)
        return (lambda: (setup(), agent._update(*batch)), lambda: (setup(), [agent._update(*batch) for _ in range(2)]))
    obs = torch.randn(agent.cfg.obs_shape["state"][0])
    return (
        lambda: (setup(), agent.act(obs, eval_mode=True)),
        lambda: (setup(), [agent.act(obs, t0=i == 0, eval_mode=True) for i in range(3)]),
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", nargs="*", default=[], metavar="KEY=VALUE", help="overrides of configuration A")
    p.add_argument("--b", nargs="*", default=[], metavar="KEY=VALUE", help="overrides of configuration B")
    p.add_argument("--what", nargs="+", default=["mppi", "dream", "update"], choices=[*PLANNERS, "update"])
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 5])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the medians and every round's time here (an existing file needs --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    args = p.parse_args(argv)
    try:  # before measuring: an existing (possibly tracked) file is not replaced by accident
        output_file(args.json, args.overwrite)
    except UserError as err:
        p.exit(2, f"error: {err}\n")
    if any(o.startswith("keep_freed_memory=true") for o in args.a + args.b):
        print(
            "note: keep_freed_memory is one-way in a process: once one side turns it on, both sides keep freed "
            "memory; compare it with two runs of scripts/benchmark.py instead"
        )
    torch.set_num_threads(args.threads)
    start, meta = time.perf_counter(), provenance(args.threads, argv=None if argv is None else [__file__, *argv])
    rows, records = [], []
    for size in args.sizes:
        for what in args.what:
            calls, first = {}, {}
            for label, overrides in (("A", args.a), ("B", args.b)):
                agent = build_agent(size, planner="mppi" if what == "update" else what, overrides=overrides)
                call, warm_up = timed_call(agent, what)
                tic = time.perf_counter()
                warm_up()
                first[label], calls[label] = time.perf_counter() - tic, call
            times = {label: [] for label in calls}
            for _ in range(args.rounds):
                for label, call in calls.items():
                    times[label].append(
                        median_ms(call, warmup=1, repeats=5 if what in ("mppi", "grad", "update") else 30)
                    )
            med = {label: statistics.median(t) for label, t in times.items()}
            fmt = (lambda ms: f"{1e3 / ms:.2f} /s") if what == "update" else (lambda ms: f"{ms:.3g} ms")
            rows.append(
                [
                    what,
                    size,
                    fmt(med["A"]),
                    fmt(med["B"]),
                    f"{med['B'] / med['A']:.2f}",
                    f"{first['A']:.1f} s / {first['B']:.1f} s",
                ]
            )
            records.append(
                {
                    "what": what,
                    "model_size": size,
                    "a_ms": med["A"],
                    "b_ms": med["B"],
                    "b_over_a": med["B"] / med["A"],
                    "rounds_a_ms": times["A"],
                    "rounds_b_ms": times["B"],
                    "first_a_s": first["A"],
                    "first_b_s": first["B"],
                }
            )
            print(rows[-1], flush=True)
    print(
        f"A: {' '.join(args.a) or 'defaults'}; B: {' '.join(args.b) or 'defaults'}; {args.threads} threads, "
        f"median over {args.rounds} interleaved rounds"
    )
    print(markdown_table(["what", "model size", "A", "B", "B time / A time", "first calls A / B"], rows))
    if args.json:
        meta["rounds"] = args.rounds
        with open(args.json, "w") as f:
            json.dump({"meta": finished(meta, start), "a": args.a, "b": args.b, "rows": records}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
