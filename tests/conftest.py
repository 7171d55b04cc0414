"""What every test gets: headless rendering, reproducible products, a check that no test writes into the checkout,
and the helpers several test files share (the checkout's paths, a tiny cartpole agent, a child process running one of
the checkout's programs, an evaluation in this process). Test files import them: `from conftest import ROOT, ...`."""

import os
import signal
import subprocess
import sys
from pathlib import Path

# headless rendering; must be set before dm_control is first imported by any test
os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dream_mpc import reproducible_products  # noqa: E402

reproducible_products()  # the test process is a program: the same bits at any thread count, as train.py sets it

import pytest  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "agents" / "cartpole-swingup-tdmpc2-1M.pt"  # the bundled agent
# a child process sees the checkout's packages, renders headless and never reaches wandb's servers
CHILD_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "MUJOCO_GL": "egl", "WANDB_MODE": "offline"}
# a tiny TD-MPC2 agent on cartpole-swingup (model size 1, narrow layers, horizon 3, one thread): trains, plans and
# evaluates in seconds; a test adds its own planner sizes and batch size (the last value of a key wins)
TINY = [
    "task=cartpole-swingup",
    "device=cpu",
    "threads=1",
    "model_size=1",
    "mlp_dim=64",
    "latent_dim=32",
    "enc_dim=64",
    "horizon=3",
    "eval_episodes=1",
]
WORK_DIR = Path("logs/cartpole-swingup/1/default")  # a training's folder, relative to where it runs (seed 1)


def run_script(script, args=(), cwd=None, env=CHILD_ENV, timeout=600):
    """One of the checkout's programs (`script` relative to ROOT, e.g. "evaluate.py" or "scripts/demo.py") run with
    this Python as a child process in `cwd`; returns the finished process, its stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def evaluate_in_process(overrides):
    """What `evaluate.py <overrides>` does, in this process (no interpreter start, no imports again): the records
    of the episodes it ran."""
    from dream_mpc import config
    from dream_mpc.evaluation.episodes import evaluate_checkpoint

    cfg = config.load(list(overrides))
    cfg._overrides = list(overrides)
    return evaluate_checkpoint(cfg)


_EDITED_BY_PEOPLE = (".py", ".md")  # sources a developer may save while the tests run: not the tests' writes
_NOT_WATCHED = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "build"}


def _snapshot():
    """Every file and folder of the checkout (but the venv, git and caches) with its size and modification time."""
    out = {}
    stack = [ROOT]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for e in entries:
                if e.name in _NOT_WATCHED or e.name.endswith(".egg-info"):
                    continue
                st = e.stat(follow_symlinks=False)
                out[os.path.relpath(e.path, ROOT)] = (st.st_size, st.st_mtime_ns) if e.is_file() else None
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
    return out


@pytest.fixture(autouse=True)
def no_writes_into_the_checkout():
    """Tests write under their tmp_path only: a test that creates, changes or removes anything in the checkout (a
    results row in logs/results, an empty logs/<task> folder, a tracked file) fails, naming what it touched."""
    before = _snapshot()
    yield
    after = _snapshot()
    touched = sorted(
        p
        for p in set(before) | set(after)
        if before.get(p, "gone") != after.get(p, "gone") and not p.endswith(_EDITED_BY_PEOPLE)
    )
    if touched:
        pytest.fail(f"the test wrote into the checkout (write under tmp_path instead): {', '.join(touched[:8])}")


def assert_same_state(a, b, where=""):
    """Every tensor (and every plain value) of two nested checkpoint objects is equal, bit for bit."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b) or (
            a.is_floating_point() and torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())
        ), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), (where, sorted(set(a) ^ set(b)))
        for k in a:
            assert_same_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def send_stops(trainer, stop_at=(), stop_in_update=()):
    """SIGTERM to this process, as a cluster sends it at any moment: during the env step that makes the trainer's
    `_step` reach each value of `stop_at` (evaluation steps excepted), and during its n-th agent update for each n of
    `stop_in_update`. Returns the trainer."""
    env, agent = trainer.env, trainer.agent
    step, evaluate, update, updates = env.step, trainer.eval, agent.update, []
    evaluating = [False]

    def step_and_signal(action):
        if trainer._step + 1 in stop_at and not evaluating[0]:
            os.kill(os.getpid(), signal.SIGTERM)
        return step(action)

    def eval_flagged():
        evaluating[0] = True
        try:
            return evaluate()
        finally:
            evaluating[0] = False

    def update_and_signal(buffer, **kwargs):
        updates.append(1)
        if len(updates) in stop_in_update:
            os.kill(os.getpid(), signal.SIGTERM)
        return update(buffer, **kwargs)

    env.step, trainer.eval, agent.update = step_and_signal, eval_flagged, update_and_signal
    return trainer


PLUGINS = Path(__file__).resolve().parent / "plugins"  # a plug-in outside the packages (tests/plugins/toy_plugin.py)


@pytest.fixture(scope="module")
def toy():
    """The test plug-in, registered (its suite, planner and agent) for the module's tests."""
    sys.path.insert(0, str(PLUGINS))
    os.environ["DREAM_MPC_PLUGINS"] = "toy_plugin"
    import toy_plugin

    yield toy_plugin
    os.environ.pop("DREAM_MPC_PLUGINS")
