"""DreamMPCPlanner (`planner=dream`): gradient-based MPC from a few policy-prior candidates (the paper's algorithm 1).

Per step, from the latent z of the current observation:
 1. N candidate sequences from rolling out the stochastic policy through the latent dynamics (eq. 2);
 2. mixed with the previous step's optimised candidates, shifted one step with the last repeated (eq. 3);
 3. I gradient-ascent steps of size alpha on J (eq. 6) for all candidates at once (one forward, one backward);
 4. the first action of the candidate with the highest J on the optimised actions.
Differences from the official code are options (`DreamOptions`, docs/planners.md).
"""

from dataclasses import dataclass

import torch

from dream_mpc import adaptive
from dream_mpc.noise import imagination_option
from dream_mpc.objective import Objective
from dream_mpc.options import option
from dream_mpc.planner import Planner
from dream_mpc.registry import planners
from dream_mpc.rollout import policy_rollout


@dataclass
class DreamOptions:
    num_candidates: int = option(5, "candidate sequences rolled out from the policy (N)", low=1)
    iterations: int = option(1, "gradient-ascent steps per plan (I); 0 picks among the policy's candidates", low=0)
    lr: float = option(0.1, "gradient-ascent step size (alpha)", low=0, low_open=True)
    reuse: float = option(0.1, "weight of last step's shifted candidates (rho, eq. 3); 0 disables reuse", low=0, high=1)
    uncertainty_coef: float = option(0.01, "ensemble-uncertainty penalty (lambda, eq. 6); 0 disables it", low=0)
    horizon: int = option(3, "planning horizon (H)", low=1)
    action_noise: float = option(
        0.0, "std of the Gaussian noise added to each candidate's actions (sigma_a, eq. 15)", low=0
    )
    proposal: str = option(
        "per_candidate",
        "per_candidate: N policy rollouts (official TD-MPC2 code); shared: one rollout, N noisy copies (eq. 15)",
        choices=("per_candidate", "shared"),
    )
    grad_clip_norm: float = option(20.0, "norm each candidate's action gradient is clipped to", low=0, low_open=True)
    large_action_iterations: bool = option(False, "official: +2 iterations when action_dim >= 20")
    uncertainty_sign: str = option(
        "abs", "abs: |mean| x std (the paper's magnitude); signed: mean x std (official)", choices=("abs", "signed")
    )
    uncertainty_grad: bool = option(True, "gradients flow through the penalty (official: false, it only ranks)")
    score_after_step: bool = option(True, "rank candidates after the last gradient step (official: before)")
    clip: str = option(
        "per_candidate",
        "gradient-norm clipping per candidate, or one norm over all (official)",
        choices=("per_candidate", "global"),
    )
    clamp_each_step: bool = option(True, "clamp actions to [-1, 1] after every step (official: only at the end)")
    expl_noise: float = option(0.0, "std of Gaussian noise on the executed action outside eval mode", low=0)
    objective: str = option(
        "return", "return: eq. 6's H-step return; lambda: the lambda-return of eq. 12-14", choices=("return", "lambda")
    )
    td_lambda: float = option(0.95, "lambda of objective=lambda (1: the H-step return)", low=0, high=1)
    imagination: str = imagination_option()
    # adaptive planning (dream_mpc/adaptive.py): all off by default
    step_rule: str = adaptive.step_rule_option()
    armijo: float = adaptive.armijo_option()
    max_halvings: int = adaptive.max_halvings_option()
    step_grow: float = adaptive.step_grow_option()
    step_shrink: float = adaptive.step_shrink_option()
    tol: float = adaptive.tol_option()
    budget_ms: float = adaptive.budget_ms_option()
    budget_iterations: int = adaptive.budget_iterations_option()

    def work(self):
        """Model steps per plan: the policy rollout of the candidates, a forward (and backward) per iteration and
        the final scoring."""
        return self.num_candidates * self.horizon * (self.iterations + 2)


