"""Bad input through the real command line (issue #15 item 1): every mistake exits with code 2 and prints exactly
one `error: ...` line naming the key, the value and what is allowed, without a traceback. The errors happen before
any work, so each case is one cheap `python train.py ...` / `python evaluate.py ...` (two at a time).
Also: legit edge values stay allowed (dream.iterations=0 evaluates), and a checkpoint evaluated on another task with
the same dims loads with a warning (issue #15 item 2). docs/errors.md lists the same cases and their messages."""

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import AGENT, CHILD_ENV, ROOT, run_script

ONE_THREAD = {**CHILD_ENV, "OMP_NUM_THREADS": "1"}  # two children at a time on a shared machine
EVAL = [f"checkpoint={AGENT}", "device=cpu", "eval_episodes=1"]  # a valid evaluation, but for the bad value

# (script, arguments, what the one error line must contain: the key, the value, what is allowed)
CASES = {
    "dream.num_candidates=0": (
        "evaluate.py",
        [*EVAL, "dream.num_candidates=0"],
        ["dream.num_candidates", "0", "integer >= 1"],
    ),
    "dream.horizon=-2": ("evaluate.py", [*EVAL, "dream.horizon=-2"], ["dream.horizon", "-2", "integer >= 1"]),
    "horizon=0": ("train.py", ["horizon=0"], ["horizon=0", "integer >= 1"]),
    "num_samples=0": ("train.py", ["num_samples=0"], ["num_samples=0", "integer >= 2"]),
    "dream.clip=foo": ("evaluate.py", [*EVAL, "dream.clip=foo"], ["dream.clip", "foo", "per_candidate, global"]),
    "dream.num_candidates=abc": (
        "evaluate.py",
        [*EVAL, "dream.num_candidates=abc"],
        ["dream.num_candidates", "abc", "integer"],
    ),
    "seed=abc": ("train.py", ["seed=abc"], ["seed", "abc", "integer >= 0"]),
    "seed=1.5": ("train.py", ["seed=1.5"], ["seed=1.5", "integer >= 0"]),
    "steps=abc": ("train.py", ["steps=abc"], ["steps", "abc", "integer >= 1"]),
    "steps=5*0": ("train.py", ["steps=5*0"], ["steps=0", "integer >= 1"]),
    "dream.lr=-1": ("evaluate.py", [*EVAL, "dream.lr=-1"], ["dream.lr=-1", "number > 0"]),
    "dream.iterations=-1": ("evaluate.py", [*EVAL, "dream.iterations=-1"], ["dream.iterations=-1", "integer >= 0"]),
    "eval_episodes=0": ("evaluate.py", [f"checkpoint={AGENT}", "eval_episodes=0"], ["eval_episodes=0", "integer >= 1"]),
    "eval_episodes=null": (
        "evaluate.py",
        [f"checkpoint={AGENT}", "eval_episodes=null"],
        ["eval_episodes=null", "integer >= 1"],
    ),
    "planner=dreem": ("evaluate.py", [*EVAL, "planner=dreem"], ["planner", "dreem", "closest first: dream, "]),
    "task=walker-wlk": ("train.py", ["task=walker-wlk"], ["task", "walker-wlk", "walker-walk"]),
    "task=": ("train.py", ["task="], ["task", "''", "cartpole-swingup"]),
    "dream.lrr=1": ("evaluate.py", [*EVAL, "dream.lrr=1"], ["dream option", "lrr", "lr"]),
    "foo=1": ("train.py", ["foo=1"], ["config key", "foo", "horizon"]),
    "dream=3": ("train.py", ["dream=3"], ["dream=3", "block of options", "dream.num_candidates="]),
    "agent=foo": ("train.py", ["agent=foo"], ["agent", "foo", "Valid agents", "bmpc", "tdmpc2"]),
    "device=tpu": ("train.py", ["device=tpu"], ["device", "tpu", "cpu", "cuda"]),
    "checkpoint=<missing file>": (
        "evaluate.py",
        ["checkpoint=no-such-file.pt"],
        ["checkpoint", "no-such-file.pt", "no such file", "torch.save"],
    ),
    "checkpoint=<a directory>": ("evaluate.py", ["checkpoint=."], ["checkpoint", "is a directory", "torch.save"]),
    "checkpoint=<not a torch file>": (
        "evaluate.py",
        ["checkpoint=README.md"],
        ["checkpoint", "README.md", "not a torch file", "torch.save"],
    ),
    "num_elites=600": ("train.py", ["num_elites=600"], ["num_elites=600", "num_samples=512", "<="]),
    "obs=depth": ("train.py", ["obs=depth"], ["obs", "depth", "state, rgb"]),
    "model_size=7": ("train.py", ["model_size=7"], ["model_size=7", "1, 5, 19, 48, 317"]),
    "planning_dtype=fp16": ("train.py", ["planning_dtype=fp16"], ["planning_dtype", "fp16", "float32, bfloat16"]),
    "rho=1.5": ("train.py", ["rho=1.5"], ["rho=1.5", "> 0 and <= 1"]),
    "discount_min=0.999": ("train.py", ["discount_min=0.999"], ["discount_min=0.999", "discount_max=0.995", "<="]),
    "task (no =)": ("train.py", ["task"], ["'task'", "key=value"]),
    "task=a,b (a sweep without -m)": (
        "train.py",
        ["task=cartpole-swingup,walker-walk"],
        ["task=cartpole-swingup,walker-walk", "-m"],
    ),
    "task=[ (bad grammar)": ("train.py", ["task=["], ["task=[", "quoting"]),
    "exp_name=../../escape": ("train.py", ["exp_name=../../escape"], ["exp_name='../../escape'", "plain name"]),
    "buffer_size=10": (
        "train.py",
        ["task=cartpole-swingup", "model_size=1", "device=cpu", "buffer_size=10", "steps=1000"],
        ["buffer_size=10", ">= 501"],
    ),
    "results_dir=/proc/forbidden": (
        "evaluate.py",
        [*EVAL, "results_dir=/proc/forbidden"],
        ["cannot write evaluation records", "/proc/forbidden"],
    ),
    "checkpoint=<truncated file>": (
        "evaluate.py",
        ["checkpoint=truncated.pt"],
        ["checkpoint", "truncated.pt", "truncated", "copy"],
    ),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("bad_input")
    (cwd / "README.md").write_text("# not a checkpoint\n")
    (cwd / "truncated.pt").write_bytes(AGENT.read_bytes()[:300_000])  # an interrupted download

    def run(case):
        script, args, _ = CASES[case]
        return case, run_script(script, args, cwd, env=ONE_THREAD)

    with ThreadPoolExecutor(2) as pool:  # each is a start-up and an error: CPU-bound, two at a time
        results = dict(pool.map(run, CASES))
    if os.environ.get("BAD_INPUT_TABLE"):  # BAD_INPUT_TABLE=table.md: the table of docs/errors.md, as measured
        lines = ["| bad input | command | exit code | message (stderr) |", "|---|---|---|---|"]
        for case, result in results.items():
            script, args, _ = CASES[case]
            shown = " ".join(a.replace(str(ROOT) + "/", "") for a in args if a not in EVAL[1:])
            message = " / ".join(line for line in result.stderr.splitlines() if line.startswith("error: "))
            lines.append(
                f"| `{case}` | `python {script} {shown}` | {result.returncode} | `{message.replace('|', '&#124;')}` |"
            )
        Path(os.environ["BAD_INPUT_TABLE"]).write_text("\n".join(lines) + "\n")
    return results


@pytest.mark.slow  # ~2 minutes: 49 start-ups of the real command line, two at a time (the config checks themselves
# are fast tests in tests/test_trust.py and tests/test_registry.py)
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_error_line_and_exit_code_2(case, results):
    result = results[case]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1, result.stderr[-2000:]
    for fragment in CASES[case][2]:
        assert fragment in errors[0], (fragment, errors[0])


def test_zero_dream_iterations_is_allowed_and_evaluates(tmp_path):
    """dream.iterations=0 (documented): Dream-MPC picks among the policy's candidates without a gradient step."""
    result = run_script(
        "evaluate.py",
        [
            f"checkpoint={AGENT}",
            "planner=dream",
            "dream.iterations=0",
            "eval_episodes=1",
            "device=cpu",
            "threads=1",
        ],
        tmp_path,
        env=ONE_THREAD,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "episode 1/1: return" in result.stdout + result.stderr


def test_other_task_with_the_same_dims_loads_with_a_warning():
    """A cartpole-swingup agent on cartpole-balance (same obs and action dims): a warning naming both tasks."""
    import warnings

    from dream_mpc.checkpoint import load_agent

    with pytest.warns(UserWarning, match="trained on cartpole-swingup, not on task=cartpole-balance"):
        agent = load_agent(AGENT, task="cartpole-balance", device="cpu")
    assert agent.cfg.task == "cartpole-balance"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # its own task, given or not: no warning
        load_agent(AGENT, task="cartpole-swingup", device="cpu")
        load_agent(AGENT, device="cpu")


@pytest.mark.parametrize(
    "script, args",
    [
        ("scripts/demo.py", []),
        ("scripts/compare_planners.py", ["--checkpoints", str(AGENT), "--planners", "policy", "--episodes", "1"]),
        ("scripts/ablate_dream.py", ["--checkpoint", str(AGENT), "--episodes", "1"]),
    ],
)
def test_scripts_refuse_to_write_into_a_folder_with_results(script, args, tmp_path):
    """No command overwrites results: an existing results folder needs --resume or --overwrite, and without them
    the script stops before evaluating anything, leaving the files byte-identical."""
    out = tmp_path / "results"
    out.mkdir()
    files = {"episodes.csv": b"checkpoint,task\nx,y\n", "summary.json": b"[]\n", "returns.png": b"\x89PNG old"}
    for name, data in files.items():
        (out / name).write_bytes(data)
    result = run_script(script, [*args, "--out", str(out)], tmp_path, env=ONE_THREAD)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "already holds results" in errors[0] and "--overwrite" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files


def test_benchmark_refuses_to_replace_an_existing_json(tmp_path):
    target = tmp_path / "planners.json"
    target.write_text('{"kept": true}')
    result = run_script(
        "scripts/benchmark_planners.py", ["--model-size", "1", "--json", str(target)], tmp_path, env=ONE_THREAD
    )
    assert result.returncode == 2 and "--overwrite" in result.stderr and "Traceback" not in result.stderr
    assert target.read_text() == '{"kept": true}'


def test_script_defaults_write_to_ignored_folders():
    """Defaults land under results/tmp/ (ignored by git), so a plain run never touches tracked results."""
    ignored = subprocess.run(["git", "check-ignore", "-q", "results/tmp/compare/episodes.csv"], cwd=ROOT)
    assert ignored.returncode == 0
    for script in ("compare_planners.py", "ablate_dream.py", "plot_training.py", "demo.py"):
        text = (ROOT / "scripts" / script).read_text()
        assert '"results/tmp/' in text or "outputs.TMP" in text, script


def test_help_into_a_pipe_that_closes_early_prints_no_traceback(tmp_path):
    """`python train.py --help | head -1`: the reader goes away before the help is written."""
    import sys

    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "--help"],
        cwd=tmp_path,
        env=CHILD_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # before the interpreter has started: its first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 141) and "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.slow  # two real evaluations
def test_the_hint_for_pixels_on_a_state_file_works_when_followed(tmp_path):
    """obs=rgb on a state checkpoint: one line saying what the file reads and what to do; done as it says, the
    evaluation runs."""
    args = [f"checkpoint={AGENT}", "device=cpu", "eval_episodes=1", "planner=policy", f"results_dir={tmp_path / 'r'}"]
    bad = run_script("evaluate.py", [*args, "obs=rgb"], tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr[-2000:]
    (line,) = [x for x in bad.stderr.splitlines() if x.startswith("error: ")]
    assert "trained on obs=state" in line and "leave obs= out" in line
    good = run_script("evaluate.py", args, tmp_path)  # the hint followed: obs= left out
    assert good.returncode == 0, good.stderr[-2000:]
