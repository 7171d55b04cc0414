"""Checkpoints: our writer against the official layout (reference 3.2), the readers of every official layout
(3.3 release, 3.5 pre-release, missing targets), infer_spec, and load_agent with its errors.

Old layouts are made here from our own model's weights, following the reference tables, so a loaded file can
be compared with the weights it came from.
"""

import re
from pathlib import Path

import pytest
import torch

import dream_mpc
from dream_mpc import checkpoint, config
from dream_mpc.errors import UserError
from tdmpc2 import checkpoint as tdmpc2_ckpt
from tdmpc2.agent import TDMPC2
from tdmpc2.bmpc import BMPC
from tdmpc2.checkpoint.tasks import mt_action_dim
from tdmpc2.math import symlog
from tdmpc2.world_model import WorldModel

PARTS = ("weight", "bias", "ln.weight", "ln.bias")
WALKER = (24, 6)
TINY = ("mlp_dim=64", "latent_dim=32", "enc_dim=48", "num_q=3")  # a custom arch: builds instantly


# ---------------------------------------------------------------------------------------------------- helpers
def make_cfg(task="walker-walk", dims=WALKER, overrides=()):
    cfg = config.load([f"task={task}", "device=cpu", *overrides])
    if cfg.multitask:
        action_dims = [mt_action_dim(t) for t in cfg.tasks]
        lengths = [100 if t.startswith("mw-") else 500 for t in cfg.tasks]
        return config.set_env_dims(cfg, (dims[0],), max(action_dims), 500, action_dims, lengths)
    return config.set_env_dims(cfg, (dims[0],), dims[1], 500)


@torch.no_grad()
def perturb(model, seed=0):
    """Random values everywhere (the zero-initialised heads would hide mistakes), target != online."""
    torch.manual_seed(seed)
    for name, t in model.state_dict(keep_vars=True).items():
        if t.is_floating_point() and name != "_action_masks":
            t.normal_(0, 0.2)
    return model


def small_model(overrides=TINY, task="walker-walk", dims=WALKER, seed=0):
    return perturb(WorldModel.of(make_cfg(task, dims, overrides)).eval(), seed)


def small_agent(overrides=TINY, task="walker-walk", dims=WALKER):
    agent = TDMPC2(make_cfg(task, dims, overrides))
    perturb(agent.model)
    return agent


@torch.no_grad()
def outputs(model, task=None, transform=None):
    """Everything the model computes, deterministically (eval mode; the policy mean needs no noise)."""
    torch.manual_seed(1)
    obs = torch.randn(4, model.cfg.obs_shape["state"][0])
    a = torch.rand(4, model.cfg.action_dim) * 2 - 1
    z = model.encode(obs, task) if transform is None else model._encoder["state"](transform(obs))
    out = {
        "z": z,
        "next": model.next(z, a, task),
        "reward": model.reward(z, a, task),
        "pi_mean": model.pi(z, task)[1]["mean"],
    }
    if model.v_heads:
        out.update(v=model.V(z, task, "all"), v_target=model.V(z, task, "all", target=True))
    else:
        out.update(q=model.Q(z, a, task, "all"), q_target=model.Q(z, a, task, "all", target=True))
    return out


def assert_same_outputs(a, b):
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def assert_same_weights(model, reference):
    ours, ref = model.state_dict(), reference.state_dict()
    assert ours.keys() == ref.keys()
    for k in ref:
        assert torch.equal(ours[k], ref[k]), k


def to_release(official):
    """Current official layout -> Oct 2023 release (reference 3.3): flat `_Qs.params.N` / `_target_Qs.params.N`,
    no detach copy, no pseudo-entries, no log-std buffers, no action masks."""
    out = {}
    for k, v in official.items():
        if (
            k.startswith("_detach_Qs_params.")
            or k.endswith(("__batch_size", "__device"))
            or k in ("log_std_min", "log_std_dif", "_action_masks")
        ):
            continue
        for new, old in (("_Qs.params.", "_Qs.params."), ("_target_Qs_params.", "_target_Qs.params.")):
            if k.startswith(new):
                layer, part = k[len(new) :].split(".", 1)
                k = f"{old}{4 * int(layer) + PARTS.index(part)}"
                break
        out[k] = v
    return out


