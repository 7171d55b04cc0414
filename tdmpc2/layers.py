"""Building blocks of the world model, with TD-MPC2's module names so state_dict keys match the official ones."""
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

# LayerNorm + Mish is a third of the work of a planning step or an update on a CPU, most of it in Mish's
# tanh/softplus. Above FUSED_MIN_NUMEL elements it runs as two fused kernels (forward, backward) generated once by
# torch.compile on plain tensors, using the exact identity tanh(softplus(y)) = n / (n + 2), n = e^y (e^y + 2):
# one exp instead of exp, log1p and tanh. Below it, the plain ops are faster (kernel-call overhead dominates).
FUSED_MIN_NUMEL = 32768
_fused = {"enabled": True, "fwd": None, "bwd": None, "simnorm_fwd": None, "simnorm_bwd": None}


def set_fused_activation(enabled: bool):
    """Switch the fused LayerNorm+Mish kernels on or off (off gives the plain PyTorch ops)."""
    _fused["enabled"] = bool(enabled)


def _ln_mish_fwd(x, c, w, b):
    """x (E, N, D), c, w and b (E, 1, D) -> Mish(LayerNorm(x + c) * w + b), and 1/std for backward. c is the
    preceding linear layer's bias: added here, not by addmm, whose broadcast copy of the bias into its output cost
    more than the addition inside this kernel."""
    h = x + c
    mean = h.mean(-1, keepdim=True)
    hc = h - mean
    rstd = torch.rsqrt(hc.pow(2).mean(-1, keepdim=True) + 1e-5)
    y = hc * rstd * w + b
    e = torch.exp(y.clamp(max=20.0))
    n = e * (e + 2)
    return y * n / (n + 2), rstd


def _ln_mish_bwd(g, x, c, w, b, rstd):
    h = x + c
    hhat = (h - h.mean(-1, keepdim=True)) * rstd
    y = hhat * w + b
    e = torch.exp(y.clamp(max=20.0))
    n = e * (e + 2)
    t = n / (n + 2)  # tanh(softplus(y))
    gy = g * (t + y * (e / (1 + e)) * (1 - t * t))  # Mish'(y) = t + y * sigmoid(y) * (1 - t^2)
    gw = (gy * hhat).sum(1, keepdim=True)
    gb = gy.sum(1, keepdim=True)
    ghhat = gy * w
    gx = rstd * (ghhat - ghhat.mean(-1, keepdim=True) - hhat * (ghhat * hhat).mean(-1, keepdim=True))
    return gx, gx.sum(1, keepdim=True), gw, gb


def _use_kernels(x):
    """The generated kernels pay off on large CPU tensors; inside torch.compile the plain ops fuse anyway."""
    return (_fused["enabled"] and x.numel() >= FUSED_MIN_NUMEL and x.device.type == "cpu"
            and not torch.compiler.is_compiling())


def _kernel(name, fn):
    if _fused[name] is None:
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 32)
        _fused[name] = torch.compile(fn, dynamic=True)
    return _fused[name]


def _as_3d(x, c, w, b):
    """Plain contiguous tensors of one rank, so the compiled kernel sees few distinct signatures: x (E, N, D) and
    the per-feature tensors (E, 1, D), where E is the ensemble size (1 outside an ensemble)."""
    E = w.shape[0] if w.ndim == 3 else 1
    x3 = x.detach().reshape(E, -1, x.shape[-1]).contiguous()
    return (x3, *(t.detach().reshape(E, 1, -1).contiguous() for t in (c, w, b)))


class _LNMish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, c, w, b):
        x3, c3, w3, b3 = _as_3d(x, c, w, b)
        out, rstd = _kernel("fwd", _ln_mish_fwd)(x3, c3, w3, b3)
        ctx.save_for_backward(x3, c3, w3, b3, rstd)
        ctx.shapes = (x.shape, c.shape, w.shape, b.shape)
        return out.view(x.shape)

    @staticmethod
    def backward(ctx, g):
        x3, c3, w3, b3, rstd = ctx.saved_tensors
        grads = _kernel("bwd", _ln_mish_bwd)(g.reshape(x3.shape).contiguous(), x3, c3, w3, b3, rstd)
        return tuple(gr.view(shape) for gr, shape in zip(grads, ctx.shapes))


