"""Faults survived, each one really done: a process killed while writing a checkpoint, a full disk during a save,
SIGTERM / SIGUSR1 / Ctrl-C to a real training run, and a stopped run that resumes to the same bits as an
uninterrupted one.

In-process runs use cartpole-swingup with episodes cut to EPISODE steps (the env's time limit and the config's
episode length both), so a run crosses several episodes, evaluations and checkpoints in a few seconds.
"""

import errno
import io
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import CHILD_ENV, ROOT, TINY, WORK_DIR, assert_same_state, run_script, send_stops

from dream_mpc import checkpoint, config, runtime
from dream_mpc.envs import make_env
from dream_mpc.errors import UserError
from dream_mpc.training.buffer import Buffer
from dream_mpc.training.logger import Logger
from dream_mpc.training.trainer import OnlineTrainer, Stopped
from tdmpc2.agent import TDMPC2

TINY = [*TINY, "num_samples=32", "num_elites=8", "num_pi_trajs=2", "iterations=1", "batch_size=16"]
EPISODE = 40


# ---------------------------------------------------------------------------------------------------- helpers
def short_trainer(cwd, overrides=(), stop_at=(), stop_in_update=()):
    """An in-process trainer in `cwd` on EPISODE-step episodes, stopped by SIGTERM as `send_stops` says."""
    old = os.getcwd()
    os.chdir(cwd)  # work_dir is <cwd>/logs/...
    try:
        cfg = config.load([*TINY, *overrides])
    finally:
        os.chdir(old)
    runtime.setup(cfg)
    env = make_env(cfg)
    env.max_episode_steps = EPISODE
    config.set_env_dims(cfg, env.observation_space.shape, env.action_space.shape[0], EPISODE)
    return send_stops(OnlineTrainer(cfg, env, TDMPC2(cfg), Buffer(cfg), Logger(cfg)), stop_at, stop_in_update)


def wait_for(predicate, proc, timeout=120, what=""):
    deadline = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, f"the process ended (code {proc.returncode}) before {what}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------------- writes
KILLED_MID_WRITE = """
import os, signal, sys, torch
from dream_mpc.checkpoint import atomic_save
real_save = torch.save
def save_half_then_die(obj, f):  # the bytes of a real save, cut in the middle, then SIGKILL
    import io
    buf = io.BytesIO()
    real_save(obj, buf)
    f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
torch.save = save_half_then_die
atomic_save({"step": 2, "weights": torch.ones(1000, 1000)}, sys.argv[1])
"""

SAVE_LOOP = """
import sys, torch
from dream_mpc.checkpoint import atomic_save
weights = torch.randn(4_000_000)  # 16 MB: a write takes a while
for step in range(1, 10_000):
    weights.fill_(step)
    atomic_save({"step": step, "weights": weights}, sys.argv[1])
    print(step, flush=True)
"""


