"""Numerics of the world model: two-hot regression, the fused kernel, the batched ensemble."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dream_mpc import config
from dream_mpc.objective import Objective
from tdmpc2 import cpu_kernels, layers
from tdmpc2.math import TwoHot, symexp, symlog
from tdmpc2.world_model import WorldModel


def test_symlog_symexp_round_trip():
    x = torch.tensor([-1e4, -3.0, -0.5, 0.0, 0.2, 7.0, 1e5])
    torch.testing.assert_close(symexp(symlog(x)), x)


def test_two_hot_round_trip_and_soft_ce():
    th = TwoHot(101, -10, 10)
    x = torch.tensor([[-300.0], [-1.3], [0.0], [0.77], [42.0], [2000.0]])
    enc = th.encode(x)
    assert enc.shape == (6, 101)
    torch.testing.assert_close(enc.sum(-1), torch.ones(6))
    assert ((enc > 0).sum(-1) <= 2).all()
    # decoding the exact two-hot distribution (as logits of its log) recovers the value
    torch.testing.assert_close(th.decode(torch.log(enc + 1e-30)), x, rtol=1e-4, atol=1e-4)
    # two bins around symlog(0.77): weights by linear interpolation
    pos = (symlog(torch.tensor(0.77)) + 10) / 0.2
    lo = int(pos)
    torch.testing.assert_close(enc[3, lo], 1 - (pos - lo))
    torch.testing.assert_close(enc[3, lo + 1], pos - lo)
    # soft cross-entropy equals -sum p log softmax and is minimal at the target distribution
    logits = torch.randn(6, 101)
    expected = -(enc * torch.log_softmax(logits, -1)).sum(-1, keepdim=True)
    torch.testing.assert_close(th.soft_ce(logits, x), expected)
    assert (th.soft_ce(torch.log(enc + 1e-12), x) < th.soft_ce(logits, x)).all()


def test_scalar_regression_modes():
    x = torch.tensor([[2.0], [-5.0]])
    torch.testing.assert_close(TwoHot(0).decode(x), x)
    torch.testing.assert_close(TwoHot(1).decode(TwoHot(1).encode(x)), x)


@pytest.mark.parametrize("shape,wshape", [((300, 128), (128,)), ((4, 200, 96), (4, 1, 96))])
def test_fused_layernorm_mish_equals_the_plain_ops(shape, wshape):
    """The kernel adds the linear layer's bias c, normalises, scales and applies Mish: values and all four
    gradients as the plain ops on x + c; without gradients (planning) it runs outside autograd, same values."""
    torch.manual_seed(0)
    x = torch.randn(*shape, requires_grad=True)
    w = (torch.rand(*wshape) + 0.5).requires_grad_()
    b = (0.1 * torch.randn(*wshape)).requires_grad_()
    c = torch.randn(*wshape).requires_grad_()
    layers.set_fused_activation(True)
    assert cpu_kernels.available(), cpu_kernels._state["error"]  # CI has a C compiler: the kernel itself is tested
    y = layers.ln_mish(x, w, b, pre_bias=c)
    assert x.numel() >= layers.KERNEL_MIN_NUMEL
    y_ref = layers.ln_mish_reference(x + c, w, b)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, w, b, c), g)
    grads_ref = torch.autograd.grad(y_ref, (x, w, b, c), g)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    for a, r in zip(grads, grads_ref):
        torch.testing.assert_close(a, r, atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(layers.ln_mish(x, w, b, pre_bias=c), y_ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(layers.ln_mish(x + c, w, b), y_ref, atol=1e-5, rtol=1e-5)


NO_COMPILER = """
import warnings
import torch
from tdmpc2 import cpu_kernels, layers
x, w, b = torch.randn(64, 96), torch.rand(96) + 0.5, torch.randn(96)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    y = layers.ln_mish(x, w, b)
torch.testing.assert_close(y, layers.ln_mish_reference(x, w, b))
print(cpu_kernels.available(), "|", " / ".join(str(w.message) for w in caught))
"""


def test_without_a_c_compiler_the_plain_ops_run_with_a_warning(tmp_path):
    env = {
        **os.environ,
        "CXX": str(tmp_path / "no-such-cc"),
        "CC": str(tmp_path / "no-such-cc"),
        "DREAM_MPC_CACHE": str(tmp_path / "cache"),
        "TMPDIR": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    result = subprocess.run([sys.executable, "-c", NO_COMPILER], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    available, message = result.stdout.strip().split(" | ")
    assert available == "False" and "fused CPU kernels unavailable" in message and "no-such-cc" in message


def test_fused_kernels_in_bfloat16_and_with_non_finite_input():
    """bfloat16 storage (planning_dtype=bfloat16) computes in float32 and rounds once: as the plain ops within
    bfloat16's precision. A NaN or inf in a row gives a non-finite row (the planners' fallback relies on it),
    not a silently finite one; other rows are untouched."""
    torch.manual_seed(0)
    x, w, b, c = torch.randn(2, 300, 64), torch.rand(2, 1, 64) + 0.5, torch.randn(2, 1, 64), torch.randn(2, 1, 64)
    layers.set_fused_activation(True)
    with torch.no_grad():
        ref = layers.ln_mish_reference(x + c, w, b)
        y16 = layers.ln_mish(*(t.bfloat16() for t in (x, w, b)), pre_bias=c.bfloat16())
        assert y16.dtype == torch.bfloat16
        torch.testing.assert_close(y16.float(), ref, atol=0.05, rtol=0.02)
        s16 = layers.SimNorm(8)(x.bfloat16())
        expected = torch.softmax(x.view(2, 300, 8, 8), -1).view_as(x)
        torch.testing.assert_close(s16.float(), expected, atol=0.01, rtol=0.02)
        x[0, 3, 5], x[1, 7, 0] = float("nan"), float("inf")
        y = layers.ln_mish(x, w, b, pre_bias=c)
        s = layers.SimNorm(8)(x)
    assert not torch.isfinite(y[0, 3]).any() and not torch.isfinite(y[1, 7]).any()
    assert not torch.isfinite(s[0, 3, :8]).all() and not torch.isfinite(s[1, 7, :8]).all()
    keep = torch.ones(2, 300, dtype=torch.bool)
    keep[0, 3] = keep[1, 7] = False
    torch.testing.assert_close(y[keep], ref[keep], atol=1e-5, rtol=1e-5)


def _model(*overrides):
    cfg = config.load(["task=cartpole-swingup", "model_size=1", "threads=1", *overrides])
    config.set_env_dims(cfg, (5,), 1, 500)
    return WorldModel.of(cfg)


def test_batched_ensemble_equals_a_loop_over_members():
    model = _model("num_q=5").eval()  # no dropout
    with torch.no_grad():
        for p in model._Qs.params.parameters():
            p.normal_(0, 0.1)
    z, a = torch.randn(300, model.cfg.latent_dim), torch.rand(300, 1) * 2 - 1
    batched = model.Q(z, a, return_type="all")
    x = torch.cat([z, a], -1)
    for m in range(5):
        h = x
        for i, layer in enumerate(model._Qs.params.values()):
            h = torch.nn.functional.linear(h, layer.weight[m], layer.bias[m])
            if i < 2:
                h = torch.nn.functional.mish(
                    torch.nn.functional.layer_norm(h, (h.shape[-1],), layer.ln.weight[m], layer.ln.bias[m])
                )
        torch.testing.assert_close(batched[m], h, atol=1e-5, rtol=1e-4)


def test_fast_paths_give_the_same_update_and_plan_as_the_plain_ones():
    """Fused kernel on vs off: the same planning values and the same losses after an update."""
    results = []
    for fused in (True, False):
        layers.set_fused_activation(fused)
        torch.manual_seed(0)
        from tdmpc2.agent import TDMPC2

        cfg = config.load(["task=cartpole-swingup", "model_size=1", "device=cpu", "threads=1"])
        config.set_env_dims(cfg, (5,), 1, 500)
        agent = TDMPC2(cfg)
        torch.manual_seed(1)
        obs, act = torch.randn(4, 64, 5), torch.rand(3, 64, 1) * 2 - 1
        rew, term = torch.rand(3, 64, 1), torch.zeros(3, 64, 1)
        metrics = agent._update(obs, act, rew, term)
        torch.manual_seed(2)  # the planning objective of 512 fixed candidates (MPPI's batch size)
        z = agent.model.encode(torch.randn(512, 5))
        candidates = torch.rand(512, 4, 1) * 2 - 1
        with torch.no_grad():
            values = Objective(3)(agent.planning, z, candidates, discount=0.99)
        results.append((metrics, values))
    layers.set_fused_activation(True)
    (m1, v1), (m2, v2) = results
    for k in m1:
        assert m1[k] == pytest.approx(m2[k], rel=1e-4, abs=1e-5), k
    torch.testing.assert_close(v1, v2, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("agent", ["tdmpc2", "bmpc"])
def test_sample_action_is_the_same_draw_as_pi(agent):
    model = _model(f"agent={agent}").eval()
    z = torch.randn(7, model.cfg.latent_dim)
    for expl in (False, True) if agent == "bmpc" else (False,):
        torch.manual_seed(3)
        full = model.pi(z, expl=expl)[0]
        torch.manual_seed(3)
        torch.testing.assert_close(model.sample_action(z, expl=expl), full)


@pytest.mark.slow
def test_compiled_planning_step_gives_the_same_action():
    """compile=true wraps the planning step in torch.compile; on the deterministic policy planner the action must
    be the same as without (the compiled update is the same switch, too slow to compile in a CPU test)."""
    from tdmpc2.agent import TDMPC2

    actions = []
    for compile_ in ("false", "true"):
        torch.manual_seed(0)
        cfg = config.load(
            [
                "task=cartpole-swingup",
                "model_size=1",
                "mlp_dim=64",
                "latent_dim=32",
                "enc_dim=64",
                "device=cpu",
                "threads=1",
                "planner=policy",
                f"compile={compile_}",
            ]
        )
        config.set_env_dims(cfg, (5,), 1, 500)
        agent = TDMPC2(cfg)
        obs = torch.linspace(-1, 1, 5)
        actions.append(torch.stack([agent.act(obs * k, t0=k == 0, eval_mode=True) for k in range(3)]))
    torch.testing.assert_close(actions[0], actions[1], atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_compiled_update_gives_the_same_losses_and_compiles_once():
    """compile=true captures the update: the same losses and weights as eager (dropout off, so no random draws
    differ), and later calls reuse the compiled graphs (a recompile on every call once made it 10x slower)."""
    from torch._dynamo.utils import counters
    from torch._inductor import config as inductor_config

    from tdmpc2.agent import TDMPC2

    torch.manual_seed(1)
    batch = torch.randn(4, 32, 5), torch.rand(3, 32, 1) * 2 - 1, torch.rand(3, 32, 1), torch.zeros(3, 32, 1)
    runs = []
    for compile_ in ("false", "true"):
        torch.manual_seed(0)
        cfg = config.load(
            [
                "task=cartpole-swingup",
                "model_size=1",
                "mlp_dim=32",
                "latent_dim=16",
                "enc_dim=32",
                "num_bins=11",
                "device=cpu",
                "threads=1",
                "dropout=0",
                f"compile={compile_}",
            ]
        )
        config.set_env_dims(cfg, (5,), 1, 500)
        agent = TDMPC2(cfg)
        with inductor_config.patch(fallback_random=True):  # the compiled code draws eager's random numbers
            metrics = [agent._update(*batch) for _ in range(2)]
            graphs = counters["stats"]["unique_graphs"]
            metrics.append(agent._update(*batch))
        assert counters["stats"]["unique_graphs"] == graphs, "the compiled update recompiled"
        runs.append((metrics, [p.detach().clone() for p in agent.model.parameters()]))
    (m_eager, w_eager), (m_compiled, w_compiled) = runs
    for eager, compiled in zip(m_eager, m_compiled):
        assert eager.keys() == compiled.keys()
        for k in eager:
            assert compiled[k] == pytest.approx(eager[k], rel=1e-3, abs=1e-5), k
    for a, b in zip(w_eager, w_compiled):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_fused_simnorm_equals_the_plain_softmax():
    torch.manual_seed(0)
    x = torch.randn(600, 128, requires_grad=True)
    layers.set_fused_activation(True)
    y = layers.SimNorm(8)(x)
    ref = torch.softmax(x.view(600, 16, 8), -1).view(600, 128)
    g = torch.randn_like(y)
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(ref, x, g)[0])
    torch.testing.assert_close(y.view(600, 16, 8).sum(-1), torch.ones(600, 16))
    with torch.no_grad():  # planning's path, outside autograd
        torch.testing.assert_close(layers.SimNorm(8)(x), ref)


@pytest.mark.parametrize("extra_draws", [16, None])
def test_sparse_dropout_is_iid_bernoulli_inverted_dropout(extra_draws):
    """Q's dropout draws only the dropped positions (geometric gaps): the drop rate, its spread over the tensor,
    independence of neighbours, the 1/(1-p) scaling and the gradient are those of F.dropout. extra_draws=None
    forces the path where the first draws end before the tensor does."""
    p, n = 0.01, 4_000_000
    torch.manual_seed(0)
    x = torch.rand(4, 1000, 1000) + 1.0  # no zeros of its own
    x.requires_grad_(True)
    draws = -int(n * p + 6 * (n * p) ** 0.5) + 1 if extra_draws is None else extra_draws  # None: one draw first
    y = layers.sparse_dropout(x, p, extra_draws=draws)
    dropped = (y == 0).flatten()
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs(dropped.float().mean() - p) < 5 * sigma
    for chunk in dropped.view(8, -1):  # the same rate everywhere
        assert abs(chunk.float().mean() - p) < 5 * (8**0.5) * sigma
    both = (dropped[1:] & dropped[:-1]).float().mean()  # neighbours independent: p^2
    assert abs(both - p * p) < 5 * (p * p / n) ** 0.5
    kept = ~dropped
    torch.testing.assert_close(y.flatten()[kept], x.detach().flatten()[kept] / (1 - p))
    y.sum().backward()
    torch.testing.assert_close(x.grad.flatten(), kept.float() / (1 - p))


def test_sparse_dropout_falls_back_to_f_dropout_for_large_p():
    x = torch.ones(10_000)
    assert layers.sparse_dropout(x, 0.0) is x
    torch.manual_seed(0)
    y = layers.sparse_dropout(x, 0.5)
    torch.manual_seed(0)
    torch.testing.assert_close(y, torch.nn.functional.dropout(x, 0.5, training=True))


# ------------------------------------------------------------------ the dream_mpc:: operators themselves


def _ln_mish_inputs(E=2, N=40, D=48, dtype=torch.float32, requires_grad=False):
    torch.manual_seed(0)
    x, c, b = torch.randn(E, N, D), torch.randn(E, D), 0.1 * torch.randn(E, D)
    w = torch.rand(E, D) + 0.5
    return [t.to(dtype).requires_grad_(requires_grad) for t in (x, c, w, b)]


def _ln_mish_plain(x, c, w, b):
    return layers.ln_mish_reference(x + c.unsqueeze(1), w.unsqueeze(1), b.unsqueeze(1))


@pytest.fixture
def kernels():
    assert cpu_kernels.available(), cpu_kernels._state["error"]  # CI has a C++ compiler: the kernels are tested
    return torch.ops.dream_mpc


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dream_mpc_operators_pass_opcheck(kernels, dtype):
    """torch.library.opcheck: schema, fake (meta) implementation, autograd registration and AOT dispatch of each
    registered operator, with and without gradients."""
    for requires_grad in (True, False):
        torch.library.opcheck(kernels.ln_mish, _ln_mish_inputs(dtype=dtype, requires_grad=requires_grad))
        x = torch.randn(30, 16, 8, dtype=dtype, requires_grad=requires_grad)
        torch.library.opcheck(kernels.group_softmax, (x,))
    x, c, w, b = _ln_mish_inputs(dtype=dtype)
    torch.library.opcheck(kernels.ln_mish_backward, (torch.randn_like(x), x, c, w, b))
    y = kernels.group_softmax(torch.randn(30, 16, 8, dtype=dtype))
    torch.library.opcheck(kernels.group_softmax_backward, (torch.randn_like(y), y))


def test_dream_mpc_ln_mish_values_and_gradients_equal_the_plain_ops(kernels):
    x, c, w, b = _ln_mish_inputs(E=3, N=700, D=64, requires_grad=True)  # past the multi-threaded size
    y, ref = kernels.ln_mish(x, c, w, b), _ln_mish_plain(x, c, w, b)
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(y)
    for a, r in zip(torch.autograd.grad(y, (x, c, w, b), g), torch.autograd.grad(ref, (x, c, w, b), g)):
        torch.testing.assert_close(a, r, atol=1e-4, rtol=1e-4)
    # bfloat16 storage: float32 arithmetic, one rounding; as the plain float32 ops within bfloat16's precision
    x16, c16, w16, b16 = (t.detach().bfloat16().requires_grad_() for t in (x, c, w, b))
    y16 = kernels.ln_mish(x16, c16, w16, b16)
    assert y16.dtype == torch.bfloat16
    torch.testing.assert_close(
        y16.float(), _ln_mish_plain(*(t.detach().bfloat16().float() for t in (x, c, w, b))), atol=0.02, rtol=0.02
    )
    gx16 = torch.autograd.grad(y16, x16, g.bfloat16())[0]
    gx_ref = torch.autograd.grad(_ln_mish_plain(x16.float(), c16.float(), w16.float(), b16.float()), x16, g)[0]
    torch.testing.assert_close(gx16.float(), gx_ref.float(), atol=0.05, rtol=0.05)


def test_dream_mpc_group_softmax_values_gradients_and_non_finite_rows(kernels):
    x = torch.randn(500, 16, 8, requires_grad=True)
    y, ref = kernels.group_softmax(x), torch.softmax(x, -1)
    torch.testing.assert_close(y, ref)
    g = torch.randn_like(y)
    torch.testing.assert_close(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(ref, x, g)[0])
    with torch.no_grad():
        z = x.detach().clone()
        z[3, 2, 0], z[4, 5, 7], z[6, 1, 2], z[7, 0, 1] = float("nan"), float("nan"), float("inf"), -float("inf")
        out = kernels.group_softmax(z)
    for row in ((3, 2), (4, 5), (6, 1)):  # NaN anywhere in a group, or +inf: the group is non-finite
        assert not torch.isfinite(out[row]).all(), row
    torch.testing.assert_close(out[7, 0], torch.softmax(z[7, 0], -1))  # -inf is a zero weight, as in torch
    keep = torch.isfinite(z).all(-1)
    torch.testing.assert_close(out[keep], torch.softmax(z, -1)[keep])


def test_dream_mpc_ln_mish_keeps_non_finite_rows_non_finite(kernels):
    """Built without fast-math: a NaN or +-inf in a row makes that row's output non-finite (the planners'
    fallback relies on it), in both dtypes and both directions."""
    for dtype in (torch.float32, torch.bfloat16):
        x, c, w, b = _ln_mish_inputs(N=100, dtype=dtype)
        x[0, 3, 5], x[1, 7, 0], x[1, 9, 2] = float("nan"), float("inf"), -float("inf")
        y = kernels.ln_mish(x, c, w, b)
        gx = kernels.ln_mish_backward(torch.ones_like(x), x, c, w, b)[0]
        for out in (y, gx):
            for e, n in ((0, 3), (1, 7), (1, 9)):
                assert not torch.isfinite(out[e, n]).any(), (dtype, e, n)
        ok = torch.isfinite(x).all(-1)
        assert torch.isfinite(y[ok]).all() and ok.sum() == 2 * 100 - 3


def test_dream_mpc_operators_check_their_inputs(kernels):
    x, c, w, b = _ln_mish_inputs()
    with pytest.raises(RuntimeError, match="must be \\(E, D\\)"):
        kernels.ln_mish(x, c[:1], w, b)
    with pytest.raises(RuntimeError, match="dtype"):
        kernels.ln_mish(x, c.bfloat16(), w, b)
    with pytest.raises(RuntimeError, match="contiguous"):
        kernels.ln_mish(x.transpose(1, 2).contiguous().transpose(1, 2), c, w, b)
    with pytest.raises(RuntimeError, match="float32 or bfloat16"):
        kernels.ln_mish(*(t.double() for t in (x, c, w, b)))
    with pytest.raises(RuntimeError, match="the last dim"):
        kernels.group_softmax(torch.randn(4, 65))
    with pytest.raises(ValueError, match="must be \\(E, D\\)"):  # the Python wrapper and the fake implementation
        cpu_kernels.ln_mish(x, c[:1], w, b)
    with pytest.raises(ValueError, match="contiguous"):
        cpu_kernels.group_softmax(torch.randn(8, 4).t())


def test_dream_mpc_operators_are_visible_to_the_profiler(kernels):
    x, c, w, b = _ln_mish_inputs(requires_grad=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        kernels.ln_mish(x, c, w, b).sum().backward()
        layers.SimNorm(8)(torch.randn(300, 64))
    names = {e.key for e in prof.key_averages()}
    assert {"dream_mpc::ln_mish", "dream_mpc::ln_mish_backward", "dream_mpc::group_softmax"} <= names, names


def test_dream_mpc_operators_compile_with_fullgraph(kernels):
    """torch.compile traces through the operators (fake implementations, no graph break), forward and backward."""
    torch._dynamo.reset()

    def f(x, c, w, b):
        return kernels.group_softmax(kernels.ln_mish(x, c, w, b).view(2, 40, 6, 8)).sum()

    x, c, w, b = _ln_mish_inputs(requires_grad=True)
    compiled = torch.compile(f, fullgraph=True)
    out = compiled(x, c, w, b)
    torch.testing.assert_close(out, f(x, c, w, b))
    grads = torch.autograd.grad(out, (x, w))
    for a, r in zip(grads, torch.autograd.grad(f(x, c, w, b), (x, w))):
        torch.testing.assert_close(a, r, atol=1e-5, rtol=1e-5)
