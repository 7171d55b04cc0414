"""The open core: a planner, an env suite and a world model (a recurrent TensorDict latent with a single value
head) defined outside the packages (tests/plugins/toy_plugin.py) train and evaluate through train.py and
evaluate.py, and every built-in planner plans on that model through the protocol alone."""

import os
import subprocess
import sys

import pytest
import torch
from conftest import CHILD_ENV, PLUGINS, ROOT, run_script

START = -0.5  # the point mass's start position (at rest) when a test sets it; TARGET is 0.5


def cli(script, *args, cwd, plugin="toy_plugin", folder=PLUGINS):
    """A program of the checkout run with a plug-in module (`plugin`, found in `folder`) loaded."""
    env = {**CHILD_ENV, "DREAM_MPC_PLUGINS": plugin, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])}
    return run_script(script, args, cwd, env=env)


def toy_agent(toy, planner, model=None):
    from dream_mpc import config

    cfg = config.load(["task=toy-reach", "agent=toy_rnn", f"planner={planner}", "device=cpu"])
    config.set_env_dims(cfg, (2,), 1, toy.LENGTH)
    return toy.RecurrentAgent(cfg, model=model)


def test_plugins_are_registered_and_named_in_errors(toy):
    from dream_mpc import config
    from dream_mpc.errors import UserError
    from dream_mpc.registry import agents, planners, suites

    assert "toy_shooting" in planners.names() and "toy_rnn" in agents.names() and "toy" in suites.names()
    with pytest.raises(UserError, match="toy_shooting.num_samples=0 is not allowed"):
        config.load(["task=toy-reach", "toy_shooting.num_samples=0"])
    with pytest.raises(UserError, match="closest first: toy-reach"):
        config.load(["task=toy-reahc"])


@pytest.mark.parametrize("planner", ["dream", "mppi", "grad", "hybrid", "policy", "cem", "cem_policy", "toy_shooting"])
def test_every_planner_plans_on_a_recurrent_single_head_model(toy, planner):
    agent = toy_agent(toy, planner)
    torch.manual_seed(0)
    obs = torch.tensor([START, 0.0])
    for t in range(3):
        action = agent.act(obs, t0=t == 0, eval_mode=True)
        assert action.shape == (1,) and torch.isfinite(action).all()
    assert agent.planner.nonfinite_count == 0 and agent.nonfinite_actions == 0


@pytest.fixture(scope="module")
def best(toy):
    """The best return of a point-mass episode from rest at START, and the return of the policy prior (mean 0:
    the mass stays at START, LENGTH rewards of -(START - TARGET)^2)."""
    return toy.optimal_return(START), -toy.LENGTH * (START - toy.TARGET) ** 2


@pytest.mark.parametrize("planner", ["dream", "mppi", "grad", "hybrid", "policy", "cem", "cem_policy", "toy_shooting"])
def test_every_planner_steers_the_point_mass_close_to_the_best_return(toy, best, planner):
    """On the env's exact model (a TensorDict latent, one V head, a prior that knows nothing), each planner's
    episode in the real env closes at least 80% of the gap between the prior's return and the best one (measured:
    91% (Dream-MPC) to 100% (MPPI)); the policy planner is the prior itself. A planner that returns zeros (the
    prior's mean) gets the prior's return, -25."""
    optimum, prior = best
    agent = toy_agent(toy, planner, model=toy.ExactModel())
    env = toy.PointMass(seed=0)
    env.reset()
    env.pos = START
    obs, total, done, t = env._obs(), 0.0, False, 0
    torch.manual_seed(0)
    while not done:
        obs, reward, done, _ = env.step(agent.act(obs, t0=t == 0, eval_mode=True))
        total, t = total + float(reward), t + 1
    assert t == toy.LENGTH and agent.planner.nonfinite_count == 0 and agent.nonfinite_actions == 0
    if planner == "policy":
        assert total == pytest.approx(prior)
    else:
        assert total >= optimum - 0.2 * (optimum - prior), f"{planner}: {total:.2f}, best {optimum:.2f}, prior {prior}"


def test_a_single_value_head_has_zero_uncertainty_not_nan(toy):
    from dream_mpc.objective import Objective

    agent = toy_agent(toy, "dream")
    z = agent.model.encode(torch.randn(4, 2))
    values = agent.model.values(z)
    assert values.shape == (1, 4, 1)
    u = Objective(horizon=2).uncertainty(values)
    assert torch.equal(u, torch.zeros_like(u))
    actions = torch.rand(4, 2, 1) * 2 - 1
    with_penalty = Objective(horizon=2, uncertainty_coef=1.0)(agent.model, z, actions, discount=0.9)
    without = Objective(horizon=2, uncertainty_coef=0.0)(agent.model, z, actions, discount=0.9)
    assert torch.isfinite(with_penalty).all() and torch.equal(with_penalty, without)