def to_prerelease(release):
    """Release -> pre-release MLP indices (reference 3.5): Linear/LayerNorm at positions 3i/3i+1, the encoder
    shifted by one, the dynamics nested under `_dynamics.0` with its last LayerNorm at `_dynamics.1`."""
    last = max(int(k.split(".")[1]) for k in release if k.startswith("_dynamics."))
    out = {}
    for k, v in release.items():
        m = re.fullmatch(r"(_encoder\.state|_dynamics|_reward|_pi)\.(\d+)\.(ln\.)?(weight|bias)", k)
        if m:
            module, layer, ln, name = m.group(1), int(m.group(2)), m.group(3), m.group(4)
            pos = 3 * layer + (1 if ln else 0)
            if module == "_encoder.state":
                k = f"_encoder.state.{pos + 1}.{name}"
            elif module == "_dynamics":
                k = f"_dynamics.1.{name}" if ln and layer == last else f"_dynamics.0.{pos}.{name}"
            else:
                k = f"{module}.{pos}.{name}"
        out[k] = v
    return out


# ---------------------------------------------------------------------------------------------------- writing
def test_official_layout_keys_and_shapes():
    """dog-run 5M, exactly as reference 3.2 lists it."""
    model = WorldModel(make_cfg("dog-run", (223, 38), ["model_size=5"]))
    sd = tdmpc2_ckpt.official_state_dict(model)
    assert sd["log_std_min"].dtype == torch.int64 and int(sd["log_std_min"]) == -10
    assert sd["log_std_dif"].dtype == torch.int64 and int(sd["log_std_dif"]) == 12
    expected = {
        "_encoder.state.0.weight": (256, 223),
        "_encoder.state.1.weight": (512, 256),
        "_dynamics.0.weight": (512, 550),
        "_dynamics.1.weight": (512, 512),
        "_dynamics.2.weight": (512, 512),
        "_dynamics.2.ln.weight": (512,),
        "_reward.0.weight": (512, 550),
        "_reward.2.weight": (101, 512),
        "_reward.2.bias": (101,),
        "_pi.0.weight": (512, 512),
        "_pi.2.weight": (76, 512),
        "_pi.2.bias": (76,),
    }
    for k, shape in expected.items():
        assert tuple(sd[k].shape) == shape, k
    q_shapes = {
        "0.weight": (5, 512, 550),
        "0.bias": (5, 512),
        "0.ln.weight": (5, 512),
        "0.ln.bias": (5, 512),
        "1.weight": (5, 512, 512),
        "1.bias": (5, 512),
        "1.ln.weight": (5, 512),
        "1.ln.bias": (5, 512),
        "2.weight": (5, 101, 512),
        "2.bias": (5, 101),
    }
    for prefix in tdmpc2_ckpt.ENSEMBLE_PREFIXES:
        keys = {k[len(prefix) + 1 :] for k in sd if k.startswith(prefix + ".")}
        assert keys == set(q_shapes) | {"__batch_size", "__device"}, prefix
        for k, shape in q_shapes.items():
            assert tuple(sd[f"{prefix}.{k}"].shape) == shape
        assert sd[f"{prefix}.__batch_size"] == torch.Size([5]) and sd[f"{prefix}.__device"] is None
    mlp_keys = {k for k in sd if not k.startswith(tdmpc2_ckpt.ENSEMBLE_PREFIXES)}
    assert len(mlp_keys) == 2 + 8 + 12 + 10 + 10  # log-std buffers, encoder, dynamics, reward, pi
    assert tdmpc2_ckpt.detect_layout(sd) == "current"


def test_save_load_agent_round_trip(tmp_path):
    agent = small_agent(("model_size=1",))
    path = tmp_path / "walker.pt"
    checkpoint.save(path, agent, step=123)
    obj = torch.load(path, weights_only=True)  # what the official loader would see, without pickled code
    assert obj["step"] == 123 and obj["model"]["_Qs.params.__batch_size"] == torch.Size([2])
    loaded = dream_mpc.load_agent(path, device="cpu")
    assert loaded.checkpoint_info["layout"] == "current"
    assert loaded.checkpoint_info["task"] == "walker-walk" and loaded.checkpoint_info["model_size"] == 1
    assert (loaded.cfg.num_q, loaded.cfg.latent_dim, loaded.cfg.iterations) == (2, 128, agent.cfg.iterations)
    assert all(t.device.type == "cpu" for t in loaded.model.state_dict().values())
    assert_same_weights(loaded.model, agent.model)
    assert_same_outputs(outputs(loaded.model), outputs(agent.model))