def test_killed_mid_write_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.atomic_save({"step": 1, "weights": torch.zeros(3)}, path)
    result = subprocess.run(
        [sys.executable, "-c", KILLED_MID_WRITE, str(path)], env=CHILD_ENV, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert checkpoint.read(path)["step"] == 1  # the old file, whole
    leftovers = list(tmp_path.glob(".last.pt.*.tmp"))
    assert len(leftovers) == 1 and 0 < leftovers[0].stat().st_size  # the dead writer's half file
    checkpoint.atomic_save({"step": 3, "weights": torch.zeros(3)}, path)  # the next writer clears it
    assert checkpoint.read(path)["step"] == 3 and not list(tmp_path.glob("*.tmp"))


def test_killed_during_a_loop_of_big_saves_leaves_a_whole_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    log = tmp_path / "steps.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVE_LOOP, str(path)], env=CHILD_ENV, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            wait_for(lambda: len(log.read_text().split()) >= 3, proc, what="three saves")
            time.sleep(0.13)  # somewhere inside a later write
        finally:
            proc.kill()
            proc.wait()
    done = int(log.read_text().split()[-1])
    obj = checkpoint.read(path)
    assert obj["step"] >= done and torch.all(obj["weights"] == obj["step"])  # a complete file, never a torn one


def test_disk_full_during_a_save(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.atomic_save({"step": 1, "weights": torch.zeros(3)}, path)

    class FullDisk(io.FileIO):
        """A file on a disk with 1000 bytes left."""

        def write(self, data):
            if self.tell() + len(data) > 1000:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return super().write(data)

    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: FullDisk(fd, "wb"))
    with pytest.raises(UserError) as err:
        checkpoint.atomic_save({"step": 2, "weights": torch.ones(10_000)}, path)
    monkeypatch.undo()
    msg = str(err.value)
    assert str(path) in msg and "disk full" in msg and "No space left on device" in msg and "\n" not in msg
    assert checkpoint.read(path)["step"] == 1  # the previous checkpoint, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left behind


# ---------------------------------------------------------------------------------------------------- signals
def train_cmd(*args):
    return [sys.executable, str(ROOT / "train.py"), *train_args(*args)]


def train_args(*args):
    return [*TINY, "planner=policy", "save_freq=0", *args]


def signal_after_the_first_episode(cwd, sig, pause=0.0):
    """A real training run in `cwd` (random seeding steps: no periodic checkpoint), sent `sig` `pause` seconds after
    its first episode (500 steps) ended: the buffer holds that episode, the second is under way. Returns the exit
    code and the run's output."""
    out, train_csv = cwd / "out.log", cwd / WORK_DIR / "train.csv"
    with open(out, "w") as log:
        proc = subprocess.Popen(
            train_cmd("steps=100000", "seed_steps=100000"), cwd=cwd, env=CHILD_ENV, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for(
                lambda: train_csv.is_file() and len(train_csv.read_text().splitlines()) >= 2,
                proc,
                what="the first episode's end",
            )
            time.sleep(pause)
            proc.send_signal(sig)
            code = proc.wait(timeout=120)
        finally:
            proc.kill()
    return code, out.read_text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_saves_the_current_step_and_the_rerun_resumes(tmp_path, sig):
    """A real run, stopped in the middle of an episode (random seeding steps: no periodic checkpoint yet)."""
    code, text = signal_after_the_first_episode(tmp_path, sig, pause=0.3)
    assert code == 128 + sig, text[-2000:]
    last = tmp_path / WORK_DIR / "models" / "last.pt"
    obj = checkpoint.read(last)
    step = obj["step"]
    assert f"{signal.Signals(sig).name} received: saved {last} at step {step:,}" in text
    assert "To resume, run the same command again" in text
    assert 500 < step and obj["episode"] == (step - 1) // 500 and obj["buffer"]["num_episodes"] == obj["episode"]
    assert len(obj["current_episode"]["rows"]) == (step - 1) % 500 + 2  # the episode in progress, up to now
    torch.load(last, weights_only=True)  # our own files: tensors and plain data only
    again = run_script("train.py", train_args(f"steps={step + 20}", "seed_steps=100000"), tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resumed from {last} at step {step:,}" in again.stdout + again.stderr
    assert checkpoint.read(last)["step"] == step + 21  # the finished run's own checkpoint


def _sigint_default():
    """A child started from a shell's background job inherits SIGINT ignored (and Python then never raises
    KeyboardInterrupt): give it the default disposition, as a terminal's foreground process has."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_says_what_was_saved(tmp_path):
    out = tmp_path / "out.log"

    def interrupt(*args):
        with open(out, "w") as log:
            proc = subprocess.Popen(
                train_cmd(*args),
                cwd=tmp_path,
                env=CHILD_ENV,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_sigint_default,
            )
            try:
                wait_for(
                    lambda: "work dir:" in out.read_text() and "step/s" in out.read_text(),
                    proc,
                    what="the training loop",
                )
                proc.send_signal(signal.SIGINT)
                code = proc.wait(timeout=60)
            finally:
                proc.kill()
        return code, out.read_text()

    code, text = interrupt("steps=100000", "seed_steps=100000")
    assert code != 0 and "nothing saved yet" in text and "starts afresh" in text, text[-2000:]
    assert "resume from" not in text and not (tmp_path / WORK_DIR / "models").exists()
    # a run with a checkpoint: stopped by SIGTERM (saving), then resumed and interrupted
    code, text = signal_after_the_first_episode(tmp_path, signal.SIGTERM)
    assert code == 143, text[-2000:]
    last = tmp_path / WORK_DIR / "models" / "last.pt"
    step = checkpoint.read(last)["step"]
    code, text = interrupt("steps=100000", "seed_steps=100000")
    assert code != 0 and f"the last checkpoint is {last} at step {step:,}" in text, text[-2000:]
    assert "run the same command again to resume from it" in text


# ---------------------------------------------------------------------------------------------------- exactness
def test_stopped_and_resumed_run_is_bitwise_the_uninterrupted_one(tmp_path):
    """Stopped three times by SIGTERM (in the middle of pretraining's updates, in the middle of a planned episode,
    right at an episode's end with an evaluation and a periodic checkpoint due), then resumed to the end: the model,
    optimizers, running scale, buffer, step, every RNG state and the logs equal those of the same run never stopped."""
    args = ["steps=200", "seed_steps=60", "eval_freq=100", f"save_freq={EPISODE}"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole = short_trainer(tmp_path / "a", args)
    whole.train()
    stopped_at = []
    # pretraining's 30th of 60 updates (at step 60); 130: mid-episode (120..160); 160: the step that ends an episode
    for stop, in_update in (((), (30,)), ((130,), ()), ((160,), ()), ((), ())):
        run = short_trainer(tmp_path / "b", args, stop_at=stop, stop_in_update=in_update)
        try:
            run.train()
        except Stopped as stopped:
            assert stopped.code == 143
            saved = checkpoint.read(tmp_path / "b" / WORK_DIR / "models" / "last.pt")
            stopped_at.append((saved["step"], tuple(saved["pending_updates"])))
    assert stopped_at == [(61, (30, True)), (130, (0, False)), (160, (0, False))]
    a, b = (checkpoint.read(tmp_path / d / WORK_DIR / "models" / "last.pt") for d in "ab")
    assert a["step"] == 201 and a["current_episode"] is not None
    assert_same_state(a["model"], b["model"], "model")
    assert_same_state(a["agent"], b["agent"], "agent")  # both optimizers and the running scale
    assert_same_state(a["buffer"], b["buffer"], "buffer")
    assert_same_state(a["rng"], b["rng"], "rng")
    assert_same_state(a["current_episode"], b["current_episode"], "current_episode")
    for key in ("step", "episode", "pretrained", "eval_next", "log_rows", "update_metrics", "nonfinite"):
        assert_same_state(a[key], b[key], key)
    assert_same_state(whole.agent.model.state_dict(), run.agent.model.state_dict(), "live model")
    assert_same_logs(tmp_path / "a" / WORK_DIR, tmp_path / "b" / WORK_DIR)


def assert_same_logs(a, b):
    """train.csv and eval.csv of two run folders hold the same rows, but for the clocks."""
    for name in ("train.csv", "eval.csv"):
        rows = [[line.split(",") for line in (d / name).read_text().splitlines()] for d in (a, b)]
        header = rows[0][0]
        clock = {header.index(k) for k in ("elapsed_time", "steps_per_second") if k in header}
        strip = [[[v for i, v in enumerate(r) if i not in clock] for r in rs] for rs in rows]
        assert strip[0] == strip[1], name


# ---------------------------------------------------------------------------------------------------- evaluations
def stop_in_eval(trainer, evaluation, env_step):
    """SIGTERM to this process during the `env_step`-th env step of the trainer's `evaluation`-th evaluation (both
    counted from 1 in this trainer's life)."""
    evaluate, step = trainer.eval, trainer.env.step
    count = {"evals": 0, "steps": None}

    def counted_eval():
        count["evals"] += 1
        count["steps"] = 0 if count["evals"] == evaluation else None
        try:
            return evaluate()
        finally:
            count["steps"] = None

    def step_and_signal(action):
        if count["steps"] is not None:
            count["steps"] += 1
            if count["steps"] == env_step:
                os.kill(os.getpid(), signal.SIGTERM)
        return step(action)

    trainer.eval, trainer.env.step = counted_eval, step_and_signal
    return trainer


def test_a_stop_during_an_evaluation_saves_at_once_and_the_resume_evaluates_again_bitwise(tmp_path):
    """SIGTERM in the middle of an evaluation (the one before training, then one due at step 100, made at the episode
    end at step 120): the run stops after that env step, without finishing the evaluation, and saves the run as it
    was before it. Resumed, it evaluates again from the start: the model, buffer, random states and both logs equal
    those of the run never stopped (a stop that kept the evaluation's random draws, or lost the evaluation, would
    not)."""
    args = ["steps=200", "seed_steps=60", "eval_freq=100", "save_freq=0"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole = short_trainer(tmp_path / "a", args)
    whole.train()
    saved = []
    for evaluation, env_step in ((1, 10), (2, 25), (0, 0)):  # the 2nd evaluation of the resumed run: step 120's
        run = stop_in_eval(short_trainer(tmp_path / "b", args), evaluation, env_step)
        try:
            run.train()
        except Stopped as stopped:
            assert stopped.code == 143
            obj = checkpoint.read(tmp_path / "b" / WORK_DIR / "models" / "last.pt")
            saved.append((obj["step"], obj["eval_next"], obj["log_rows"]["eval"], obj["current_episode"]))
    assert saved == [(0, True, 0, None), (120, True, 1, None)]
    a, b = (checkpoint.read(tmp_path / d / WORK_DIR / "models" / "last.pt") for d in "ab")
    assert a["step"] == 201
    for key in ("model", "agent", "buffer", "rng", "current_episode", "episode", "log_rows", "nonfinite"):
        assert_same_state(a[key], b[key], key)
    assert_same_logs(tmp_path / "a" / WORK_DIR, tmp_path / "b" / WORK_DIR)
    assert [r.split(",")[0] for r in (tmp_path / "b" / WORK_DIR / "eval.csv").read_text().splitlines()] == [
        "step",
        "0",
        "120",
        "200",
    ]


def test_eval_freq_0_never_evaluates(tmp_path):
    run = short_trainer(tmp_path, ["steps=100", "seed_steps=1000", "eval_freq=0"])
    evaluations = []
    evaluate = run.eval
    run.eval = lambda: evaluations.append(1) or evaluate()
    run.train()
    assert evaluations == [] and (tmp_path / WORK_DIR / "eval.csv").read_text().strip() == ""


def test_elapsed_time_continues_across_a_resume(tmp_path, monkeypatch):
    """train.csv's elapsed_time is the run's wall time: a resumed segment (a new process, its clock at another
    value) continues from the time the stopped one had, it does not count from 0 again. The trainer's clock is
    fake: one second a training env step."""
    from types import SimpleNamespace

    from dream_mpc.training import trainer as trainer_module

    clock = [1000.0]
    monkeypatch.setattr(trainer_module, "time", SimpleNamespace(time=lambda: clock[0]))
    args = ["steps=200", "seed_steps=1000", "eval_freq=0"]  # random steps: cheap
    for stop in ((130,), ()):
        clock[0] += 1e6  # a new process, later
        run = short_trainer(tmp_path, args, stop_at=stop)
        step = run.env.step
        run.env.step = lambda action: clock.__setitem__(0, clock[0] + 1) or step(action)
        try:
            run.train()
        except Stopped:
            stopped = checkpoint.read(tmp_path / WORK_DIR / "models" / "last.pt")
    assert stopped["elapsed_time"] >= 129
    rows = (tmp_path / WORK_DIR / "train.csv").read_text().splitlines()
    column = rows[0].split(",").index("elapsed_time")
    steps, elapsed = zip(*((int(r.split(",")[0]), float(r.split(",")[column])) for r in rows[1:]))
    assert steps == (40, 80, 120, 160, 200)
    assert list(elapsed) == sorted(elapsed) and elapsed[-1] >= 200 and elapsed[3] >= stopped["elapsed_time"]


@pytest.mark.slow  # ~20 s: two real runs
def test_sigterm_during_a_real_evaluation_exits_within_seconds_and_the_resumed_run_finishes(tmp_path):
    """A real run whose evaluation would take an hour (1000 episodes) gets SIGTERM during it: it saves and exits with
    143 within seconds; the rerun (with a short evaluation) evaluates at step 0 again and trains to the end."""
    out, eval_csv = tmp_path / "out.log", tmp_path / WORK_DIR / "eval.csv"
    with open(out, "w") as log:
        proc = subprocess.Popen(
            train_cmd("steps=50", "seed_steps=100000", "eval_episodes=1000"),
            cwd=tmp_path,
            env=CHILD_ENV,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: "eval at step 0" in out.read_text(), proc, what="the evaluation")
            time.sleep(1.0)  # some of its steps
            proc.send_signal(signal.SIGTERM)
            sent = time.time()
            code = proc.wait(timeout=60)
            took = time.time() - sent
        finally:
            proc.kill()
    text = out.read_text()
    assert code == 143 and took < 30, (code, took, text[-2000:])
    last = tmp_path / WORK_DIR / "models" / "last.pt"
    obj = checkpoint.read(last)
    assert obj["step"] == 0 and obj["eval_next"] and obj["log_rows"]["eval"] == 0
    assert "the evaluation at step 0 was cut short and runs again on resume" in text
    again = run_script("train.py", train_args("steps=50", "seed_steps=100000", "eval_episodes=1"), tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resumed from {last} at step 0" in again.stdout + again.stderr
    assert checkpoint.read(last)["step"] == 51
    assert [r.split(",")[0] for r in eval_csv.read_text().splitlines()] == ["step", "0"]