@pytest.mark.slow
def test_train_and_evaluate_a_plugin_through_the_command_line(tmp_path):
    run = cli(
        "train.py",
        "task=toy-reach",
        "agent=toy_rnn",
        "planner=dream",
        "steps=150",
        "seed_steps=50",
        "eval_episodes=1",
        "batch_size=16",
        "save_freq=0",
        "enable_wandb=false",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    final = tmp_path / "logs" / "toy-reach" / "1" / "default" / "models" / "final.pt"
    assert final.is_file()
    for planner in ("dream", "toy_shooting"):
        run = cli("evaluate.py", f"checkpoint={final}", f"planner={planner}", "eval_episodes=2", cwd=tmp_path)
        assert run.returncode == 0, run.stderr[-3000:]
        assert f"toy-reach planner={planner}: return" in run.stdout and "non-finite" not in run.stdout
    bad = cli("evaluate.py", f"checkpoint={final}", "toy_shooting.num_samples=abc", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "toy_shooting.num_samples='abc' is not allowed" in bad.stderr


def test_a_file_of_an_unregistered_agent_names_the_plugin_setting(tmp_path, toy):
    from dream_mpc.checkpoint import atomic_save, load_agent
    from dream_mpc.errors import UserError

    path = tmp_path / "other.pt"
    atomic_save({"model": {}, "config": {"agent": "somebody_elses", "task": "toy-reach"}}, path)
    with pytest.raises(UserError, match="agent=somebody_elses, which is not registered here"):
        load_agent(path)


def test_a_fall_ends_the_episode_and_training_goes_on_without_a_terminal_target(tmp_path, monkeypatch, toy):
    """episodic=false (as BMPC and the paper's code): a termination ends the episode, the TD target does not see it
    as terminal (the stored flag is 0), and training continues to its last step."""
    import csv

    import train

    stored = []
    from dream_mpc.training.buffer import Buffer

    original = Buffer.add
    monkeypatch.setattr(Buffer, "add", lambda self, ep: (stored.append(ep), original(self, ep))[1])
    monkeypatch.chdir(tmp_path)
    train.main(
        [
            "task=toy-fall",
            "agent=toy_rnn",
            "planner=policy",
            "steps=120",
            "seed_steps=40",
            "eval_episodes=1",
            "batch_size=8",
            "save_freq=0",
            "enable_wandb=false",
            "device=cpu",
        ]
    )
    rows = list(csv.DictReader(open(tmp_path / "logs" / "toy-fall" / "1" / "default" / "train.csv")))
    lengths = [int(float(r["episode_length"])) for r in rows]
    assert any(n < toy.LENGTH for n in lengths), lengths  # some episodes ended by a fall
    assert int(float(rows[-1]["step"])) >= 100  # and training went on
    terminated = [float(r["terminated"]) for ep in stored for r in (ep if isinstance(ep, list) else [])[1:]]
    assert terminated and max(terminated) == 0.0


def broken_plugins(folder):
    """Three broken plug-ins in `folder` (put it on PYTHONPATH): two modules for DREAM_MPC_PLUGINS, one raising
    ImportError (a dependency missing), one RuntimeError (its own bug), and an installed package (a dist-info folder,
    as pip leaves it) whose planner entry point's module raises on import."""
    for module, source in (
        ("broken_import", "import a_dependency_not_installed  # noqa\n"),
        ("broken_runtime", "raise RuntimeError('the plug-in has a bug')\n"),
        ("broken_ep", "raise ImportError('cannot import name Planner from its_base')\n"),
    ):
        (folder / f"{module}.py").write_text(source)
    dist = folder / "broken_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[dream_mpc.planners]\nbroken_planner = broken_ep:Planner\n")
    env = {**CHILD_ENV, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])}
    return {**env, "DREAM_MPC_PLUGINS": "broken_import,broken_runtime"}


