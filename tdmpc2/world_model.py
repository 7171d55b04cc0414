"""TD-MPC2's world model (and BMPC's variant with value heads on z), with the official method names.

Parameters are named as in the official code, so `state_dict()` keys equal the official ones up to the
`_detach_Qs_params` copy and the tensordict pseudo-entries that `tdmpc2/checkpoint/` adds when writing.
"""

import torch
import torch.nn as nn

from dream_mpc.errors import UserError
from tdmpc2 import layers, math


class WorldModel(nn.Module):
    def __init__(self, cfg, value_heads="Q"):
        """`value_heads="V"`: the V(z) variant (BMPC's, chosen by its agent): value heads on z alone, a tanh-mean
        policy with clamped samples, and the exploration bounds `expl_log_std_*`."""
        super().__init__()
        self.cfg = cfg
        if value_heads not in ("Q", "V"):
            raise ValueError(f"value_heads must be 'Q' or 'V', got {value_heads!r}")
        self.v_heads = value_heads == "V"
        self.twohot = math.TwoHot(cfg.num_bins, cfg.vmin, cfg.vmax)
        A, L, T, M = cfg.action_dim, cfg.latent_dim, cfg.task_dim, cfg.mlp_dim
        if cfg.multitask:
            self._task_emb = nn.Embedding(len(cfg.tasks), T, max_norm=1)
            masks = torch.zeros(len(cfg.tasks), A)
            for i, dim in enumerate(cfg.action_dims):
                masks[i, :dim] = 1.0
            self.register_buffer("_action_masks", masks)
        simnorm = layers.SimNorm(cfg.simnorm_dim)
        if cfg.obs == "rgb":
            if L != cfg.num_channels * 16:  # the conv stack ends at 4x4 spatial: its output is the latent
                raise UserError(
                    f"obs=rgb needs latent_dim = 16 * num_channels, got latent_dim={L} and "
                    f"num_channels={cfg.num_channels}; e.g. latent_dim={cfg.num_channels * 16}"
                )
            enc = layers.conv_encoder(cfg.obs_shape["rgb"], cfg.num_channels, simnorm)
        else:
            hidden = max(cfg.num_enc_layers - 1, 1) * [cfg.enc_dim]
            enc = layers.mlp(cfg.obs_shape["state"][0] + T, hidden, L, act=simnorm)
        self._encoder = nn.ModuleDict({cfg.obs: enc})
        self._dynamics = layers.mlp(L + A + T, 2 * [M], L, act=layers.SimNorm(cfg.simnorm_dim))
        self._reward = layers.mlp(L + A + T, 2 * [M], max(cfg.num_bins, 1))
        self._termination = layers.mlp(L + T, 2 * [M], 1) if cfg.episodic else None
        self._pi = layers.mlp(L + T, 2 * [M], 2 * A)
        value_in = L + T + (0 if self.v_heads else A)
        self._Qs = nn.Module()
        self._Qs.params = layers.stacked_mlp(cfg.num_q, value_in, 2 * [M], max(cfg.num_bins, 1))
        self._target_Qs_params = layers.stacked_mlp(cfg.num_q, value_in, 2 * [M], max(cfg.num_bins, 1), as_buffers=True)
        # int64 buffers, as in the official checkpoints
        self.register_buffer("log_std_min", torch.tensor(int(cfg.log_std_min)))
        self.register_buffer("log_std_dif", torch.tensor(int(cfg.log_std_max) - int(cfg.log_std_min)))
        if self.v_heads:
            self.register_buffer("expl_log_std_min", torch.tensor(int(cfg.expl_log_std_min)))
            expl_dif = int(cfg.expl_log_std_max) - int(cfg.expl_log_std_min)
            self.register_buffer("expl_log_std_dif", torch.tensor(expl_dif))
        self.reset_parameters()

    @classmethod
    def of(cls, cfg):
        """The world model the config's agent builds (its registered class says which value heads)."""
        from dream_mpc.registry import agents

        return cls(cfg, getattr(agents.get(cfg.agent), "value_heads", "Q"))

    # ------------------------------------------------------------------ setup
    def reset_parameters(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.uniform_(m.weight, -0.02, 0.02)
        with torch.no_grad():
            for layer in self._Qs.params.values():
                nn.init.trunc_normal_(layer.weight, std=0.02)
            last = str(len(self._Qs.params) - 1)
            self._Qs.params[last].weight.zero_()
            self._reward[-1].weight.zero_()
        self.hard_update_target()

    @torch.no_grad()
    def hard_update_target(self):
        for t, p in zip(self._target_Qs_params.buffers(), self._Qs.params.parameters()):
            t.copy_(p)

    @torch.no_grad()
    def soft_update_target_Q(self):
        torch._foreach_lerp_(list(self._target_Qs_params.buffers()), list(self._Qs.params.parameters()), self.cfg.tau)

    @property
    def total_params(self):
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def __repr__(self):
        return f"{type(self).__name__}({'V(z)' if self.v_heads else 'Q(z, a)'} heads, {self.total_params:,} parameters)"

    # ------------------------------------------------------------------ the official interface
    def task_emb(self, x, task):
        """Concatenate the task embedding to x (multi-task models); task is a LongTensor broadcast over x's rows."""
        emb = self._task_emb(task.long())
        emb = emb.view(*([1] * (x.ndim - emb.ndim)), *emb.shape).expand(*x.shape[:-1], emb.shape[-1])
        return torch.cat([x, emb], dim=-1)

    def encode(self, obs, task=None):
        if self.cfg.multitask:
            obs = self.task_emb(obs, task)
        if self.cfg.obs == "rgb" and obs.ndim == 5:
            return torch.stack([self._encoder["rgb"](o) for o in obs])
        return self._encoder[self.cfg.obs](obs)

    def next(self, z, a, task=None):
        if self.cfg.multitask:
            z = self.task_emb(z, task)
        return self._dynamics(torch.cat([z, a], dim=-1))

    def reward(self, z, a, task=None):
        if self.cfg.multitask:
            z = self.task_emb(z, task)
        return self._reward(torch.cat([z, a], dim=-1))

    def termination(self, z, task=None, unnormalized=False):
        if self.cfg.multitask:
            z = self.task_emb(z, task)
        logits = self._termination(z)
        return logits if unnormalized else torch.sigmoid(logits)

    def _pi_head(self, z, task, expl):
        """Mean and log-std of the policy, log-std squashed into [log_std_min, log_std_max] (or the exploration
        bounds). The bounds are read from the config: the int64 buffers only mirror them for the checkpoint."""
        if self.cfg.multitask:
            z = self.task_emb(z, task)
        mean, log_std = self._pi(z).chunk(2, dim=-1)
        cfg = self.cfg
        lo, hi = (cfg.expl_log_std_min, cfg.expl_log_std_max) if expl else (cfg.log_std_min, cfg.log_std_max)
        return mean, torch.tanh(log_std).add(1).mul(0.5 * (hi - lo)).add(lo)

    def sample_action(self, z, task=None, expl=False):
        """A policy sample alone, the same draw as pi(z)[0] for the same RNG state (planners' rollouts need no
        log-probabilities)."""
        mean, log_std = self._pi_head(z, task, expl)
        eps = torch.randn_like(mean)
        if self.cfg.multitask:
            mask = self._action_masks[task.long()]
            mask = mask.view(*([1] * (mean.ndim - mask.ndim)), *mask.shape)
            mean, log_std, eps = mean * mask, log_std * mask, eps * mask
        if self.v_heads:
            return (torch.tanh(mean) + eps * log_std.exp()).clamp(-1, 1)
        return torch.tanh(mean + eps * log_std.exp())

    def pi(self, z, task=None, expl=False):
        """Sample from the policy prior. Returns (action, info) with info's mean, log_std, entropy, scaled_entropy."""
        mean, log_std = self._pi_head(z, task, expl)
        eps = torch.randn_like(mean)
        size = eps.shape[-1]
        if self.cfg.multitask:
            mask = self._action_masks[task.long()]
            mask = mask.view(*([1] * (mean.ndim - mask.ndim)), *mask.shape)
            mean, log_std, eps = mean * mask, log_std * mask, eps * mask
            size = mask.sum(-1, keepdim=True)
        log_prob = math.gaussian_logprob(eps, log_std)
        if self.v_heads:  # the V variant: tanh mean, clamped Gaussian sample, no squash correction
            mean = torch.tanh(mean)
            action = (mean + eps * log_std.exp()).clamp(-1, 1)
            return action, {"mean": mean, "log_std": log_std, "entropy": -log_prob, "scaled_entropy": -log_prob * size}
        scaled_log_prob = log_prob * size
        action = mean + eps * log_std.exp()
        mean, action, log_prob = math.squash(mean, action, log_prob)
        entropy_scale = scaled_log_prob / (log_prob + 1e-8)
        return action, {
            "mean": mean,
            "log_std": log_std,
            "action_prob": 1.0,
            "entropy": -log_prob,
            "scaled_entropy": -log_prob * entropy_scale,
        }

    def _values(self, x, return_type, target, detach):
        layers_ = self._target_Qs_params if target else self._Qs.params
        dropout = self.cfg.dropout if (self.training and not target) else 0.0
        if return_type == "all":
            return layers.ensemble_forward(layers_, x, dropout=dropout, detach=detach)
        members = None if self.cfg.num_q == 2 else torch.randperm(self.cfg.num_q, device=x.device)[:2]
        q = self.twohot.decode(layers.ensemble_forward(layers_, x, members=members, dropout=dropout, detach=detach))
        if return_type == "min":
            return torch.min(q[0], q[1])
        if return_type == "avg":
            return (q[0] + q[1]) / 2
        raise ValueError(f"return_type must be 'all', 'min' or 'avg', got {return_type!r}")

    def Q(self, z, a, task=None, return_type="min", target=False, detach=False):
        """Q ensemble: 'all' gives logits (num_q, ..., bins); 'min'/'avg' decode two random members."""
        assert not self.v_heads, "a model with V(z) heads: use V()"
        if self.cfg.multitask:
            z = self.task_emb(z, task)
        return self._values(torch.cat([z, a], dim=-1), return_type, target, detach)

    def V(self, z, task=None, return_type="min", target=False, detach=False):
        """The V(z) variant's value heads on z alone; same return types as Q."""
        assert self.v_heads, "a model with Q(z, a) heads: use Q()"
        if self.cfg.multitask:
            z = self.task_emb(z, task)
        return self._values(z, return_type, target, detach)