def test_saved_config_is_preferred_unless_overridden(tmp_path):
    agent = small_agent((*TINY, "horizon=5", "planner=policy", "dream.lr=0.3"))
    checkpoint.save(tmp_path / "a.pt", agent)
    loaded = checkpoint.load_agent(tmp_path / "a.pt", device="cpu", overrides=["horizon=4"])
    assert (loaded.cfg.horizon, loaded.cfg.planner, loaded.cfg.dream.lr) == (4, "policy", 0.3)


def test_map_location(tmp_path):
    agent = small_agent()
    checkpoint.save(tmp_path / "a.pt", agent)
    obj = checkpoint.read(tmp_path / "a.pt", device="cpu")
    assert all(v.device.type == "cpu" for v in obj["model"].values() if torch.is_tensor(v))


# ---------------------------------------------------------------------------------------------------- layouts
def test_current_layout_converts_to_our_keys():
    model = small_model()
    converted = tdmpc2_ckpt.convert({"model": tdmpc2_ckpt.official_state_dict(model)})
    assert converted.keys() == model.state_dict().keys()


def test_release_layout_loads(tmp_path):
    model = small_model()
    release = to_release(tdmpc2_ckpt.official_state_dict(model))
    assert "_Qs.params.9" in release and "_target_Qs.params.9" in release and "log_std_min" not in release
    assert tdmpc2_ckpt.detect_layout(release) == "release"
    fresh = small_model(seed=5)
    assert tdmpc2_ckpt.load_weights(fresh, release) == "release"
    assert_same_weights(fresh, model)
    torch.save({"model": release, "metadata": {"tasks": ["walker-walk"]}}, tmp_path / "release.pt")
    loaded = checkpoint.load_agent(tmp_path / "release.pt", task="walker-walk", env_dims=WALKER, device="cpu")
    assert loaded.checkpoint_info["layout"] == "release" and loaded.checkpoint_info["metadata"]["tasks"]
    assert_same_outputs(outputs(loaded.model), outputs(model))


def test_prerelease_layout_loads(tmp_path):
    model = small_model()
    pre = to_prerelease(to_release(tdmpc2_ckpt.official_state_dict(model)))
    assert len(pre) == 60  # reference 3.5: 60 keys per single-task file
    assert {
        "_encoder.state.1.weight",
        "_encoder.state.2.weight",
        "_encoder.state.4.weight",
        "_encoder.state.5.bias",
        "_dynamics.0.0.weight",
        "_dynamics.0.1.weight",
        "_dynamics.0.3.weight",
        "_dynamics.0.4.weight",
        "_dynamics.0.6.weight",
        "_dynamics.1.weight",
        "_reward.6.weight",
        "_pi.4.bias",
    } <= pre.keys()
    assert tdmpc2_ckpt.detect_layout(pre) == "prerelease"

    fresh = WorldModel.of(model.cfg).eval()
    assert tdmpc2_ckpt.load_weights(fresh, pre, prerelease_input="identity") == "prerelease"
    assert_same_weights(fresh, model) and fresh.input_transform is None
    assert_same_outputs(outputs(fresh), outputs(model))

    tdmpc2_ckpt.load_weights(fresh, pre)  # symlog by default: applied before the state encoder
    assert fresh.input_transform == "symlog"
    assert_same_outputs(outputs(fresh), outputs(model, transform=symlog))
    with pytest.raises(UserError, match="prerelease_input"):
        tdmpc2_ckpt.load_weights(fresh, pre, prerelease_input="tanh")