@planners.register("dream")
class DreamMPCPlanner(Planner):
    """Reads the root keys `min_std`/`max_std` (bounds of the first-action std reported in `info`, which BMPC
    imitates) besides its own options."""

    Options = DreamOptions
    option_block = "dream"
    root_keys = ("min_std", "max_std")
    clock = staticmethod(adaptive.now)  # the anytime mode's clock (tests inject one)
    last_search = None  # the last adaptive optimisation (its iterations, evaluations, slowest iteration)

    def __init__(self, model, cfg, discount):
        super().__init__(model, cfg, discount)
        o = self.opt
        self.num_candidates, self.horizon, self.lr, self.reuse = o.num_candidates, o.horizon, o.lr, o.reuse
        self.iterations = o.iterations + 2 * (o.large_action_iterations and model.action_dim >= 20)
        self.grad_clip_norm = float(o.grad_clip_norm)
        self.objective = Objective(
            self.horizon, o.uncertainty_coef, o.uncertainty_sign, o.uncertainty_grad, o.objective, o.td_lambda
        )
        self.objective.note_ensemble_size(model.ensemble_size)  # one value member: warn now, the penalty is off
        # a Q-model's terminal value Q(z_H, a_H) needs an action at the horizon too; a V-model's does not
        self.seq_len = self.horizon + int(model.terminal_needs_action)
        self._prev = None  # (B, N, S, A): last step's optimised candidates

    @property
    def penalty_active(self):
        """False when uncertainty_coef is 0 or the model has a single value member (None: not known yet)."""
        return self.objective.penalty_active

    def reset(self):
        self._prev = None

    def state_dict(self):
        return {"prev": self._prev}

    def load_state_dict(self, state):
        self._prev = state["prev"]

    # ------------------------------------------------------------------ candidates
    @torch.no_grad()
    def policy_candidates(self, z, task, explore=False):
        """Eq. 2: N sequences (B*N, S, A) sampled from the policy prior through the latent dynamics (one rollout
        repeated N times with `proposal=shared`), plus eq. 15's Gaussian action noise sigma_a when set."""
        N, o = self.num_candidates, self.opt
        shared = o.proposal == "shared"
        rollout = policy_rollout(self.model, z, task, 1 if shared else N, self.seq_len, explore, self.objective.noise)
        a = rollout.transpose(0, 1)  # batch-major, as the optimiser holds candidates
        if shared:
            a = a.repeat_interleave(N, 0)
        if o.action_noise:
            a = (a + o.action_noise * torch.randn_like(a)).clamp(-1, 1)
        return a.contiguous()

    def initial_candidates(self, z, task, t0, reanalyze):
        a = self.policy_candidates(z, task, explore=reanalyze).float()  # optimised in float32 whatever the model's
        B, N = z.shape[0], self.num_candidates
        prev = self._prev
        if self.reuse and not t0 and not reanalyze and prev is not None and prev.shape[0] == B:
            shifted = torch.cat([prev[:, :, 1:], prev[:, :, -1:]], dim=2)  # eq. 3: shift, repeat the last
            a = self.reuse * shifted.reshape(B * N, self.seq_len, -1) + (1 - self.reuse) * a
        return a

    # ------------------------------------------------------------------ optimisation
    def clip_gradient(self, g, B):
        """Per-candidate norm clipping (candidates are independent problems), or one norm per batch element."""
        flat = g.reshape(g.shape[0], -1) if self.opt.clip == "per_candidate" else g.reshape(B, -1)
        scale = (self.grad_clip_norm / (flat.norm(dim=1, keepdim=True) + 1e-6)).clamp(max=1.0)
        return (flat * scale).view_as(g)

    def optimise(self, z_rows, actions, task_rows, discount, B):
        """I gradient-ascent steps on J for all candidates at once; returns (actions, J of the returned actions)."""
        if adaptive.is_adaptive(self.opt):  # a step rule, early stopping or a time budget
            return self.optimise_adaptive(z_rows, actions, task_rows, discount, B)
        J = None
        for _ in range(self.iterations):
            actions = actions.detach().requires_grad_(True)
            with torch.enable_grad():
                J = self.objective(self.model, z_rows, actions, task_rows, discount)
                (grad,) = torch.autograd.grad(J.sum(), actions)
            with torch.no_grad():
                actions = actions + self.lr * self.clip_gradient(grad, B)
                if self.opt.clamp_each_step:
                    actions = actions.clamp(-1, 1)
        actions = actions.detach()
        if J is None or self.opt.score_after_step:
            with torch.no_grad():
                J = self.objective(self.model, z_rows, actions, task_rows, discount)
        return actions, J.detach()

    def search_effort(self):
        """The last plan's (gradient steps, objective evaluations): the adaptive search's count, or the fixed
        step's I iterations and, after them, the scoring pass (always when I = 0)."""
        if adaptive.is_adaptive(self.opt):
            return self.last_search.iterations, self.last_search.evaluations
        return self.iterations, self.iterations + int(self.iterations == 0 or self.opt.score_after_step)

    def optimise_adaptive(self, z_rows, actions, task_rows, discount, B):
        """dream_mpc/adaptive.py: each candidate's best actions and J over the points visited."""
        # the steady iteration time of earlier plans (warm-up left out, a running median; adaptive.IterationTimes)
        times = self.__dict__.setdefault("iteration_times", adaptive.IterationTimes())
        search = adaptive.AdaptiveAscent(
            self.opt, self.lr, self.iterations, self.clock, getattr(self, "_plan_started", None), times.estimate()
        )
        actions, J = search.run(
            lambda a: self.objective(self.model, z_rows, a, task_rows, discount),
            actions,
            lambda g: self.clip_gradient(g, B),
        )
        times.record(search)
        self.last_search, self._plan_started = search, None
        return actions, J

    # ------------------------------------------------------------------ the planner interface
    @torch.no_grad()
    def plan(self, z, t0=False, eval_mode=False, task=None):
        """A reanalysis horizon is ignored: gradient planners keep their own (`dream.horizon`)."""
        reanalyze = self.reanalyzing
        self._plan_started = self.clock(z.device) if self.opt.budget_ms else None  # the budget counts from here
        B, N, A = z.shape[0], self.num_candidates, self.model.action_dim
        task_rows = None if task is None else task.repeat_interleave(N)
        mask = self.model.action_mask(task)
        self.objective.noise = self.imagination_noise(B, self.opt.imagination)  # this plan's: rollout, steps, score
        actions = self.initial_candidates(z, task, t0, reanalyze)
        if mask is not None:
            actions = actions * mask.repeat_interleave(N, 0).unsqueeze(1)
        z_rows = z.repeat_interleave(N, 0)
        actions, J = self.optimise(z_rows, actions, task_rows, self.discount_for(task, N), B)
        actions = actions.clamp(-1, 1).view(B, N, self.seq_len, A)
        J = J.view(B, N)
        if not reanalyze:
            self._prev = actions
        rows = torch.arange(B, device=actions.device)
        best = torch.argmax(J.nan_to_num(float("-inf")), dim=1)
        action = actions[rows, best, 0]
        first = actions[:, :, 0]
        std = first.std(1, correction=1 if N > 1 else 0).clamp(self.cfg.min_std, self.cfg.max_std)
        info = {"value": J[rows, best].unsqueeze(-1), "mean": first.mean(1), "std": std, "action": action}
        info["plan"] = actions[rows, best, : self.horizon]  # the executed sequence (model exploitation records)
        info["iterations"], info["evaluations"] = self.search_effort()  # recorded per episode (records.py)
        if not eval_mode and self.opt.expl_noise:
            action = (action + self.opt.expl_noise * torch.randn_like(action)).clamp(-1, 1)
        bad = ~(torch.isfinite(J).all(1) & torch.isfinite(actions).flatten(1).all(1))
        return self.policy_fallback(z, task, action, info, bad)
