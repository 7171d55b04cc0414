"""Statistics of planner gradients (the paper's appendix D.2): magnitude, variance and the expected signal-to-noise
ratio of eq. 17 (Parmas et al. 2023),

    ESNR = E_c[ sum_d E_k[g_d]^2 / sum_d Var_k[g_d] ],

a ratio of sums over the D entries of the gradient (all H x A actions of a sequence), with the inner moments over
K random draws under one condition c (a start state), and the outer mean over conditions.

Estimating the inner moments from K draws. The sample variance s_d^2 (correction 1) is unbiased for Var[g_d], but
the squared sample mean is not unbiased for E[g_d]^2: E[mean_d^2] = E[g_d]^2 + Var[g_d] / K. The plug-in ratio
|mean|^2 / sum_d s_d^2 therefore sits at about 1/K where the true signal is zero (64 draws: 0.0156). Here the
numerator is the unbiased estimate sum_d (mean_d^2 - s_d^2 / K), so the per-condition ratio is the plug-in ratio
minus exactly 1/K. Its numerator centres on 0 where there is no signal (one condition's ratio can be negative); the
ratio itself keeps a small bias, E|m|^2 E[1/tr S] - |E g|^2 / tr(Cov) by Jensen for Gaussian draws (m and S
independent), which shrinks with the degrees of freedom of tr(S), (K - 1) x D. `unbiased=False` keeps the plug-in.

The median over conditions is the true median (the mean of the two middle values for an even count,
`torch.quantile(0.5)`), not torch.median's lower median.
"""

import torch


def _checked(grads):
    if grads.ndim != 3 or grads.shape[1] < 2:
        raise ValueError(f"grads must be (conditions, draws >= 2, dims), got shape {tuple(grads.shape)}")
    return grads.double()


def signal_and_noise(grads, unbiased=True):
    """grads (C, K, D) -> (signal (C,), noise (C,)): per condition the estimate of |E g|^2 (unbiased:
    |mean_k g|^2 - tr(S)/K; plug-in: |mean_k g|^2) and tr(S), S the unbiased sample covariance over the K draws."""
    g = _checked(grads)
    noise = g.var(1, correction=1).sum(-1)  # tr(S), unbiased for tr(Cov)
    signal = g.mean(1).pow(2).sum(-1)  # |mean|^2: biased up by tr(Cov) / K
    if unbiased:
        signal = signal - noise / g.shape[1]
    return signal, noise


def snr_per_condition(grads, unbiased=True):
    """grads (C, K, D): K gradient draws for each of C conditions -> (C,) ratios signal / noise of
    `signal_and_noise` (unbiased: the plug-in ratio minus 1/K). A condition whose draws all agree has zero
    variance: an infinite ratio (NaN if its mean is zero too)."""
    signal, noise = signal_and_noise(grads, unbiased)
    return signal / noise


def median(x):
    """The median of a 1-d tensor: the middle value, or the mean of the two middle values for an even length."""
    return torch.quantile(x.double().reshape(-1), 0.5)


def esnr(grads, unbiased=True):
    """The ESNR of eq. 17 (a float): the mean over conditions of `snr_per_condition`. A few nearly deterministic
    conditions dominate it (their ratio is huge), which the median in `gradient_stats` shows."""
    return float(snr_per_condition(grads, unbiased).mean())


def gradient_stats(grads):
    """grads (C, K, D) -> {norm: mean L2 norm of a draw, var_within: mean over conditions of the total variance
    over draws (the planner's randomness), var_total: total variance over all draws of all conditions (the
    planner's randomness and the conditions), esnr: eq. 17 with the unbiased numerator, esnr_median: the median
    over conditions instead of the mean, esnr_plugin: eq. 17 with the plug-in numerator (biased up by about 1/K)}.
    Variances are traces of covariances (sums over D)."""
    g = _checked(grads)
    ratios = snr_per_condition(g)
    return {
        "norm": float(g.norm(dim=-1).mean()),
        "var_within": float(g.var(1, correction=1).sum(-1).mean()),
        "var_total": float(g.reshape(-1, g.shape[-1]).var(0, correction=1).sum()),
        "esnr": float(ratios.mean()),
        "esnr_median": float(median(ratios)),
        "esnr_plugin": float(snr_per_condition(g, unbiased=False).mean()),
    }
