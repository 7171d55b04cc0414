"""Statistics of planner gradients (the paper's appendix D.2): magnitude, variance and the expected signal-to-noise
ratio of eq. 17 (Parmas et al. 2023),

    ESNR = E_c[ sum_d E_k[g_d]^2 / sum_d Var_k[g_d] ],

a ratio of sums over the D entries of the gradient (all H x A actions of a sequence), with the inner mean and
(unbiased) variance over K random draws under one condition c (a start state), and the outer mean over conditions.
"""


def snr_per_condition(grads):
    """grads (C, K, D): K gradient draws for each of C conditions -> (C,) ratios |E_k g|^2 / sum_d Var_k g_d. A
    condition whose draws all agree has zero variance and an infinite ratio."""
    if grads.ndim != 3 or grads.shape[1] < 2:
        raise ValueError(f"grads must be (conditions, draws >= 2, dims), got shape {tuple(grads.shape)}")
    grads = grads.double()
    return grads.mean(1).pow(2).sum(-1) / grads.var(1, correction=1).sum(-1)


def esnr(grads):
    """The ESNR of eq. 17 (a float): the mean over conditions of `snr_per_condition`. A few nearly deterministic
    conditions dominate it (their ratio is huge), which the median in `gradient_stats` shows."""
    return float(snr_per_condition(grads).mean())


def gradient_stats(grads):
    """grads (C, K, D) -> {norm: mean L2 norm of a draw, var_within: mean over conditions of the total variance
    over draws (the planner's randomness), var_total: total variance over all draws of all conditions (the
    planner's randomness and the conditions), esnr, esnr_median: the median over conditions instead of the mean}.
    Variances are traces of covariances (sums over D)."""
    g = grads.double()
    ratios = snr_per_condition(g)
    return {
        "norm": float(g.norm(dim=-1).mean()),
        "var_within": float(g.var(1, correction=1).sum(-1).mean()),
        "var_total": float(g.reshape(-1, g.shape[-1]).var(0, correction=1).sum()),
        "esnr": float(ratios.mean()),
        "esnr_median": float(ratios.median()),
    }