def test_prerelease_transform_survives_save(tmp_path):
    model = small_model()
    pre = to_prerelease(to_release(tdmpc2_ckpt.official_state_dict(model)))
    torch.save({"model": pre}, tmp_path / "cartpole-like.pt")
    first = checkpoint.load_agent(tmp_path / "cartpole-like.pt", task="walker-walk", env_dims=WALKER, device="cpu")
    assert first.checkpoint_info["layout"] == "prerelease" and first.model.input_transform == "symlog"
    checkpoint.save(tmp_path / "ours.pt", first)
    second = checkpoint.load_agent(tmp_path / "ours.pt", device="cpu")
    assert second.checkpoint_info["layout"] == "current" and second.model.input_transform == "symlog"
    assert_same_outputs(outputs(second.model), outputs(model, transform=symlog))
    resumed = WorldModel.of(second.cfg).eval()  # as a trainer resumes: the whole file object into a fresh model
    tdmpc2_ckpt.load_weights(resumed, checkpoint.read(tmp_path / "ours.pt"))
    assert resumed.input_transform == "symlog"


def test_missing_target_copies_online():
    model = small_model()
    release = {
        k: v for k, v in to_release(tdmpc2_ckpt.official_state_dict(model)).items() if not k.startswith("_target_Qs.")
    }
    fresh = small_model(seed=5)
    with pytest.warns(UserWarning, match="no target Q ensemble"):
        tdmpc2_ckpt.load_weights(fresh, release)
    for online, target in zip(fresh._Qs.params.parameters(), fresh._target_Qs_params.buffers()):
        assert torch.equal(online, target)
    assert torch.equal(fresh._Qs.params["0"].weight, model._Qs.params["0"].weight)


def test_mt80_round_trip(tmp_path):
    agent = small_agent(("model_size=1",), task="mt80", dims=(39, 6))
    assert agent.model.total_params == 1_435_067
    checkpoint.save(tmp_path / "mt80-1M.pt", agent)
    loaded = checkpoint.load_agent(tmp_path / "mt80-1M.pt", device="cpu")
    assert loaded.cfg.task == "mt80" and loaded.cfg.task_dim == 96 and loaded.cfg.action_dims == agent.cfg.action_dims
    task = torch.tensor([0, 3, 30, 79])
    assert_same_weights(loaded.model, agent.model)
    assert_same_outputs(outputs(loaded.model, task), outputs(agent.model, task))

    # an official multi-task file without our config: the task set comes from the number of embeddings
    release = to_release(tdmpc2_ckpt.official_state_dict(agent.model))
    assert "_task_emb.weight" in release and "_action_masks" not in release
    torch.save({"model": release}, tmp_path / "bare.pt")
    spec = tdmpc2_ckpt.infer_spec(release)
    assert (spec["task_set"], spec["num_tasks"], spec["task_dim"], spec["obs_dim"]) == ("mt80", 80, 96, 39)
    official = checkpoint.load_agent(tmp_path / "bare.pt", device="cpu")
    assert official.cfg.task == "mt80" and official.checkpoint_info["task_source"] == "task embeddings"
    assert torch.equal(official.model._action_masks, agent.model._action_masks)


def test_bmpc_round_trip(tmp_path):
    model = small_model(("agent=bmpc", *TINY))
    sd = tdmpc2_ckpt.official_state_dict(model)
    assert sd["_Qs.params.0.weight"].shape == (3, 64, 32)  # V heads: input z only (latent 32, no action)
    assert int(sd["expl_log_std_min"]) == -2 and int(sd["expl_log_std_dif"]) == 3
    spec = tdmpc2_ckpt.infer_spec(sd)
    assert (spec["agent"], spec["value_heads"], spec["num_q"]) == ("bmpc", "V", 3)
    assert (spec["log_std_min"], spec["log_std_max"]) == (-3, 1)
    fresh = small_model(("agent=bmpc", *TINY), seed=5)
    tdmpc2_ckpt.load_weights(fresh, {"model": sd})
    assert_same_weights(fresh, model)
    assert_same_outputs(outputs(fresh), outputs(model))

    torch.save({"model": sd}, tmp_path / "bmpc.pt")
    agent = checkpoint.load_agent(tmp_path / "bmpc.pt", task="walker-walk", env_dims=WALKER, device="cpu")
    assert isinstance(agent, BMPC) and agent.cfg.agent == "bmpc"
    assert_same_weights(agent.model, model)
    with pytest.raises(UserError, match="not supported yet"):
        checkpoint.load_agent(
            tmp_path / "bmpc.pt", task="walker-walk", env_dims=WALKER, device="cpu", overrides=["agent=tdmpc2"]
        )


