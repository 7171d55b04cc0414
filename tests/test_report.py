"""The record format (dream_mpc/evaluation/records.py), the statistics (dream_mpc/evaluation/aggregates.py) and
scripts/report.py, on records written by the tests: aggregates equal rliable's own functions, intervals resample
training seeds (not episodes), tables mark missing cells, published baselines import, tracked results are never
overwritten."""

import csv
import json
import sys

import numpy as np
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))

from dream_mpc.evaluation import aggregates as agg  # noqa: E402
from dream_mpc.evaluation import records  # noqa: E402

TASKS = ("cartpole-swingup", "cartpole-balance", "walker-walk")


def write_records(
    folder,
    score,
    planners=(("policy", {}), ("dream", {"horizon": 3})),
    train_seeds=(1, 2, 3),
    eval_seeds=(1, 2),
    episodes=2,
    tasks=TASKS,
    suite="dmcontrol",
    skip=(),
):
    """One file per job, as evaluate.py writes them; score(task, planner, train_seed, seed, episode) -> return."""
    for task in tasks:
        for planner, opts in planners:
            for ts in train_seeds:
                for seed in eval_seeds:
                    job = dict(
                        task=task,
                        checkpoint=f"ck/{task}-{ts}.pt",
                        agent="tdmpc2",
                        train_seed=ts,
                        planner=planner,
                        options=records.options_json(opts),
                        eval_noise=False,
                        seed=seed,
                    )
                    for ep in range(episodes):
                        if (task, planner, ts) in skip:
                            continue
                        r = score(task, planner, ts, seed, ep)
                        row = dict(
                            job,
                            suite=suite,
                            episode=ep,
                            score=r / 1000,
                            length=500,
                            time=0.0,
                            ms_per_step=1.0 + (planner == "dream"),
                            nonfinite=0,
                            success=float(r > 500),
                            success_any=None,
                        )
                        row["return"] = r
                        records.append_row(records.job_file(folder, job), row)


def noisy(task, planner, ts, seed, ep):
    rng = np.random.default_rng(hash((task, planner, ts, seed, ep)) % 2**32)
    return 400 + 100 * (planner == "dream") + 50 * ts + TASKS.index(task) * 30 + rng.normal(0, 30)


def test_rows_are_appended_whole_a_torn_line_is_skipped_and_repaired(tmp_path):
    row = dict(task="t", checkpoint="c.pt", planner="p", options="{}", eval_noise=False, seed=1)
    path = records.job_file(tmp_path, row)
    records.append_row(path, dict(row, episode=0, **{"return": 1.0}))
    with open(path, "ab") as f:
        f.write(b'{"task":"t","checkpoint":"c.pt","epis')  # a writer killed mid-line
    assert [r["episode"] for r in records.read_rows(path)] == [0]  # the torn line is not a row
    records.append_row(path, dict(row, episode=1, **{"return": 2.0}))
    assert [r["episode"] for r in records.read_rows(path)] == [0, 1]
    assert path.read_bytes().count(b"\n") == 2  # the torn tail was cut, the new row starts on its own line
    assert records.done_episodes(tmp_path, row) == {0, 1}


def test_collector_merges_folders_one_row_per_episode_identity(tmp_path):
    write_records(tmp_path / "a", noisy, train_seeds=(1,))
    write_records(tmp_path / "b", noisy, train_seeds=(1, 2))  # seed 1 again (a rerun elsewhere) + seed 2
    rows = records.collect([tmp_path / "a", tmp_path / "b"])
    assert len(rows) == len(TASKS) * 2 * 2 * 2 * 2  # tasks x planners x train seeds x eval seeds x episodes
    assert len({records.episode_key(r) for r in rows}) == len(rows)