def ln_mish_reference(x, weight, bias):
    """The plain computation: LayerNorm (eps 1e-5), affine (weight, bias broadcast over rows), Mish."""
    if weight.ndim == 1:
        return F.mish(F.layer_norm(x, (x.shape[-1],), weight, bias))
    return F.mish(F.layer_norm(x, (x.shape[-1],)) * weight + bias)


def ln_mish(x, weight, bias, pre_bias=None):
    """Mish(LayerNorm(x + pre_bias) * weight + bias); x (..., D) with weight/bias/pre_bias (D,), or x (E, N, D)
    with (E, 1, D). pre_bias is the bias of the linear layer that produced x (None: already added)."""
    if _use_kernels(x):
        c = torch.zeros_like(weight) if pre_bias is None else pre_bias
        try:
            if torch.is_grad_enabled() and any(t.requires_grad for t in (x, c, weight, bias)):
                return _LNMish.apply(x, c, weight, bias)
            # planning (no gradient): the kernel alone, without autograd's bookkeeping (~40 us a call)
            return _kernel("fwd", _ln_mish_fwd)(*_as_3d(x, c, weight, bias))[0].view(x.shape)
        except Exception as err:  # no C++ compiler here: keep working with the plain ops
            warnings.warn(f"fused LayerNorm+Mish unavailable ({type(err).__name__}: {err}); using plain ops")
            _fused["enabled"] = False
    return ln_mish_reference(x if pre_bias is None else x + pre_bias, weight, bias)


SPARSE_DROPOUT_MAX_P = 0.05


def sparse_dropout(x, p, extra_draws=16):
    """Inverted dropout (as F.dropout in training mode) that draws only the dropped positions on a CPU.

    The gaps between successive drops of an iid Bernoulli(p) mask are iid Geometric(p), so about n*p geometric
    draws give exactly the same distribution as n uniform draws: at TD-MPC2's p = 0.01 the mask costs ~100x
    fewer random numbers (F.dropout's mask was 7 % of a model-size-1 update). Larger p, and GPUs, use F.dropout."""
    if p <= 0:
        return x
    if p > SPARSE_DROPOUT_MAX_P or x.device.type != "cpu" or torch.compiler.is_compiling():  # (data-dependent loop)
        return F.dropout(x, p, training=True)
    n = x.numel()
    draws = int(n * p + 6 * (n * p) ** 0.5) + extra_draws
    pos = torch.empty(draws, dtype=torch.float64).geometric_(p).cumsum_(0).sub_(1)  # exact integers up to 2^53
    while pos[-1] < n - 1:  # the draws ended before the tensor did (probability < 1e-9 at the default margin)
        more = torch.empty(draws, dtype=torch.float64).geometric_(p).cumsum_(0).add_(pos[-1])
        pos = torch.cat([pos, more])
    out = (x * (1.0 / (1.0 - p))).reshape(-1)  # a fresh tensor: zeroing it in place is safe for autograd
    return out.index_fill_(0, pos[pos < n].long(), 0.0).view(x.shape)


def _group_softmax_fwd(x):
    return torch.softmax(x, dim=-1)


def _group_softmax_bwd(g, y):
    return y * (g - (g * y).sum(-1, keepdim=True))


class _GroupSoftmax(torch.autograd.Function):
    """Softmax over the last dim of (N, G, 8): PyTorch's kernel is slow for a last dim of 8 (a sixth of an MPPI
    step at model size 5), the generated one is several times faster."""

    @staticmethod
    def forward(ctx, x):
        y = _kernel("simnorm_fwd", _group_softmax_fwd)(x.detach().contiguous())
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return _kernel("simnorm_bwd", _group_softmax_bwd)(g.contiguous(), y)


