"""DreamMPCPlanner: gradient-based MPC from a few policy-prior candidates (the paper's algorithm 1).

Per step, from the latent z of the current observation:
 1. N candidate sequences from rolling out the stochastic policy through the latent dynamics (eq. 2);
 2. mixed with the previous step's optimised candidates, shifted one step with the last repeated (eq. 3);
 3. I gradient-ascent steps of size alpha on J (eq. 6) for all candidates at once (one forward, one backward);
 4. the first action of the candidate with the highest J on the optimised actions.
Differences from the official code are options (see config.yaml `dream:` and the README).
"""
import torch

from dream_mpc.objective import Objective
from tdmpc2.planner import Planner


class DreamMPCPlanner(Planner):
    option_block = "dream"

    def __init__(self, model, cfg, discount, **overrides):
        super().__init__(model, cfg, discount)
        opt = dict(vars(getattr(cfg, self.option_block)))
        opt.update(overrides)
        self.num_candidates = int(opt["num_candidates"])
        self.horizon = int(opt["horizon"])
        self.iterations = int(opt["iterations"])
        if opt.get("large_action_iterations") and cfg.action_dim >= 20:
            self.iterations += 2
        self.lr = float(opt["lr"])
        self.reuse = float(opt.get("reuse", 0.0))
        self.score_after_step = bool(opt.get("score_after_step", True))
        self.clip = opt.get("clip", "per_candidate")
        if self.clip not in ("per_candidate", "global"):
            raise ValueError(f"{self.option_block}.clip must be 'per_candidate' or 'global', got {self.clip!r}")
        self.clamp_each_step = bool(opt.get("clamp_each_step", True))
        self.expl_noise = float(opt.get("expl_noise", 0.0))
        self.grad_clip_norm = float(cfg.grad_clip_norm)
        self.objective = Objective(self.horizon, float(opt.get("uncertainty_coef", 0.0)),
                                   opt.get("uncertainty_sign", "abs"), bool(opt.get("uncertainty_grad", True)))
        # a Q-model's terminal value Q(z_H, a_H) needs an action at the horizon too; a V-model's does not
        self.seq_len = self.horizon + (0 if model.bmpc else 1)
        self._prev = None  # (B, N, S, A): last step's optimised candidates

    def reset(self):
        self._prev = None

    # ------------------------------------------------------------------ candidates
    @torch.no_grad()
    def policy_candidates(self, z, task, expl=False):
        """Eq. 2: N sequences (B*N, S, A) sampled from the policy prior through the latent dynamics."""
        z = z.repeat_interleave(self.num_candidates, 0)
        actions = []
        for h in range(self.seq_len):
            a = self.model.sample_action(z, task, expl=expl and self.model.bmpc)
            actions.append(a)
            if h < self.seq_len - 1:
                z = self.model.next(z, a, task)
        return torch.stack(actions, 1)

    def initial_candidates(self, z, task, t0, reanalyze):
        a = self.policy_candidates(z, task, expl=reanalyze).float()  # optimised in float32 whatever the model's dtype
        B, N = z.shape[0], self.num_candidates
        prev = self._prev
        if self.reuse and not t0 and not reanalyze and prev is not None and prev.shape[0] == B:
            shifted = torch.cat([prev[:, :, 1:], prev[:, :, -1:]], dim=2)  # eq. 3: shift, repeat the last
            a = self.reuse * shifted.reshape(B * N, self.seq_len, -1) + (1 - self.reuse) * a
        return a

    # ------------------------------------------------------------------ optimisation
    def clip_gradient(self, g, B):
        """Per-candidate norm clipping (candidates are independent problems), or one norm per batch element."""
        flat = g.reshape(g.shape[0], -1) if self.clip == "per_candidate" else g.reshape(B, -1)
        scale = (self.grad_clip_norm / (flat.norm(dim=1, keepdim=True) + 1e-6)).clamp(max=1.0)
        return (flat * scale).view_as(g)

    def optimise(self, z_rows, actions, task_rows, discount, B):
        """I gradient-ascent steps on J for all candidates at once; returns (actions, J of the returned actions)."""
        J = None
        for _ in range(self.iterations):
            actions = actions.detach().requires_grad_(True)
            with torch.enable_grad():
                J = self.objective(self.model, z_rows, actions, task_rows, discount)
                (grad,) = torch.autograd.grad(J.sum(), actions)
            with torch.no_grad():
                actions = actions + self.lr * self.clip_gradient(grad, B)
                if self.clamp_each_step:
                    actions = actions.clamp(-1, 1)
        actions = actions.detach()
        if J is None or self.score_after_step:
            with torch.no_grad():
                J = self.objective(self.model, z_rows, actions, task_rows, discount)
        return actions, J.detach()

    # ------------------------------------------------------------------ the planner interface
    @torch.no_grad()
    def plan(self, z, t0=False, eval_mode=False, task=None, reanalyze=False):
        B, N, A = z.shape[0], self.num_candidates, self.cfg.action_dim
        task_rows = None if task is None else task.repeat_interleave(N)
        mask = self.action_mask(task)
        actions = self.initial_candidates(z, task_rows, t0, reanalyze)
        if mask is not None:
            actions = actions * mask.repeat_interleave(N, 0).unsqueeze(1)
        z_rows = z.repeat_interleave(N, 0)
        actions, J = self.optimise(z_rows, actions, task_rows, self.discount_for(task, N), B)
        actions = actions.clamp(-1, 1).view(B, N, self.seq_len, A)
        J = J.view(B, N)
        if not reanalyze:
            self._prev = actions
        rows = torch.arange(B, device=z.device)
        best = torch.argmax(J.nan_to_num(float("-inf")), dim=1)
        action = actions[rows, best, 0]
        first = actions[:, :, 0]
        std = first.std(1, correction=1 if N > 1 else 0).clamp(self.cfg.min_std, self.cfg.max_std)
        info = {"value": J[rows, best].unsqueeze(-1), "mean": first.mean(1), "std": std, "action": action}
        if not eval_mode and self.expl_noise:
            action = (action + self.expl_noise * torch.randn_like(action)).clamp(-1, 1)
        bad = ~(torch.isfinite(J).all(1) & torch.isfinite(actions).flatten(1).all(1))
        return self.policy_fallback(z, task, action, info, bad)