def test_report_aggregates_equal_rliable_on_the_same_scores(tmp_path):
    import report
    from rliable import library as rly
    from rliable import metrics

    write_records(tmp_path / "res", noisy)
    out = report.build([tmp_path / "res"], tmp_path / "rep", reps=300, baseline="policy (tdmpc2)")
    # the score matrix: runs (training seeds) x tasks, each cell the mean normalized score of that run's episodes
    m = out["matrices"]["dream (tdmpc2)"]
    assert m.shape == (3, 3)
    expect = np.array(
        [
            [np.mean([noisy(t, "dream", ts, s, e) / 1000 for s in (1, 2) for e in (0, 1)]) for t in out["tasks"]]
            for ts in (1, 2, 3)
        ]
    )
    assert m == pytest.approx(expect)
    for name, x in out["matrices"].items():
        assert out["points"][name] == pytest.approx(
            [
                metrics.aggregate_median(x),
                metrics.aggregate_iqm(x),
                metrics.aggregate_mean(x),
                metrics.aggregate_optimality_gap(x),
            ]
        )
    np.random.seed(0)
    _, cis = rly.get_interval_estimates(out["matrices"], agg.aggregate_func, reps=300)
    for name in cis:
        assert out["cis"][name] == pytest.approx(cis[name])
    np.random.seed(0)
    taus = out["taus"]
    profiles, _ = rly.create_performance_profile(out["matrices"], taus, reps=300)
    assert out["profiles"]["dream (tdmpc2)"] == pytest.approx(profiles["dream (tdmpc2)"])
    poi, _ = out["poi"]
    key = "dream (tdmpc2),policy (tdmpc2)"
    assert float(np.ravel(poi[key])[0]) == pytest.approx(
        metrics.probability_of_improvement(out["matrices"]["dream (tdmpc2)"], out["matrices"]["policy (tdmpc2)"])
    )
    # the files of the report
    for name in (
        "report.md",
        "figure2-intervals.png",
        "figure2-profiles.png",
        "aggregates.csv",
        "planning-ms.png",
        "table-dmcontrol.md",
        "table-dmcontrol.csv",
        "table-dmcontrol.tex",
        "episodes.csv",
    ):
        assert (tmp_path / "rep" / name).stat().st_size > 0, name
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "same initial state" in text and "![aggregate intervals](figure2-intervals.png)" in text


def test_intervals_resample_training_seeds_not_episodes(tmp_path):
    """Every training seed has the same mean on every task, while its episodes vary widely: resampling runs gives
    a zero-width interval of the mean; resampling episodes would not. Seeds that differ widen it."""

    def same_seed_means(task, planner, ts, seed, ep):
        return 500 + (300 if (seed + ep) % 2 else -300)  # each run's mean is 500, episodes 200 or 800

    write_records(tmp_path / "flat", same_seed_means, planners=(("policy", {}),))
    df = records.to_frame(records.collect([tmp_path / "flat"]))
    matrices, _, _ = agg.score_matrices(df)
    points, cis = agg.aggregate_intervals(matrices, reps=300)
    assert cis["policy (tdmpc2)"][:, 2] == pytest.approx([0.5, 0.5])  # the mean's CI: a point
    paired = agg.paired_differences(df.assign(planner="x"), "x (tdmpc2)")  # zero by construction
    assert all(v.as_tuple() == (0.0, 0.0, 0.0) and v.runs == 3 for v in paired.values())

    def seeds_differ(task, planner, ts, seed, ep):
        return 300 + 200 * ts

    write_records(tmp_path / "spread", seeds_differ, planners=(("policy", {}),))
    matrices, _, _ = agg.score_matrices(records.to_frame(records.collect([tmp_path / "spread"])))
    _, cis = agg.aggregate_intervals(matrices, reps=300)
    low, high = cis["policy (tdmpc2)"][:, 2]
    assert low < 0.7 < high and high - low > 0.1
    # with (training seed, evaluation seed) pairs as runs, a single training seed still gives an interval
    matrices, _, _ = agg.score_matrices(df, runs=("train_seed", "seed"))
    assert matrices["policy (tdmpc2)"].shape == (6, 3)