class SimNorm(nn.Module):
    """Softmax over groups of `dim` latent units: the latent becomes a concatenation of simplices."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        shp = x.shape
        x = x.reshape(-1, shp[-1] // self.dim, self.dim)
        if _use_kernels(x):
            if torch.is_grad_enabled() and x.requires_grad:
                return _GroupSoftmax.apply(x).view(shp)
            return _kernel("simnorm_fwd", _group_softmax_fwd)(x.contiguous()).view(shp)  # planning: no autograd
        return F.softmax(x, dim=-1).view(shp)

    def __repr__(self):
        return f"SimNorm(dim={self.dim})"


class NormedLinear(nn.Linear):
    """Linear -> (dropout) -> LayerNorm -> activation (Mish unless given), with the LayerNorm as child `ln`."""

    def __init__(self, in_features, out_features, dropout=0.0, act=None):
        super().__init__(in_features, out_features)
        self.ln = nn.LayerNorm(out_features)
        self.act = act  # None means Mish (fused with the LayerNorm)
        self.dropout = nn.Dropout(dropout) if dropout else None

    def forward(self, x):
        if self.act is None and self.dropout is None:  # the bias is added inside the LayerNorm+Mish kernel
            return ln_mish(F.linear(x, self.weight), self.ln.weight, self.ln.bias, pre_bias=self.bias)
        return self.finish(F.linear(x, self.weight, self.bias))

    def finish(self, x):
        """Everything after the matrix product and its bias: dropout, LayerNorm, activation."""
        if self.dropout is not None:
            x = self.dropout(x)
        if self.act is None:
            return ln_mish(x, self.ln.weight, self.ln.bias)
        return self.act(self.ln(x))


def mlp(in_dim, mlp_dims, out_dim, act=None, dropout=0.0):
    """TD-MPC2's MLP: NormedLinear(Mish) hidden layers, dropout in the first only; last layer NormedLinear(act) or Linear."""
    dims = [in_dim] + list(mlp_dims) + [out_dim]
    layers = [NormedLinear(dims[i], dims[i + 1], dropout=dropout * (i == 0)) for i in range(len(dims) - 2)]
    layers.append(NormedLinear(dims[-2], dims[-1], act=act) if act is not None else nn.Linear(dims[-2], dims[-1]))
    return nn.Sequential(*layers)


def mlp_shared_first_input(net, z, a):
    """net(cat([z_b, a_bn])) for all b, n: z (B, Lz) is shared by the N rows a (B, N, A) of each latent, so the
    first layer's product with z runs once per latent instead of N times (MPPI's first step: 512 samples of one
    latent). Same numbers as the plain call up to float rounding; returns (B*N, out)."""
    first, Lz = net[0], z.shape[-1]
    h = F.linear(a, first.weight[:, Lz:]) + F.linear(z, first.weight[:, :Lz], first.bias).unsqueeze(1)
    x = h.reshape(-1, h.shape[-1])
    x = first.finish(x) if isinstance(first, NormedLinear) else x
    for layer in net[1:]:
        x = layer(x)
    return x


class ShiftAug(nn.Module):
    """Random shift by up to `pad` pixels (replicate padding), active in train and eval as in TD-MPC2."""

    def __init__(self, pad=3):
        super().__init__()
        self.pad = pad

    def forward(self, x):
        x = x.float()
        n, _, h, w = x.size()
        assert h == w
        x = F.pad(x, (self.pad,) * 4, "replicate")
        eps = 1.0 / (h + 2 * self.pad)
        arange = torch.linspace(-1.0 + eps, 1.0 - eps, h + 2 * self.pad, device=x.device, dtype=x.dtype)[:h]
        arange = arange.unsqueeze(0).repeat(h, 1).unsqueeze(2)
        base_grid = torch.cat([arange, arange.transpose(1, 0)], dim=2).unsqueeze(0).repeat(n, 1, 1, 1)
        shift = torch.randint(0, 2 * self.pad + 1, size=(n, 1, 1, 2), device=x.device, dtype=x.dtype)
        shift *= 2.0 / (h + 2 * self.pad)
        return F.grid_sample(x, base_grid + shift, padding_mode="zeros", align_corners=False)


