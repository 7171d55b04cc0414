"""MPPI as in TD-MPC2 (`planner=mppi`): sampled action sequences plus policy-prior sequences, iterative refitting of
a Gaussian to the elites, a Gumbel-softmax draw among the final elites; its options are TD-MPC2's root keys."""

from dataclasses import dataclass

import torch

from dream_mpc.options import option
from dream_mpc.planner import Planner
from dream_mpc.registry import planners
from dream_mpc.rollout import policy_rollout, sequence_return


@dataclass
class MPPIOptions:
    iterations: int = option(6, "MPPI iterations per step (+2 for action_dim >= 20, TD-MPC2's heuristic)", low=1)
    num_samples: int = option(512, "sequences evaluated per iteration, policy sequences included", low=2)
    num_elites: int = option(64, "elites the Gaussian is refitted to", low=1)
    num_pi_trajs: int = option(24, "sequences sampled from the policy prior", low=0)
    horizon: int = option(3, "planning horizon (also the training rollout length)", low=1)
    min_std: float = option(0.05, "lower bound of the sampling std", low=0)
    max_std: float = option(2.0, "initial and upper bound of the sampling std", low=0, low_open=True)
    temperature: float = option(0.5, "softmax temperature of the elite weights", low=0, low_open=True)

    def limits(self, prefix=""):
        """`num_elites` <= `num_samples` and `num_pi_trajs` < `num_samples`."""
        if self.num_elites > self.num_samples or self.num_pi_trajs >= self.num_samples:
            return (
                f"MPPI needs {prefix}num_elites <= {prefix}num_samples and {prefix}num_pi_trajs < {prefix}num_samples, "
                f"got num_elites={self.num_elites}, num_pi_trajs={self.num_pi_trajs}, num_samples={self.num_samples}"
            )
        return None

    def work(self):
        """Model steps per plan: every sample of every iteration over the horizon."""
        return self.iterations * self.num_samples * self.horizon


@planners.register("mppi")
class MPPIPlanner(Planner):
    """TD-MPC2's MPPI: `num_samples` sequences per iteration (`num_pi_trajs` of them from the policy prior), a
    Gaussian refitted to the `num_elites` best for `iterations` iterations, warm-started from the last step's mean,
    and a draw among the final elites; its options are TD-MPC2's root keys."""

    Options = MPPIOptions
    option_block = None  # TD-MPC2's own key names at the root: iterations=8 num_samples=256

    def __init__(self, model, cfg, discount):
        super().__init__(model, cfg, discount)
        problem = self.opt.limits()  # checked when the config is built; again for planners built in code
        if problem:
            from dream_mpc.errors import UserError

            raise UserError(problem)
        # TD-MPC2's heuristic, decided here for any model: two more iterations for a large action space
        self.iterations = self.opt.iterations + 2 * (model.action_dim >= 20)
        self._prev_mean = None  # (H, B, A): the last MPPI mean, shifted to warm-start the next step

    def reset(self):
        self._prev_mean = None

    def state_dict(self):
        return {"prev_mean": self._prev_mean}

    def load_state_dict(self, state):
        self._prev_mean = state["prev_mean"]

    @torch.no_grad()
    def plan(self, z, t0=False, eval_mode=False, task=None):
        o, model = self.opt, self.model
        H = self.reanalysis_horizon or o.horizon
        B, A = z.shape[0], model.action_dim
        N, P, K = o.num_samples, o.num_pi_trajs, o.num_elites
        mask = model.action_mask(task)
        device = z.device
        actions = torch.empty(H, B, N, A, device=device, dtype=model.dtype)  # the planning dtype (bfloat16 copies)
        imagination = self.imagination_noise(B)  # a stochastic model: all sequences and iterations see the same draws
        if P > 0:
            prior = policy_rollout(model, z, task, P, H, explore=self.reanalyzing, noise=imagination)  # (H, B*P, A)
            actions[:, :, :P] = prior.view(H, B, P, A)
        discount = self.discount_for(task, N)
        mean = torch.zeros(H, B, A, device=device)
        std = torch.full((H, B, A), float(o.max_std), device=device)
        prev = self._prev_mean
        if not t0 and not self.reanalyzing and prev is not None and prev.shape[1] == B and prev.shape[0] == H:
            mean[:-1] = prev[1:]
        for _ in range(self.iterations):
            noise = torch.randn(H, B, N - P, A, device=device)
            actions[:, :, P:] = (mean.unsqueeze(2) + std.unsqueeze(2) * noise).clamp(-1, 1)
            if mask is not None:
                actions = actions * mask.view(1, B, 1, A)
            value = sequence_return(model, z, actions.view(H, B * N, A), task, discount, noise=imagination)
            value = value.nan_to_num(0).view(B, N)
            elite_value, elite_idxs = torch.topk(value, K, dim=1)  # (B, K)
            elite_actions = torch.gather(actions, 2, elite_idxs.view(1, B, K, 1).expand(H, B, K, A))
            score = torch.exp(o.temperature * (elite_value - elite_value.max(1, keepdim=True).values))
            score = score / score.sum(1, keepdim=True)
            w = score.view(1, B, K, 1)
            denom = score.sum(1).view(1, B, 1) + 1e-9
            mean = (w * elite_actions).sum(2) / denom
            std = ((w * (elite_actions - mean.unsqueeze(2)).pow(2)).sum(2) / denom).sqrt().clamp(o.min_std, o.max_std)
            if mask is not None:
                mean, std = mean * mask.unsqueeze(0), std * mask.unsqueeze(0)
        idx = gumbel_softmax_sample(score, dim=1)  # (B,): an elite drawn in proportion to its score
        rows = torch.arange(B, device=device)
        chosen = elite_actions[0, rows, idx]  # first action of the chosen elite (B, A)
        action = chosen
        if not eval_mode:
            action = action + std[0] * torch.randn(B, A, device=device)
        if not self.reanalyzing:
            self._prev_mean = mean.clone()
        action = action.clamp(-1, 1)
        info = {"value": elite_value[rows, idx].unsqueeze(-1), "mean": chosen, "std": std[0], "mppi_mean": mean[0]}
        info["plan"] = elite_actions[:, rows, idx].transpose(0, 1)  # the executed sequence (B, H, A)
        bad = ~torch.isfinite(action).all(-1)
        return self.policy_fallback(z, task, action, info, bad)


def gumbel_softmax_sample(p, dim=0):
    """Index drawn from the categorical distribution p (Gumbel-max trick, graph-friendly)."""
    gumbels = -torch.empty_like(p).exponential_().log()
    return torch.argmax(p.clamp_min(1e-30).log() + gumbels, dim=dim)