def test_tables_mark_best_second_and_missing_cells(tmp_path):
    import report

    write_records(
        tmp_path / "res",
        noisy,
        planners=(("policy", {}), ("dream", {}), ("mppi", {})),
        skip={("walker-walk", "mppi", 3)},
    )  # one seed missing in one cell
    out = report.build([tmp_path / "res"], tmp_path / "rep", reps=200)
    cells, cols, missing = out["tables"]["dmcontrol"]
    assert missing == ["walker-walk / mppi (tdmpc2): 2 of 3 runs"]
    assert cells["walker-walk"]["mppi (tdmpc2)"]["n"] == 2
    md = (tmp_path / "rep" / "table-dmcontrol.md").read_text().splitlines()
    row = next(line for line in md if line.startswith("| cartpole-swingup"))
    # dream has +100: best (bold); mppi/policy tie is impossible with noise: one of them underlined
    assert "**" in row.split("|")[1 + cols.index("dream (tdmpc2)") + 1] and row.count("<u>") == 1
    means = [cells["cartpole-swingup"][m]["mean"] for m in cols]
    stds = [cells["cartpole-swingup"][m]["std"] for m in cols]
    seed_means = [
        np.mean([noisy("cartpole-swingup", "dream", ts, s, e) for s in (1, 2) for e in (0, 1)]) for ts in (1, 2, 3)
    ]
    assert means[cols.index("dream (tdmpc2)")] == pytest.approx(np.mean(seed_means))
    assert stds[cols.index("dream (tdmpc2)")] == pytest.approx(np.std(seed_means))  # std over training seeds
    tex = (tmp_path / "rep" / "table-dmcontrol.tex").read_text()
    assert r"\textbf{" in tex and r"\underline{" in tex and r"$\pm$" in tex
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "walker-walk / mppi (tdmpc2): 2 of 3 runs" in text
    assert "mppi (tdmpc2): run train_seed=3 left out of the aggregates" in text  # not averaged over fewer


