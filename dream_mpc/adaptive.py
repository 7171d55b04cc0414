"""Adaptive gradient ascent on J for Dream-MPC and Grad-MPC: the step size and the number of iterations that the
paper fixes (table 6, figure 5) and names as future work, plus an anytime mode for control-rate deadlines.

Three independent switches, all off by default (the planner then runs its fixed-step loop, unchanged):

- `step_rule` (per candidate; candidates are independent problems):
    fixed         a <- clamp(a + alpha clip(g))                            (today's step)
    backtracking  Armijo line search on J along d = clip(g): try s = alpha, alpha/2, ... (at most `max_halvings`
                  halvings) until J(a') >= J(a) + armijo <g, a' - a> with a' = clamp(a + s d); a candidate with no
                  accepted step stays where it is, so J never decreases. One extra forward pass (no backward) per try.
    normalized    a <- clamp(a* + s g*/|g*|) from the candidate's best point a* (gradient g*), with its own rate s:
                  s <- s * step_grow when the last step improved its best J, else s <- s * step_shrink and the step
                  is retried from a* (a trust region on the step length; the gradient's scale no longer matters).
- `tol` > 0: stop when no candidate improved its best J by more than `tol` relative (|J| floored at 1e-8) since the
  previous iteration; the iteration count (`iterations`) is the cap. Reading J costs one host sync per iteration.
- `budget_ms` > 0 (anytime): iterate until the next iteration would end past the budget, counted from the start of
  the planning step (candidates included), predicted with the larger of the slowest iteration of this plan and the
  steady iteration time of earlier plans (`IterationTimes`: the median of the last `WINDOW` iterations timed, the
  plans of the warm-up left out); `budget_iterations` caps it. When the fixed part (candidates and their first
  evaluation) leaves no room for an iteration, the plan takes no gradient step and picks among the policy's
  candidates (as `iterations=0`), so the overrun is at most the fixed part's excess, less than one iteration.
  Plans take one step whatever the budget (a probe) only while no steady iteration has been timed (the first
  `WARMUP_PLANS + 1` plans with steps: cold plans can take 20-50x a steady one) and once every `PROBE_EVERY` plans
  without a step, so that the estimate follows a machine whose load changed; the estimate itself never fades. On
  CUDA the clock synchronises first, so it reads finished work.

Every adaptive run clamps actions to [-1, 1] after each step (J compares executable actions), scores every point it
visits and returns each candidate's best actions and their J, whatever `score_after_step` says.
"""

import statistics
import time
from collections import deque

import torch

from dream_mpc.options import option

STEP_RULES = ("fixed", "backtracking", "normalized")
OPTION_KEYS = (
    "step_rule",
    "armijo",
    "max_halvings",
    "step_grow",
    "step_shrink",
    "tol",
    "budget_ms",
    "budget_iterations",
)


# The options, declared once and shared by every planner built on Dream-MPC's optimiser.
def step_rule_option():
    return option(
        "fixed",
        "step size per candidate: fixed alpha, Armijo backtracking on J, or normalized steps "
        "with a growing/shrinking rate (dream_mpc/adaptive.py)",
        choices=STEP_RULES,
    )


def armijo_option():
    return option(1e-4, "backtracking: sufficient-increase constant c of the Armijo condition", low=0, high=1)


def max_halvings_option():
    return option(4, "backtracking: most halvings of the step tried per iteration", low=0)


def step_grow_option():
    return option(1.5, "normalized: rate factor after a step that improved J", low=1)


def step_shrink_option():
    return option(0.5, "normalized: rate factor after a step that did not improve J", low=0, high=1, low_open=True)


def tol_option():
    return option(0.0, "stop when no candidate's J improves by more than this (relative); 0 = off", low=0)


def budget_ms_option():
    return option(
        0.0,
        "anytime mode: plan until this per-step wall-clock budget (ms) is spent, return the best "
        "so far (no gradient step when the candidates alone spend it); 0 = off",
        low=0,
    )


def budget_iterations_option():
    return option(100, "anytime mode: most iterations whatever the budget", low=1)


def is_adaptive(opt):
    return opt.step_rule != "fixed" or opt.tol > 0 or opt.budget_ms > 0