# ---------------------------------------------------------------------------------------------------- spec
def test_infer_spec_model_sizes():
    for size, num_q, latent in ((1, 2, 128), (5, 5, 512)):
        model = WorldModel(make_cfg(overrides=[f"model_size={size}"]))
        spec = tdmpc2_ckpt.infer_spec(tdmpc2_ckpt.official_state_dict(model))
        assert (spec["model_size"], spec["num_q"], spec["latent_dim"]) == (size, num_q, latent)
        assert (spec["obs_dim"], spec["action_dim"], spec["task_dim"], spec["agent"]) == (24, 6, 0, "tdmpc2")
        assert not spec["episodic"] and spec["num_bins"] == 101
    custom = WorldModel(make_cfg(overrides=[*TINY, "episodic=true"]))
    spec = tdmpc2_ckpt.infer_spec(tdmpc2_ckpt.official_state_dict(custom))
    assert spec["model_size"] is None and spec["episodic"]
    assert (spec["num_q"], spec["mlp_dim"], spec["latent_dim"], spec["enc_dim"]) == (3, 64, 32, 48)


def test_infer_spec_rgb():
    cfg = make_cfg(overrides=["obs=rgb", "num_channels=8", "latent_dim=128", "mlp_dim=64"])
    cfg.obs_shape = {"rgb": (9, 64, 64)}
    spec = tdmpc2_ckpt.infer_spec(tdmpc2_ckpt.official_state_dict(WorldModel(cfg)))
    assert (spec["obs"], spec["obs_shape"], spec["obs_dim"], spec["num_channels"]) == ("rgb", (9, 64, 64), None, 8)
    assert (spec["latent_dim"], spec["action_dim"], spec["model_size"]) == (128, 6, None)


def test_unknown_task_warns_and_loads(tmp_path):
    torch.save(tdmpc2_ckpt.official_state_dict(small_model()), tmp_path / "model.pt")  # a bare state_dict
    with pytest.warns(UserWarning, match="does not say which task"):
        agent = checkpoint.load_agent(tmp_path / "model.pt", device="cpu")
    assert agent.checkpoint_info["task"] is None and agent.cfg.obs_shape == {"state": (24,)}
    assert agent.cfg.episode_length == 500


# ---------------------------------------------------------------------------------------------------- errors
def test_task_dims_mismatch_names_both(tmp_path):
    torch.save({"model": tdmpc2_ckpt.official_state_dict(small_model())}, tmp_path / "w.pt")
    with pytest.raises(UserError) as err:
        checkpoint.load_agent(tmp_path / "w.pt", task="cheetah-run", env_dims=(17, 6))
    msg = str(err.value)
    assert "observation dim 24 and action dim 6" in msg and "observation dim 17 and action dim 6" in msg
    assert "cheetah-run" in msg


def test_task_dims_from_dm_control(tmp_path):
    pytest.importorskip("dm_control")
    assert tdmpc2_ckpt.env_dims("walker-walk") == WALKER
    torch.save({"model": tdmpc2_ckpt.official_state_dict(small_model())}, tmp_path / "w.pt")
    with pytest.raises(UserError, match="observation dim 5 and action dim 1"):
        checkpoint.load_agent(tmp_path / "w.pt", task="cartpole-swingup")


def test_task_from_file_name(tmp_path):
    torch.save({"model": tdmpc2_ckpt.official_state_dict(small_model())}, tmp_path / "walker-run-2.pt")
    agent = checkpoint.load_agent(tmp_path / "walker-run-2.pt", env_dims=WALKER, device="cpu")
    assert agent.cfg.task == "walker-run" and agent.checkpoint_info["task_source"] == "file name"


def test_single_and_multi_task_mismatch(tmp_path):
    torch.save({"model": tdmpc2_ckpt.official_state_dict(small_model())}, tmp_path / "single.pt")
    with pytest.raises(UserError, match="single-task model, but task=mt80"):
        checkpoint.load_agent(tmp_path / "single.pt", task="mt80")
    mt = small_model(task="mt80", dims=(39, 6))
    torch.save({"model": tdmpc2_ckpt.official_state_dict(mt)}, tmp_path / "mt.pt")
    with pytest.raises(UserError, match="multi-task model"):
        checkpoint.load_agent(tmp_path / "mt.pt", task="walker-walk")
    with pytest.raises(UserError, match="80 task embeddings"):
        checkpoint.load_agent(tmp_path / "mt.pt", task="mt30")


