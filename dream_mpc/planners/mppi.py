"""MPPI with a policy prior (TD-MPC2's planner), batched over B latents; BMPC's imitation target in `info`."""
import torch

from tdmpc2 import math
from tdmpc2.planner import Planner


def rollout_return(model, z, actions, task, discount, terminal=True):
    """Discounted predicted return of action sequences actions (H, B, N, A) from latents z (B, L), N sequences per
    latent, plus the discounted terminal value (TD-MPC2: Q(z_H, pi(z_H)); BMPC: V(z_H)). Returns (B*N, 1).

    The first step's N rows share their latent, so its first-layer products on z run once per latent
    (world_model.next_and_reward_shared: -5 % of the FLOPs at model size 1, -9 % at size 5). Step by step rather
    than one batched reward call (as Dream-MPC's objective does): with 512 rows per step the intermediates of one
    step stay in the CPU's L2 cache, and measured 10-20% faster than batching all steps."""
    H, B, N, A = actions.shape
    task_rows = None if task is None else task.repeat_interleave(N)
    G, disc, alive = 0.0, 1.0, 1.0
    for t in range(H):
        if t == 0:
            z, r = model.next_and_reward_shared(z, actions[0], task)
        else:
            a = actions[t].reshape(B * N, A)
            r, z = model.reward(z, a, task_rows), model.next(z, a, task_rows)
        G = G + disc * alive * model.twohot.decode(r)
        disc = disc * discount
        if model.cfg.episodic:  # rewards after a predicted termination do not count
            alive = alive * (model.termination(z, task_rows) <= 0.5).float()
    if terminal:
        G = G + disc * alive * model.terminal_value(z, task_rows)
    return G


class MPPIPlanner(Planner):
    def __init__(self, model, cfg, discount):
        super().__init__(model, cfg, discount)
        self._prev_mean = None  # (B, H, A): the last MPPI mean, shifted to warm-start the next step

    def reset(self):
        self._prev_mean = None

    def policy_trajectories(self, z, task, num, horizon, expl=False):
        """num sequences (H, B, num, A) sampled from the policy prior through the latent dynamics."""
        B = z.shape[0]
        z = z.repeat_interleave(num, 0)
        task_r = None if task is None else task.repeat_interleave(num)
        acts = []
        for t in range(horizon):
            a = self.model.sample_action(z, task_r, expl=expl and self.model.bmpc)
            acts.append(a)
            if t < horizon - 1:
                z = self.model.next(z, a, task_r)
        return torch.stack(acts).view(horizon, B, num, -1)

    @torch.no_grad()
    def plan(self, z, t0=False, eval_mode=False, task=None, horizon=None, update_prev_mean=True, reanalyze=False):
        cfg = self.cfg
        H = horizon or cfg.horizon
        B, A = z.shape[0], cfg.action_dim
        N, P, K = cfg.num_samples, cfg.num_pi_trajs, cfg.num_elites
        mask = self.action_mask(task)
        actions = torch.empty(H, B, N, A, device=z.device, dtype=z.dtype)
        if P > 0:
            actions[:, :, :P] = self.policy_trajectories(z, task, P, H, expl=reanalyze)
        discount = self.discount_for(task, N)
        mean = torch.zeros(H, B, A, device=z.device)
        std = torch.full((H, B, A), float(cfg.max_std), device=z.device)
        if not t0 and self._prev_mean is not None and self._prev_mean.shape[1] == B and self._prev_mean.shape[0] == H:
            mean[:-1] = self._prev_mean[1:]
        for _ in range(cfg.iterations):
            noise = torch.randn(H, B, N - P, A, device=z.device)
            actions[:, :, P:] = (mean.unsqueeze(2) + std.unsqueeze(2) * noise).clamp(-1, 1)
            if mask is not None:
                actions = actions * mask.view(1, B, 1, A)
            value = rollout_return(self.model, z, actions, task, discount)
            value = value.nan_to_num(0).view(B, N)
            elite_value, elite_idxs = torch.topk(value, K, dim=1)  # (B, K)
            elite_actions = torch.gather(actions, 2, elite_idxs.view(1, B, K, 1).expand(H, B, K, A))
            score = torch.exp(cfg.temperature * (elite_value - elite_value.max(1, keepdim=True).values))
            score = score / score.sum(1, keepdim=True)
            w = score.view(1, B, K, 1)
            denom = score.sum(1).view(1, B, 1) + 1e-9
            mean = (w * elite_actions).sum(2) / denom
            std = ((w * (elite_actions - mean.unsqueeze(2)).pow(2)).sum(2) / denom).sqrt().clamp(cfg.min_std, cfg.max_std)
            if mask is not None:
                mean, std = mean * mask.unsqueeze(0), std * mask.unsqueeze(0)
        idx = math.gumbel_softmax_sample(score, dim=1)  # (B,): an elite drawn in proportion to its score
        rows = torch.arange(B, device=z.device)
        chosen = elite_actions[0, rows, idx]  # first action of the chosen elite (B, A)
        action = chosen
        if not eval_mode:
            action = action + std[0] * torch.randn(B, A, device=z.device)
        if update_prev_mean:
            self._prev_mean = mean.clone()
        action = action.clamp(-1, 1)
        info = {"value": elite_value[rows, idx].unsqueeze(-1), "mean": chosen, "std": std[0], "mppi_mean": mean[0]}
        bad = ~torch.isfinite(action).all(-1)
        return self.policy_fallback(z, task, action, info, bad)
