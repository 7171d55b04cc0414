"""Statistics of planner gradients (the paper's appendix D.2): magnitude, variance and the expected signal-to-noise
ratio of eq. 17 (Parmas et al. 2023),

    ESNR = E_c[ sum_d E_k[g_d]^2 / sum_d Var_k[g_d] ],

a ratio of sums over the D entries of the gradient (all H x A actions of a sequence), with the inner mean and
(unbiased) variance over K random draws under one condition c (a start state), and the outer mean over conditions.
"""


def esnr(grads):
    """grads (C, K, D): K gradient draws for each of C conditions -> the ESNR (a float). A condition whose draws
    all agree has zero variance and an infinite ratio (the mean is then infinite too)."""
    if grads.ndim != 3 or grads.shape[1] < 2:
        raise ValueError(f"grads must be (conditions, draws >= 2, dims), got shape {tuple(grads.shape)}")
    grads = grads.double()
    signal = grads.mean(1).pow(2).sum(-1)  # (C,)
    noise = grads.var(1, correction=1).sum(-1)  # (C,)
    return float((signal / noise).mean())


def gradient_stats(grads):
    """grads (C, K, D) -> {norm: mean L2 norm of a draw, var_within: mean over conditions of the total variance
    over draws (the planner's randomness), var_total: total variance over all draws of all conditions (the
    planner's randomness and the conditions), esnr}. Variances are traces of covariances (sums over D)."""
    g = grads.double()
    return {
        "norm": float(g.norm(dim=-1).mean()),
        "var_within": float(g.var(1, correction=1).sum(-1).mean()),
        "var_total": float(g.reshape(-1, g.shape[-1]).var(0, correction=1).sum()),
        "esnr": esnr(g),
    }