def test_unreadable_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        checkpoint.load_agent(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="cannot read"):
        checkpoint.load_agent(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a checkpoint of any registered agent"):
        checkpoint.load_agent(tmp_path / "other.pt")


def test_mismatched_weights_are_a_user_error():
    with pytest.raises(UserError, match="other shapes"):
        tdmpc2_ckpt.load_weights(small_model(), tdmpc2_ckpt.official_state_dict(small_model(("model_size=1",))))


# ---------------------------------------------------------------------------------------------------- sizes
@pytest.mark.parametrize(
    "task,dims,count",
    [("walker-walk", WALKER, 4_960_618), ("dog-run", (223, 38), 5_159_082), ("mt80", (39, 6), 5_389_930)],
)
def test_parameter_counts(task, dims, count):
    assert WorldModel(make_cfg(task, dims, ["model_size=5"])).total_params == count


# ---------------------------------------------------------------------------------------------------- safety
class RunsCode:
    """A pickle that runs code when loaded: unpickling calls `fn(*args)`, which creates `target`."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize("how", ["os.system", "open"])
def test_a_pickle_that_runs_code_is_refused(tmp_path, how):
    import os

    target = tmp_path / "pwned"
    payload = RunsCode(os.system, (f"touch {target}",)) if how == "os.system" else RunsCode(open, (str(target), "w"))
    torch.save({"model": tdmpc2_ckpt.official_state_dict(small_model()), "payload": payload}, tmp_path / "evil.pt")
    for load in (
        checkpoint.read,
        lambda p: checkpoint.load_agent(p, task="walker-walk", env_dims=WALKER, device="cpu"),
    ):
        with pytest.raises(UserError) as err:
            load(tmp_path / "evil.pt")
        msg = str(err.value)
        assert re.search(r"refusing to load .*evil.pt: it names (posix\.system|io\.open)", msg), msg
        assert "trust_checkpoint=true" in msg and "\n" not in msg
        assert not target.exists()  # the code never ran


def test_trusted_files_load_with_a_warning(tmp_path):
    import fractions

    weights = tdmpc2_ckpt.official_state_dict(small_model())
    torch.save(
        {"model": weights, "ratio": fractions.Fraction(1, 3)}, tmp_path / "old.pt"
    )  # a harmless Python object that weights_only does not know
    with pytest.raises(UserError, match="it names fractions.Fraction"):
        checkpoint.read(tmp_path / "old.pt")
    with pytest.warns(UserWarning, match="weights_only=False"):
        agent = checkpoint.load_agent(
            tmp_path / "old.pt", task="walker-walk", env_dims=WALKER, device="cpu", trusted=True
        )
    assert agent.checkpoint_info["layout"] == "current"


def test_official_multitask_metadata_loads_without_trust(tmp_path):
    """Official multi-task files carry OmegaConf containers under "metadata" (reference 3.1): the OmegaConf
    classes are allowlisted, everything else stays refused, and the metadata comes back as plain data."""
    from omegaconf import OmegaConf

    agent = small_agent(("model_size=1",), task="mt30", dims=(24, 6))
    release = to_release(tdmpc2_ckpt.official_state_dict(agent.model))
    metadata = OmegaConf.create(
        {
            "tasks": list(agent.cfg.tasks),
            "cfg": {"lr": 3e-4, "steps": 10, "mpc": True, "note": None, "alias": "${cfg.lr}"},
        }
    )
    torch.save({"model": release, "metadata": metadata}, tmp_path / "mt30-1M.pt")
    loaded = checkpoint.load_agent(tmp_path / "mt30-1M.pt", device="cpu")
    meta = loaded.checkpoint_info["metadata"]
    assert type(meta) is dict and meta["tasks"] == list(agent.cfg.tasks) and meta["cfg"]["alias"] == "${cfg.lr}"
    assert loaded.cfg.task == "mt30"
    assert_same_weights(loaded.model, agent.model)
    # an OmegaConf container holding another class (here a path) names it and needs trust
    torch.save({"model": release, "metadata": OmegaConf.create({"dir": Path("/tmp")})}, tmp_path / "path.pt")
    with pytest.raises(UserError, match="refusing to load .*pathlib"):
        checkpoint.read(tmp_path / "path.pt")