class PixelPreprocess(nn.Module):
    def forward(self, x):
        return x.div(255.0).sub(0.5)


def conv_encoder(in_shape, num_channels, act):
    """The rgb encoder for (3*frames, 64, 64) uint8 input; parameter positions 2, 4, 6, 8 as in TD-MPC2."""
    assert in_shape[-1] == 64, f"rgb observations must be 64x64, got {tuple(in_shape)}"
    c = num_channels
    return nn.Sequential(
        ShiftAug(), PixelPreprocess(),
        nn.Conv2d(in_shape[0], c, 7, stride=2), nn.ReLU(inplace=False),
        nn.Conv2d(c, c, 5, stride=2), nn.ReLU(inplace=False),
        nn.Conv2d(c, c, 3, stride=2), nn.ReLU(inplace=False),
        nn.Conv2d(c, c, 3, stride=1), nn.Flatten(), act)


class _StackedLayer(nn.Module):
    """One layer of `num` ensemble members as stacked tensors: weight (num, out, in), bias (num, out)."""

    def __init__(self, num, in_dim, out_dim, norm, as_buffers=False):
        super().__init__()
        reg = self.register_buffer if as_buffers else (lambda n, t: self.register_parameter(n, nn.Parameter(t)))
        reg("weight", torch.empty(num, out_dim, in_dim))
        reg("bias", torch.zeros(num, out_dim))
        if norm:
            self.ln = nn.Module()
            reg_ln = self.ln.register_buffer if as_buffers else (
                lambda n, t: self.ln.register_parameter(n, nn.Parameter(t)))
            reg_ln("weight", torch.ones(num, out_dim))
            reg_ln("bias", torch.zeros(num, out_dim))


def stacked_mlp(num, in_dim, mlp_dims, out_dim, as_buffers=False):
    dims = [in_dim] + list(mlp_dims) + [out_dim]
    return nn.ModuleDict({str(i): _StackedLayer(num, dims[i], dims[i + 1], norm=i < len(dims) - 2, as_buffers=as_buffers)
                          for i in range(len(dims) - 1)})


def ensemble_forward(layers, x, members=None, dropout=0.0, detach=False):
    """Run every ensemble member on the same input x (..., in) as one batched computation -> (num, ..., out).

    `layers` is a stacked_mlp ModuleDict (online, or target buffers); `members` optionally selects a subset.
    `detach` runs on detached parameters (gradients reach the input only).
    The first layer is one matmul against all members' weights side by side; later layers are batched matmuls.
    """
    lead = x.shape[:-1]
    x = x.reshape(-1, x.shape[-1])
    n_layers = len(layers)
    for i, layer in enumerate(layers.values()):
        w, b = layer.weight, layer.bias
        if members is not None:
            w, b = w[members], b[members]
        if detach:
            w, b = w.detach(), b.detach()
        num, out_dim = w.shape[0], w.shape[1]
        hidden = i < n_layers - 1
        if i == 0:  # (N, in) @ (in, num*out) -> (num, N, out)
            x = F.linear(x, w.reshape(num * out_dim, -1)).view(-1, num, out_dim).transpose(0, 1).contiguous()
        else:
            x = torch.bmm(x, w.transpose(1, 2))
        b = b.unsqueeze(1)
        if i == 0 and dropout:  # dropout acts on the biased output: add the bias first
            x, b = sparse_dropout(x + b, dropout), None
        if hidden:
            lw, lb = layer.ln.weight, layer.ln.bias
            if members is not None:
                lw, lb = lw[members], lb[members]
            if detach:
                lw, lb = lw.detach(), lb.detach()
            x = ln_mish(x, lw.unsqueeze(1), lb.unsqueeze(1), pre_bias=b)  # the bias added inside the kernel
        elif b is not None:
            x = x + b
    return x.reshape(x.shape[0], *lead, x.shape[-1])