def test_published_baselines_are_read_and_placed_beside_ours(tmp_path):
    import report

    algo = tmp_path / "tdmpc2"
    algo.mkdir()
    with open(algo / "cartpole-swingup.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "reward", "seed"])
        for seed, last in ((1, 840.0), (2, 860.0)):
            w.writerows([[0, 10.0, seed], [500000, 600.0, seed], [1000000, last, seed]])
    with open(algo / "mw-button-press.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "reward", "success", "seed"])
        w.writerows([[1000000, 1500.0, 1.0, 1], [1000000, 1400.0, 0.0, 2]])
    bmpc = tmp_path / "bmpc.json"
    bmpc.write_text(
        json.dumps(
            {
                "BMPC": {
                    "cartpole-swingup": {
                        "values": [100.0, 700.0, 850.0],
                        "steps": [0, 500000, 1000000],
                        "lcbs": [90.0, 650.0, 820.0],
                        "ucbs": [110.0, 750.0, 880.0],
                    }
                }
            }
        )
    )
    pub = report.read_tdmpc2_csv([algo])
    assert pub["tdmpc2 (published)"]["cartpole-swingup"] == {"mean": 850.0, "std": 10.0, "n": 2}
    assert pub["tdmpc2 (published)"]["mw-button-press"]["mean"] == 0.5  # Meta-World: success
    assert report.read_tdmpc2_csv([algo], step=500000)["tdmpc2 (published)"]["cartpole-swingup"]["mean"] == 600.0
    b = report.read_bmpc_json([bmpc])["BMPC (published)"]["cartpole-swingup"]
    assert b["mean"] == 850.0 and b["ci"] == (820.0, 880.0) and np.isnan(b["std"])
    write_records(tmp_path / "res", noisy, tasks=("cartpole-swingup",))
    out = report.build([tmp_path / "res"], tmp_path / "rep", reps=100, tdmpc2_csv=[algo], bmpc_json=[bmpc])
    cells, cols, _ = out["tables"]["dmcontrol"]
    assert {"tdmpc2 (published)", "BMPC (published)", "dream (tdmpc2)"} <= set(cols)
    md = (tmp_path / "rep" / "table-dmcontrol.md").read_text()
    assert "850 ± 10" in md and "| 850 |" in md.replace("**", "").replace("<u>", "").replace("</u>", "")
    assert (tmp_path / "rep" / "table-metaworld.md").exists()  # published-only suite gets its own table


def test_parameter_sweep_gives_figure5(tmp_path):
    import report

    sweep = [("policy", {})] + [("dream", {"num_candidates": 5, "iterations": 1, "horizon": 3})]
    sweep += [("dream", {"num_candidates": n, "iterations": 1, "horizon": 3}) for n in (1, 10)]
    sweep += [("dream", {"num_candidates": 5, "iterations": i, "horizon": 3}) for i in (0, 3)]
    sweep += [("dream", {"num_candidates": 5, "iterations": 1, "horizon": h}) for h in (1, 5)]
    write_records(tmp_path / "res", noisy, planners=sweep, tasks=("cartpole-swingup",), train_seeds=(1,))
    out = report.build([tmp_path / "res"], tmp_path / "rep", reps=50)
    points, reference = out["sweep"]
    curves = points[("cartpole-swingup", "tdmpc2")]
    assert sorted(x for x, *_ in curves["num_candidates"]) == [1, 5, 10]
    assert sorted(x for x, *_ in curves["horizon"]) == [1, 3, 5]
    assert ("cartpole-swingup", "tdmpc2") in reference
    assert (tmp_path / "rep" / "sweep.png").stat().st_size > 5000
    assert "dream (tdmpc2) horizon=5 iterations=1 num_candidates=5" in set(out["frame"]["method"])


def test_tracked_results_are_not_overwritten_without_the_flag(tmp_path):
    import report

    from dream_mpc.errors import UserError

    tracked = "benchmark.json"
    folder = ROOT / "results" / "performance"
    assert (folder / tracked).exists()
    with pytest.raises(UserError, match="--overwrite"):
        report.Writer(folder).path(tracked)
    assert report.Writer(folder, overwrite=True).path(tracked) == folder / tracked


def test_compare_planners_paired_difference_uses_the_new_statistics():
    import compare_planners

    rows = [
        {
            "checkpoint": "a.pt",
            "task": "t",
            "agent": "tdmpc2",
            "planner": p,
            "seed": s,
            "episode": e,
            "return": 100.0 * s + e + (10.0 if p == "dream" else 0.0),
            "success": 0.0,
            "ms_per_step": 1.0,
        }
        for p in ("policy", "dream")
        for s in (1, 2, 3)
        for e in (0, 1)
    ]
    out = compare_planners.paired_difference(rows, "policy")
    assert out[("a.pt", "policy")].as_tuple() == (0.0, 0.0, 0.0)
    assert out[("a.pt", "dream")].as_tuple() == pytest.approx((10.0, 10.0, 10.0))  # the same +10 on every seed
    assert (out[("a.pt", "dream")].runs, out[("a.pt", "dream")].episodes) == (3, 6)  # runs: seeds, not episodes
    for r in rows:  # seeds that differ: Student's t over the 3 per-seed mean differences (+5, +10, +15)
        if r["planner"] == "dream":
            r["return"] += 5.0 * (r["seed"] - 2)
    iv = compare_planners.paired_difference(rows, "policy")[("a.pt", "dream")]
    half = 4.302652729911275 * 5.0 / np.sqrt(3)  # t_{0.975, 2} x s / sqrt(n), s = 5
    assert iv.as_tuple() == pytest.approx((10.0, 10.0 - half, 10.0 + half))
    summary = compare_planners.summarise(rows, "policy")
    dream = next(s for s in summary if s["planner"] == "dream")
    assert dream["vs_policy_runs"] == 3 and dream["vs_policy"] == pytest.approx(iv.as_tuple())
    assert iv.text(1) in compare_planners.table(summary, "policy") and iv.text(1).endswith(", n=3")


def test_one_seed_prints_no_interval_and_no_zero_spread(tmp_path):
    """The demo's case: one evaluation seed. It used to print '+82.5 [+82.5, +82.5]' and 'std over seeds 0.0'."""
    import compare_planners

    rows = [
        {
            "checkpoint": "a.pt",
            "task": "t",
            "agent": "tdmpc2",
            "planner": p,
            "seed": 1,
            "episode": e,
            "return": 100.0 + e + (82.5 if p == "dream" else 0.0),
            "success": 0.0,
            "ms_per_step": 1.0,
        }
        for p in ("policy", "dream")
        for e in (0, 1, 2)
    ]
    summary = compare_planners.summarise(rows, "policy")
    text = compare_planners.table(summary, "policy")
    assert "+82.5 (n=1: no interval)" in text and "[+82.5, +82.5]" not in text
    assert "| 0.0 |" not in text and "– (1 seed)" in text
    compare_planners.plot(summary, tmp_path / "returns.png")
    assert (tmp_path / "returns.png").stat().st_size > 5000
    one = compare_planners.table(compare_planners.summarise([r for r in rows if r["episode"] == 0], "policy"))
    assert "| 182.5 (1 episode) |" in one and "± 0.0" not in one  # one episode: no spread over episodes either


def test_a_report_rebuilt_from_its_own_episodes_csv_is_the_same(tmp_path):
    """results/sweep-small is regenerated from its own records: a report's episodes.csv read back gives the same
    tables, aggregates and paired differences as the records it was made from."""
    import report

    write_records(tmp_path / "res", noisy)
    first = report.build([tmp_path / "res"], tmp_path / "a", reps=100, baseline="policy (tdmpc2)")
    again = report.build([tmp_path / "a" / "episodes.csv"], tmp_path / "b", reps=100, baseline="policy (tdmpc2)")
    for name in ("table-dmcontrol.md", "aggregates.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text(), name
    assert first["paired"] == again["paired"]
    text = (tmp_path / "b" / "report.md").read_text()
    # 3 runs per task: rliable's intervals are kept but marked, with the runs beside them
    assert "**These intervals are descriptive only**: n=3 runs per task: too few for a percentile bootstrap" in text
    assert "| dream (tdmpc2) | 3 |" in text
    assert ", n=3 |" in text  # the paired differences with their runs


def test_compare_planners_reads_the_records_of_every_evaluation_and_names_each_setting(tmp_path):
    """Rows come from evaluation records; a planner recorded with several settings (the Dreamer policy's evaluation
    rule) is one method per setting, named by what differs."""
    import compare_planners

    def row(planner, options, seed, episode, ret):
        job = dict(task="cheetah-run", checkpoint="d.pt", weights="w", agent="dreamer", planner=planner)
        job.update(options=records.options_json(options), planning_dtype="float32", device="cpu")
        job.update(eval_noise=False, seed=seed, train_seed=1)
        ep = dict(**{"return": ret}, success=0.0, length=500, ms_per_step=1.0)
        records.append_row(records.job_file(tmp_path, job), records.make_row(job, episode, ep, _DMC, "cheetah-run", 0))

    for seed in (1, 2):
        row("policy", {"discount": 0.99, "dreamer.eval_action": "mode"}, seed, 0, 10.0 + seed)
        row("policy", {"discount": 0.99, "dreamer.eval_action": "mean"}, seed, 0, 5.0)
        row("dream", {"discount": 0.99, "dreamer.eval_action": "mode"}, seed, 0, 20.0)
    rows = compare_planners.rows_from_records([tmp_path])
    names = sorted({r["planner"] for r in rows})
    assert names == ["dream", "policy eval_action=mean", "policy eval_action=mode"]
    summary = compare_planners.summarise(rows, "policy eval_action=mode")
    dream = next(s for s in summary if s["planner"] == "dream")
    assert dream["vs_policy eval_action=mode"][0] == pytest.approx(20.0 - 11.5) and dream["seeds"] == 2


class _Suite:
    name = "dmcontrol"

    def normalized_score(self, task, episode_return, success):
        return episode_return / 1000


_DMC = _Suite()
