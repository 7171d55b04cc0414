"""Adaptive threads of the acting step (dream_mpc/threads.py): the choice logic on given times, and a real agent."""

import os
import subprocess
import sys
import time

import pytest
import torch
from conftest import AGENT, ROOT

from dream_mpc import config, load_agent
from dream_mpc.threads import AdaptiveThreads, IdleCores, _Choice, candidates, products_thread_independent
from tdmpc2.agent import TDMPC2

QUIET = {1: 0.195, 2: 0.113}  # MPPI at model size 1 on the 2-core VM (s per step)
BUSY = {1: 0.195, 2: 0.430}  # one core taken by another process


def run(choice, times, calls, idle=None):
    """Calls of a step whose time at n threads is times[n]; returns the thread count of each call."""
    used = []
    for _ in range(calls):
        if idle is not None:
            choice.note_idle(idle(choice))
        n = choice.pick()
        choice.record(n, times[n])
        used.append(n)
    return used


def tries(used, n):
    """Start indices of the runs of n threads (a try runs two calls)."""
    return [i for i, m in enumerate(used) if m == n and (i == 0 or used[i - 1] != n)]


def test_candidates():
    assert candidates(1) == [1]
    assert candidates(2) == [1, 2]
    assert candidates(6) == [1, 2, 4, 6]
    assert candidates(16) == [1, 2, 4, 8, 16]


def test_quiet_machine_keeps_all_threads_and_looks_less_and_less():
    choice = _Choice(2, first_interval=4, max_interval=64, smoothing=0.5)
    used = run(choice, QUIET, 300)
    assert used[:4] == [2, 2, 1, 1]  # an untimed warm-up call, a timed one, then a try (two calls) of 1 thread
    starts = tries(used, 1)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert gaps == sorted(gaps) and gaps[-1] == 128 + 2  # the interval doubles (up to 256 calls for fewer threads)
    assert len(starts) <= 6


def test_load_arriving_switches_to_one_thread_at_once_and_stays():
    choice = _Choice(2, first_interval=4, max_interval=64, smoothing=0.5)
    run(choice, QUIET, 50)
    used = run(choice, BUSY, 200)
    assert 1 in used[:3]  # one or two slow calls, then 1 thread
    assert len(tries(used[3:], 2)) <= 6  # tries of 2 threads after 4, 8, 16, 32, 64, 64 calls


def test_a_core_coming_free_is_tried_at_once_and_no_idle_core_means_rare_tries():
    choice = _Choice(2, first_interval=4, max_interval=64, smoothing=0.5)
    run(choice, QUIET, 20, idle=lambda c: 0.1)
    busy = run(choice, BUSY, 200, idle=lambda c: 0.0)  # no core idle: more threads cannot help
    assert len(tries(busy[3:], 2)) <= 200 // 64 + 1
    quiet = run(choice, QUIET, 5, idle=lambda c: 1.0)  # the other process ended: a core is idle
    assert quiet == [2] * 5


def test_without_idle_information_tries_more_threads_now_and_then():
    choice = _Choice(2, first_interval=4, max_interval=64, smoothing=0.5)
    run(choice, BUSY, 100)
    used = run(choice, QUIET, 100)  # off Linux: no idle signal, the periodic try finds the free core
    assert tries(used, 2)[0] <= 64 and used[-30:].count(2) >= 28


def test_one_slow_outlier_costs_at_most_first_interval_calls():
    choice = _Choice(2, first_interval=4, max_interval=64, smoothing=0.5)
    run(choice, QUIET, 40)
    choice.record(2, 1.0)  # a hiccup (page faults, another process for a moment): switches to 1 thread
    used = run(choice, QUIET, 10)
    assert used[:4] == [1] * 4 and used[4:9] == [2] * 5


def test_idle_cores_reads_linux_proc_stat():
    idle = IdleCores(window=0.05)
    if idle.last is None:
        pytest.skip("no /proc/stat here")
    assert idle.poll() is None  # the window is still open
    time.sleep(0.1)
    cores = idle.poll()
    assert 0 <= cores <= len(idle.cpus) + 0.5


def small_agent(planner, *overrides):
    cfg = config.load(["task=cartpole-swingup", "model_size=1", f"planner={planner}", "device=cpu", *overrides])
    config.set_env_dims(cfg, (5,), 1, 1000)
    torch.manual_seed(0)
    return TDMPC2(cfg)


