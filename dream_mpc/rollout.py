"""Imagined rollouts for gradient-based planning: the dynamics run step by step (each latent needs the previous
one), then the reward head runs once over all H steps and rows. For a few candidates this reads the reward
weights once instead of H times and halves the kernel calls (measured 10-15% faster for Dream-MPC at size 5);
MPPI's 512 rows per step are faster step by step (tdmpc2/mppi.py).
"""
import torch


def latent_rollout(model, z, actions, task=None):
    """Latents z_0..z_H (H+1, R, L) from z (R, L) under time-major actions (H, R, A)."""
    zs = [z]
    for t in range(actions.shape[0]):
        zs.append(model.next(zs[-1], actions[t], task))
    return torch.stack(zs)


def discounts(discount, steps, like):
    """gamma^0..gamma^steps as (steps+1, 1, 1), or (steps+1, R, 1) for per-row (multi-task) discounts (R, 1)."""
    powers = torch.arange(steps + 1, device=like.device, dtype=like.dtype).view(-1, 1, 1)
    return torch.as_tensor(discount, device=like.device, dtype=like.dtype).unsqueeze(0) ** powers


def predicted_return(model, zs, actions, task=None, discount=0.99):
    """sum_t gamma^t r(z_t, a_t) over the rollout, with episodic termination masking; returns (G (R, 1),
    gamma^H * alive_H (R, 1) or scalar-like) so callers add their own terminal value."""
    H = actions.shape[0]
    rewards = model.twohot.decode(model.reward(zs[:-1], actions, task))  # (H, R, 1)
    disc = discounts(discount, H, rewards)
    if model.cfg.episodic:  # a reward counts only while no termination was predicted before it
        ended = (model.termination(zs[1:], task) > 0.5).float().cumsum(0).clamp(max=1)
        disc = disc * torch.cat([torch.ones_like(ended[:1]), 1 - ended], dim=0)
    return (disc[:H] * rewards).sum(0), disc[H]