def now(device=None):
    """Seconds from a monotonic clock, after the device's queued work has finished (CUDA runs asynchronously)."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


WARMUP_PLANS = 2  # the first plans that take steps are cold (allocations, thread start-up): their times are left out
WINDOW = 9  # iterations in the running median of the steady iteration time
PROBE_EVERY = 100  # plans without a step after which one step is taken to time an iteration again


class IterationTimes:
    """The anytime mode's memory across plans: the steady time of one iteration, for predicting whether the next one
    fits. `estimate()` -> seconds, or 0.0 when the next plan should take one step to time it (a probe: no steady
    iteration timed yet, or `PROBE_EVERY` plans in a row without a step); `record(search)` after each plan.

    Robust by construction: the iterations of the first `WARMUP_PLANS` plans with steps are left out (a cold plan's
    iteration took 149-424 ms against a steady 7-8 ms on a CPU), and the estimate is the median of the last `WINDOW`
    iterations timed, so a few slow ones (another process taking the core for a moment) do not move it; it is never
    forgotten by decay, only replaced by newer timings."""

    def __init__(self, warmup=WARMUP_PLANS, window=WINDOW, probe_every=PROBE_EVERY):
        self.warmup, self.probe_every = warmup, probe_every
        self.times = deque(maxlen=window)
        self.plans_with_steps = 0  # plans that timed at least one iteration
        self.without_step = 0  # plans in a row that took no step

    def estimate(self):
        if not self.times or self.without_step >= self.probe_every:
            return 0.0
        return statistics.median(self.times)

    def record(self, search):
        if search.iteration_times:
            self.plans_with_steps += 1
            self.without_step = 0
            if self.plans_with_steps > self.warmup:
                self.times.extend(search.iteration_times)
        else:
            self.without_step += 1


class AdaptiveAscent:
    """One adaptive optimisation: `run(J_fn, actions, clip)` -> (best actions, their J). After a run,
    `iterations` (gradient steps taken), `evaluations` (forward passes), `iteration_s` (the slowest iteration,
    seconds), `iteration_times` (every iteration timed, seconds; anytime mode only) and `first_s` (from the plan's
    start to the first decision: candidates and the first evaluation; anytime mode only) describe it."""

    def __init__(self, opt, lr, iterations, clock=now, started=None, known_iteration_s=0.0):
        """`known_iteration_s`: the steady iteration time of earlier plans (anytime mode, `IterationTimes`): with it,
        a budget the fixed part has already spent takes no gradient step at all; without it (0: a probe) one step is
        taken."""
        self.opt, self.lr, self.clock, self.started = opt, lr, clock, started
        self.cap = opt.budget_iterations if opt.budget_ms > 0 else iterations
        self.iterations = self.evaluations = 0
        self.iteration_s = self.first_s = 0.0
        self.iteration_times = []
        self.known_iteration_s = known_iteration_s

    def run(self, J_fn, actions, clip):
        o, device = self.opt, actions.device
        budget = o.budget_ms / 1000
        start = self.started if self.started is not None else self.clock(device)
        a = actions.detach().clamp(-1, 1)
        R = a.shape[0]
        best_a, best_J = a.clone(), torch.full((R, 1), float("-inf"), device=device)
        best_dir = torch.zeros_like(a)
        rate = torch.full((R, 1, 1), float(self.lr), device=device)
        last = None  # time of the previous decision
        if budget > 0 and self.known_iteration_s > 0 and self.clock(device) - start + self.known_iteration_s > budget:
            self.cap = 0  # the candidates already spent the room for a step: score them without building a graph
        while True:
            need_grad = self.iterations < self.cap
            a_req = a.detach().requires_grad_(need_grad)
            with torch.enable_grad() if need_grad else torch.no_grad():
                J = J_fn(a_req)
                total = J.sum()  # inside: the planner itself runs under no_grad
            self.evaluations += 1
            Jd = J.detach().float()
            improved = Jd > best_J  # NaN: never an improvement
            previous_best = best_J
            best_J = torch.where(improved, Jd, best_J)
            best_a = torch.where(improved.unsqueeze(-1), a, best_a)
            if not need_grad:
                break
            if o.tol > 0 and self.iterations > 0:
                gain = (best_J - previous_best) / previous_best.abs().clamp_min(1e-8)
                if not bool((gain.nan_to_num(0.0) > o.tol).any()):
                    break
            if budget > 0:
                t = self.clock(device)
                if last is None:
                    self.first_s = t - start  # candidates and the first evaluation: the fixed part
                else:
                    self.iteration_times.append(t - last)
                    self.iteration_s = max(self.iteration_s, t - last)
                last = t
                predicted = max(self.iteration_s, self.known_iteration_s)
                if predicted > 0 and t - start + predicted > budget:
                    break  # the next iteration would end past the budget (no step known yet: take one)
            (grad,) = torch.autograd.grad(total, a_req)
            grad = grad.float()
            if o.step_rule == "fixed":
                a = (a + self.lr * clip(grad)).clamp(-1, 1)
            elif o.step_rule == "normalized":
                direction = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(R, 1, 1)
                up = improved.view(R, 1, 1)
                best_dir = torch.where(up, direction, best_dir)
                if self.iterations > 0:  # the first point is no step's outcome
                    rate = rate * torch.where(up, o.step_grow, o.step_shrink)
                a = (best_a + rate * best_dir).clamp(-1, 1)
            else:
                a = self.backtrack(J_fn, a, Jd, grad, clip(grad))
            self.iterations += 1
        return best_a, best_J

    @torch.no_grad()
    def backtrack(self, J_fn, a, J, grad, direction):
        """The Armijo step of each candidate (or no step where every try failed)."""
        o, R = self.opt, a.shape[0]
        step = torch.full((R, 1, 1), float(self.lr), device=a.device)
        out, todo = a.clone(), torch.ones(R, dtype=torch.bool, device=a.device)
        for _ in range(o.max_halvings + 1):
            trial = (a + step * direction).clamp(-1, 1)
            Jt = J_fn(trial).float()
            self.evaluations += 1
            ok = todo.unsqueeze(-1) & (Jt >= J + o.armijo * (grad * (trial - a)).flatten(1).sum(1, keepdim=True))
            out = torch.where(ok.unsqueeze(-1), trial, out)
            todo = todo & ~ok.squeeze(-1)
            if not bool(todo.any()):
                break
            step = step / 2
        return out