def spy_threads(agent):
    """Records torch's thread count inside each planning call."""
    seen, plan = [], agent.planner.plan

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return plan(*args, **kwargs)

    agent.planner.plan = recording
    return seen


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_agent_adapts_threads_inside_the_step_and_restores_them(two_threads):
    agent = small_agent("dream")
    seen = spy_threads(agent)
    obs = torch.zeros(5)
    for t in range(12):
        agent.act(obs, t0=t == 0, eval_mode=True)
        assert torch.get_num_threads() == 2  # the update and everything else keep `threads`
    assert seen[:3] == [2, 2, 1] and set(seen) == {1, 2}
    summary = agent.act_threads.summary()  # what evaluate.py prints after its episodes
    assert summary.startswith("CPU threads per step: ") and "1 on " in summary and "2 on " in summary


def test_fixed_plan_threads_and_a_failing_step_restore_the_count(two_threads):
    agent = small_agent("dream", "plan_threads=1")
    seen = spy_threads(agent)
    for t in range(3):
        agent.act(torch.zeros(5), t0=t == 0, eval_mode=True)
    assert seen == [1, 1, 1] and torch.get_num_threads() == 2
    threads = AdaptiveThreads()
    with pytest.raises(RuntimeError), threads(key=1):
        raise RuntimeError("a planner failed")
    assert torch.get_num_threads() == 2 and not threads.choice(1, 2).warm  # not timed


@pytest.mark.slow  # ~40 s: 30 Dream-MPC and 4 MPPI steps at two thread counts on the bundled agent
@pytest.mark.parametrize("planner", ["mppi", "dream"])
def test_actions_do_not_depend_on_the_thread_count(two_threads, planner):
    """Adapting costs no reproducibility: the same seed gives the same actions at 1 and 2 threads, bit for bit
    (the bundled agent with Dream-MPC's 5-row products differed from step 5 on before MKL's strict mode)."""
    agent = load_agent(AGENT, device="cpu", overrides=[f"planner={planner}"])
    g = torch.Generator().manual_seed(0)
    observations = [torch.randn(5, generator=g) for _ in range(30 if planner == "dream" else 4)]
    runs = []
    for n in (1, 2):
        agent.cfg.plan_threads = n
        torch.manual_seed(1)
        runs.append(torch.stack([agent.act(o, t0=t == 0, eval_mode=True) for t, o in enumerate(observations)]))
    assert torch.equal(runs[0], runs[1])


def test_programs_make_products_thread_independent_importing_tdmpc2_does_not():
    assert os.environ["MKL_CBWR"] == "AUTO,STRICT"  # conftest, like train.py and evaluate.py, asked for it
    assert products_thread_independent(2)
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    code = "import os, tdmpc2, tdmpc2.agent, dream_mpc.cli; print(os.environ.get('MKL_CBWR'))"
    lib = subprocess.run(
        [sys.executable, "-c", code.replace(", dream_mpc.cli", "")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert lib.stdout.strip() == "None", lib.stderr  # a library import sets nothing process-wide
    prog = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert prog.stdout.strip() == "AUTO,STRICT", prog.stderr  # the programs' module does


def test_products_used_before_tdmpc2_give_one_warning():
    code = (
        "import torch, warnings\n"
        "torch.randn(5, 384) @ torch.randn(384, 384)  # MKL starts in its default mode\n"
        "from dream_mpc.threads import AdaptiveThreads, products_thread_independent\n"
        "torch.set_num_threads(2)\n"
        "print('independent' if products_thread_independent(2) else 'dependent')\n"
        "with AdaptiveThreads()(key=1):\n"
        "    pass\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    if out.stdout.strip() == "independent":
        pytest.skip("this BLAS gives the same bits at any thread count even in its default mode")
    assert "plan_threads=N fixes the count" in out.stderr


@pytest.mark.slow
def test_busy_benchmark_prints_its_table():
    """The busy-machine benchmark runs end to end (a CPU hog, workers, the table); its numbers are for the docs."""
    cmd = [sys.executable, "scripts/benchmark_planners.py", "--model-size", "1", "--busy", "--rounds", "1"]
    cmd += ["--repeats", "3", "--planners", "dream", "--busy-threads", "1", "auto"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| dream |")]
    assert [row.split("|")[3].strip() for row in rows] == ["1", "auto"]