def test_a_broken_plugin_is_named_once_and_every_other_command_works(tmp_path):
    """Each broken plug-in gets one line on stderr naming it and its error; the command itself (a short training run
    through train.py) works. Asking for the broken package's planner is the usual one-line error, after the line that
    says why that planner is missing."""
    from conftest import TINY

    env = broken_plugins(tmp_path)
    run = run_script("train.py", [*TINY, "planner=policy", "steps=10", "eval_freq=0"], tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    warnings = [line for line in run.stderr.splitlines() if "failed to load" in line]
    assert len(warnings) == 3, warnings
    for name, error in (
        ("module 'broken_import' (named in DREAM_MPC_PLUGINS)", "ModuleNotFoundError: No module named"),
        ("module 'broken_runtime' (named in DREAM_MPC_PLUGINS)", "RuntimeError: the plug-in has a bug"),
        ("broken_planner = broken_ep:Planner (entry point of dream_mpc.planners)", "ImportError: cannot import name"),
    ):
        assert sum(f"plug-in {name} failed to load" in line and error in line for line in warnings) == 1, warnings
    assert (tmp_path / "logs" / "cartpole-swingup" / "1" / "default" / "models" / "last.pt").is_file()
    bad = run_script("train.py", [*TINY, "planner=broken_planner"], tmp_path, env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr[-3000:]
    *before, error = bad.stderr.strip().splitlines()
    assert error.startswith("error: unknown planner 'broken_planner'"), error
    assert sum("broken_ep:Planner" in line and "failed to load" in line for line in before) == 1, before


def test_a_broken_entry_point_is_skipped_and_named_by_a_lookup(monkeypatch, capsys):
    """In process: an entry point whose load raises is skipped with one line on stderr (not again on the next load),
    the registry's other entries work, and looking up a missing name names the broken plug-in."""
    from importlib.metadata import EntryPoint

    from dream_mpc import registry
    from dream_mpc.errors import UserError

    monkeypatch.setitem(registry._plugins, "skipped", {})
    good = EntryPoint("good", "os.path:join", "test.group")
    bad = EntryPoint("bad", "no_such_module_anywhere:Thing", "test.group")
    monkeypatch.setattr(registry, "entry_points", lambda group: [good, bad] if group == "test.group" else [])
    things = registry.Registry("thing", group="test.group")
    assert things.get("good") is os.path.join and things.names() == ["good"]
    again = registry.Registry("thing", group="test.group")  # a second registry meets the same broken entry point
    with pytest.raises(UserError, match=r"unknown thing 'bad'.*failed to load: bad = no_such_module_anywhere:Thing"):
        again.get("bad")
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "warning: plug-in bad = no_such_module_anywhere:Thing (entry point of test.group) failed to load and is "
        "skipped (ModuleNotFoundError: No module named 'no_such_module_anywhere')"
    ]


EXAMPLE = ROOT / "examples" / "pets_family"  # an agent family written from docs/extending.md alone


def pets(script, *args, cwd):
    return cli(script, *args, cwd=cwd, plugin="pets_family.family", folder=EXAMPLE)


@pytest.mark.slow  # `--cfg job`, a training and its resume, an evaluation and six refusals (~1 min)
def test_the_example_family_trains_resumes_and_is_evaluated_by_the_planners_that_fit(tmp_path):
    """examples/pets_family (no policy, no value): trains, resumes a stopped run, is evaluated with CEM at its
    family's defaults, and every planner that needs a policy or a value is refused with a line naming CEM."""
    run = [
        "agent=pets",
        "task=gym-pendulum",
        "seed_steps=100",
        "eval_freq=0",
        "save_freq=100",
        "threads=1",
        "pets.hidden_size=32",
        "pets.num_layers=2",
        "cem.num_candidates=50",
        "cem.top_k=5",
        "cem.iterations=2",
    ]
    env = {**CHILD_ENV, "DREAM_MPC_PLUGINS": "pets_family.family", "PYTHONPATH": f"{EXAMPLE}{os.pathsep}{ROOT}"}
    checked = subprocess.run(  # the contract, point by point (python -m dream_mpc.contract)
        [sys.executable, "-m", "dream_mpc.contract", *run], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert checked.returncode == 0 and "acted: cem; refused: " in checked.stdout, checked.stdout + checked.stderr
    shown = pets("train.py", *run, "--cfg", "job", cwd=tmp_path)
    assert shown.returncode == 0 and "pets:" in shown.stdout and "dreamer" not in shown.stdout, shown.stderr[-2000:]
    assert "terminal_value: false" in shown.stdout  # the family's planner defaults applied
    first = pets("train.py", *run, "steps=200", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = pets("train.py", *run, "steps=300", cwd=tmp_path)  # the same run, longer: goes on from its last.pt
    assert resumed.returncode == 0 and "resumed from" in resumed.stdout + resumed.stderr, resumed.stderr[-2000:]
    final = tmp_path / "logs" / "gym-pendulum" / "1" / "default" / "models" / "final.pt"
    assert torch.load(final, map_location="cpu", weights_only=True)["step"] > 300
    evaluated = pets(
        "evaluate.py",
        f"checkpoint={final}",
        "eval_episodes=1",
        f"results_dir={tmp_path / 'r'}",
        "cem.num_candidates=50",
        "cem.top_k=5",
        "cem.iterations=2",
        cwd=tmp_path,
    )
    assert evaluated.returncode == 0 and "planner=cem: return" in evaluated.stdout, evaluated.stderr[-2000:]
    for planner in ("policy", "dream", "mppi", "grad", "hybrid", "cem_policy"):
        refused = pets("evaluate.py", f"checkpoint={final}", f"planner={planner}", cwd=tmp_path)
        assert refused.returncode == 2 and "planners that fit it: cem" in refused.stderr, (planner, refused.stderr)
        assert "Traceback" not in refused.stderr
