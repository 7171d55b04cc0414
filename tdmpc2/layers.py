"""Building blocks of the world model, with TD-MPC2's module names so state_dict keys match the official ones."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from tdmpc2 import cpu_kernels

# LayerNorm + Mish is a third of the work of a planning step or an update on a CPU, most of it in Mish's
# tanh/softplus. On a CPU it runs as one fused operator per direction (torch.ops.dream_mpc.ln_mish and its
# backward, tdmpc2/cpu_kernels.cpp); the plain PyTorch ops are the fallback (no C++ compiler, `fused=false`, GPUs,
# and inside torch.compile, which fuses them itself). Below KERNEL_MIN_NUMEL elements the plain ops are as fast.
KERNEL_MIN_NUMEL = 2048
_fused = {"enabled": True}


def set_fused_activation(enabled: bool):
    """Switch the fused LayerNorm+Mish and SimNorm kernels on or off (off gives the plain PyTorch ops)."""
    _fused["enabled"] = bool(enabled)


def _use_kernels(x):
    return (
        _fused["enabled"]
        and x.numel() >= KERNEL_MIN_NUMEL
        and not torch.compiler.is_compiling()
        and cpu_kernels.supports(x)
    )


def _per_feature(t, E, D, dtype):
    """A per-feature tensor (D,), (E, 1, D) or (E, D) -> contiguous (E, D) in the op's dtype (a view when it can)."""
    t = t.to(dtype)
    t = t.reshape(E, D) if t.numel() == E * D else t.reshape(-1, D).expand(E, D)
    return t.contiguous()


def ln_mish_reference(x, weight, bias):
    """The plain computation: LayerNorm (eps 1e-5), affine (weight, bias broadcast over rows), Mish."""
    if weight.ndim == 1:
        return F.mish(F.layer_norm(x, (x.shape[-1],), weight, bias))
    return F.mish(F.layer_norm(x, (x.shape[-1],)) * weight + bias)


def ln_mish(x, weight, bias, pre_bias=None):
    """Mish(LayerNorm(x + pre_bias) * weight + bias); x (..., D) with weight/bias/pre_bias (D,), or x (E, N, D)
    with (E, 1, D). pre_bias is the bias of the linear layer that produced x (None: already added)."""
    if _use_kernels(x) and x.dtype == weight.dtype:
        E, D = weight.shape[0] if weight.ndim == 3 else 1, x.shape[-1]
        c = x.new_zeros(E, D) if pre_bias is None else _per_feature(pre_bias, E, D, x.dtype)
        x3 = x.reshape(E, -1, D).contiguous()
        out = torch.ops.dream_mpc.ln_mish(x3, c, _per_feature(weight, E, D, x.dtype), _per_feature(bias, E, D, x.dtype))
        return out.view(x.shape)
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


class SimNorm(nn.Module):
    """Softmax over groups of `dim` latent units: the latent becomes a concatenation of simplices."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        shp = x.shape
        x = x.reshape(-1, shp[-1] // self.dim, self.dim)
        if _use_kernels(x) and self.dim <= cpu_kernels.MAX_GROUP:  # PyTorch's softmax is slow for a last dim of 8
            return torch.ops.dream_mpc.group_softmax(x.contiguous()).view(shp)
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
    """TD-MPC2's MLP: NormedLinear(Mish) hidden layers, dropout in the first only; the last layer NormedLinear(act)
    or Linear."""
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
        ShiftAug(),
        PixelPreprocess(),
        nn.Conv2d(in_shape[0], c, 7, stride=2),
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, 5, stride=2),
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, 3, stride=2),
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, 3, stride=1),
        nn.Flatten(),
        act,
    )


class _StackedLayer(nn.Module):
    """One layer of `num` ensemble members as stacked tensors: weight (num, out, in), bias (num, out)."""

    def __init__(self, num, in_dim, out_dim, norm, as_buffers=False):
        super().__init__()
        reg = self.register_buffer if as_buffers else (lambda n, t: self.register_parameter(n, nn.Parameter(t)))
        reg("weight", torch.empty(num, out_dim, in_dim))
        reg("bias", torch.zeros(num, out_dim))
        if norm:
            self.ln = nn.Module()
            reg_ln = (
                self.ln.register_buffer if as_buffers else (lambda n, t: self.ln.register_parameter(n, nn.Parameter(t)))
            )
            reg_ln("weight", torch.ones(num, out_dim))
            reg_ln("bias", torch.zeros(num, out_dim))


def stacked_mlp(num, in_dim, mlp_dims, out_dim, as_buffers=False):
    dims = [in_dim] + list(mlp_dims) + [out_dim]
    return nn.ModuleDict(
        {
            str(i): _StackedLayer(num, dims[i], dims[i + 1], norm=i < len(dims) - 2, as_buffers=as_buffers)
            for i in range(len(dims) - 1)
        }
    )


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
