"""Dreamer's losses: the world model's ELBO terms (reconstruction, reward, KL with free nats) and the
lambda-return of imagined trajectories that the actor ascends and the value model regresses to.

Time-major tensors throughout: (T, B, ...). Free nats are applied per step by default (dreamer-pytorch, the
paper's base code: mean_t,b max(KL_tb, free)); `mode="batch_mean"` clamps the batch mean instead (Dreamer TF:
max(mean KL, free)). Both leave KL below the free nats without gradient.
"""

import torch


def reconstruction_loss(pred, target, event_dims):
    """Squared error summed over the last `event_dims` dims (a unit-Gaussian log-likelihood up to a constant),
    averaged over the rest."""
    err = (pred - target).pow(2)
    return err.sum(dim=tuple(range(-event_dims, 0))).mean()


def reward_loss(pred, target, mask=None):
    """Mean squared error of predicted rewards (T, B); `mask` (T, B) of 0/1 leaves rows out."""
    err = (pred - target).pow(2)
    if mask is None:
        return err.mean()
    return (err * mask).sum() / mask.sum().clamp(min=1)


def gaussian_kl(mean_q, std_q, mean_p, std_p):
    """KL(N(mean_q, std_q) || N(mean_p, std_p)) of diagonal Gaussians, summed over the last dim."""
    var_ratio = (std_q / std_p).pow(2)
    mahalanobis = ((mean_q - mean_p) / std_p).pow(2)
    return 0.5 * (var_ratio + mahalanobis - 1 - var_ratio.log()).sum(-1)


def kl_loss(kl, free_nats=3.0, mode="per_step"):
    """The KL term from per-step KLs (T, B) (already summed over state dims) with free nats."""
    if mode == "per_step":
        return kl.clamp(min=free_nats).mean()
    if mode == "batch_mean":
        return kl.mean().clamp(min=free_nats)
    raise ValueError(f"free-nats mode must be per_step or batch_mean, got {mode!r}")


def lambda_return(rewards, next_values, discount=0.99, lam=0.95):
    """V_lambda of the paper's eq. 12-14 by Dreamer's backward recursion, for each step of an imagined rollout.

    rewards (H, ...): r_t of the transition s_t -> s_{t+1}; next_values (H, ...): v(s_{t+1}); `discount` a float or
    a tensor like `rewards` (gamma x continuation). The horizon bootstraps from v(s_H):
        G_{H-1} = r_{H-1} + gamma v(s_H),   G_t = r_t + gamma ((1 - lambda) v(s_{t+1}) + lambda G_{t+1}).
    Returns G (H, ...), G_t the return estimate of s_t."""
    H = rewards.shape[0]
    disc = torch.as_tensor(discount, dtype=rewards.dtype, device=rewards.device).expand_as(rewards)
    out, last = [None] * H, next_values[-1]
    for t in reversed(range(H)):
        last = rewards[t] + disc[t] * ((1 - lam) * next_values[t] + lam * last)
        out[t] = last
    return torch.stack(out)


def actor_loss(returns):
    """Maximise the imagined lambda-returns (gradients flow through the model into the actor)."""
    return -returns.mean()


def value_loss(values, returns):
    """1/2 squared error of V(s_t) to the detached lambda-returns (a unit-Gaussian log-likelihood)."""
    return 0.5 * (values - returns.detach()).pow(2).mean()
