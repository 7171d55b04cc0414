"""A plug-in outside the packages: a toy env suite, a toy planner and a toy agent whose world model has a recurrent
TensorDict latent (h, s) and a single value head V(z). `DREAM_MPC_PLUGINS=toy_plugin` makes train.py and
evaluate.py see them; nothing in tdmpc2/ or dream_mpc/ knows about them.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from gymnasium.spaces import Box
from tensordict import TensorDict

from dream_mpc.agent import Agent
from dream_mpc.checkpoint import config_of_own_file
from dream_mpc.envs import Suite
from dream_mpc.options import option
from dream_mpc.planner import Planner, make_planner
from dream_mpc.registry import agents, planners, suites
from dream_mpc.world_model import WorldModel

TARGET, LENGTH = 0.5, 25


# ---------------------------------------------------------------------------------------------------- env suite
class PointMass:
    """A 1-D point mass pushed towards TARGET: obs (position, velocity), reward -(position - TARGET)^2."""

    has_success = False
    max_episode_steps = LENGTH
    observation_space = Box(-np.inf, np.inf, (2,), dtype=np.float32)
    action_space = Box(-1.0, 1.0, (1,), dtype=np.float32)

    def __init__(self, seed, fall=None):
        self._rng = np.random.RandomState(seed)
        self.fall = fall  # toy-fall: |position| beyond this ends the episode as a termination (a fall)

    def _obs(self):
        return torch.tensor([self.pos, self.vel], dtype=torch.float32)

    def reset(self):
        self.pos, self.vel, self.t = float(self._rng.uniform(-1, 1)), 0.0, 0
        return self._obs()

    def step(self, action):
        assert torch.isfinite(torch.as_tensor(action)).all()
        self.vel = 0.8 * self.vel + 0.2 * float(torch.as_tensor(action).clamp(-1, 1)[0])
        self.pos += self.vel
        self.t += 1
        reward = torch.tensor(-((self.pos - TARGET) ** 2), dtype=torch.float32)
        fell = self.fall is not None and abs(self.pos) > self.fall
        return self._obs(), reward, self.t >= LENGTH or fell, {"success": 0.0, "terminated": torch.tensor(float(fell))}

    def rand_act(self):
        return torch.rand(1) * 2 - 1

    def render(self):
        return np.zeros((64, 64, 3), dtype=np.uint8)

    def get_rng_state(self):
        return self._rng.get_state()

    def set_rng_state(self, state):
        self._rng.set_state(state)


class ToySuite(Suite):
    name = "toy"

    def tasks(self):
        return ("toy-reach", "toy-fall")

    def make(self, task, cfg):
        return PointMass(cfg.seed, fall=0.6 if task == "toy-fall" else None)

    def dims(self, task):
        return (2,), 1, LENGTH


suites.register("toy", ToySuite())


# ---------------------------------------------------------------------------------------------------- planner
@dataclass
class ShootingOptions:
    num_samples: int = option(64, "random action sequences", low=1)
    horizon: int = option(3, "planning horizon", low=1)


@planners.register("toy_shooting")
class RandomShooting(Planner):
    """Uniform random sequences, the best predicted return executed; sees the model only through the protocol."""

    Options = ShootingOptions
    option_block = "toy_shooting"

    @torch.no_grad()
    def plan(self, z, t0=False, eval_mode=False, task=None, reanalyze=False, horizon=None):
        from dream_mpc.rollout import sequence_return

        B, N, H, A = z.shape[0], self.opt.num_samples, self.opt.horizon, self.model.action_dim
        actions = torch.rand(H, B * N, A) * 2 - 1  # time-major, rows grouped by latent (dream_mpc/rollout.py)
        value = sequence_return(self.model, z, actions, task, self.discount).view(B, N)
        best = value.argmax(1)
        action = actions[0].view(B, N, A)[torch.arange(B), best]
        return action, {"value": value.max(1).values.unsqueeze(-1), "mean": action, "std": torch.ones_like(action)}


# ---------------------------------------------------------------------------------------------------- world model
class RecurrentNet(nn.Module):
    def __init__(self, obs_dim, action_dim, hidden=16):
        super().__init__()
        self.init_h = nn.Linear(obs_dim, hidden)
        self.cell = nn.GRUCell(obs_dim + action_dim, hidden)
        self.decode = nn.Linear(hidden, obs_dim)  # s: the predicted observation
        self.reward = nn.Sequential(nn.Linear(hidden + obs_dim + action_dim, 32), nn.ELU(), nn.Linear(32, 1))
        self.value = nn.Sequential(nn.Linear(hidden + obs_dim, 32), nn.ELU(), nn.Linear(32, 1))  # one head
        self.pi = nn.Sequential(nn.Linear(hidden + obs_dim, 32), nn.ELU(), nn.Linear(32, 2 * action_dim))


class RecurrentModel(WorldModel):
    """The protocol on a TensorDict latent {h, s}: a GRU step, a single-member value ensemble (V(z))."""

    value_kind = "V"

    def __init__(self, net, action_dim):
        self.net, self.action_dim = net, action_dim

    def encode(self, obs):
        return TensorDict(h=torch.tanh(self.net.init_h(obs)), s=obs, batch_size=obs.shape[:1])

    def step(self, z, a, task=None):
        h = self.net.cell(torch.cat([z["s"], a], -1), z["h"])
        return TensorDict(h=h, s=self.net.decode(h), batch_size=z.batch_size)

    def reward(self, z, a, task=None):
        return self.net.reward(torch.cat([z["h"], z["s"], a], -1))

    def values(self, z, a=None, task=None):
        return self.net.value(torch.cat([z["h"], z["s"]], -1)).unsqueeze(0)  # (M=1, ..., 1)

    def policy(self, z, task=None, explore=False):
        mean, log_std = self.net.pi(torch.cat([z["h"], z["s"]], -1)).chunk(2, -1)
        mean, std = torch.tanh(mean), log_std.clamp(-5, 0).exp()
        return (mean + std * torch.randn_like(mean)).clamp(-1, 1), mean, std


class ExactModel(WorldModel):
    """PointMass itself as a world model, for tests of what a planner achieves: a TensorDict latent {h: steps
    taken, s: (position, velocity)}, the env's own dynamics and reward, a single value head that prices where the
    mass comes to rest when left alone, V(z) = -(position + 4 velocity - TARGET)^2 / (1 - 0.9), and a policy prior
    that knows nothing (mean 0, std 1): the return of a plan here is the planner's own doing."""

    value_kind = "V"
    ensemble_size = 1

    def __init__(self, action_dim=1):
        self.action_dim = action_dim

    @staticmethod
    def _next(s, a):
        vel = 0.8 * s[..., 1:] + 0.2 * a.clamp(-1, 1)
        return torch.cat([s[..., :1] + vel, vel], -1)

    def encode(self, obs):
        return TensorDict(h=torch.zeros(*obs.shape[:-1], 1), s=obs, batch_size=obs.shape[:1])

    def step(self, z, a, task=None):
        return TensorDict(h=z["h"] + 1, s=self._next(z["s"], a), batch_size=z.batch_size)

    def reward(self, z, a, task=None):
        return -(self._next(z["s"], a)[..., :1] - TARGET).pow(2)

    def values(self, z, a=None, task=None):
        rest = z["s"][..., :1] + 4 * z["s"][..., 1:]  # velocity decays by 0.8 a step: 0.8 / 0.2 = 4 more of it
        return (-(rest - TARGET).pow(2) / (1 - 0.9)).unsqueeze(0)

    def policy(self, z, task=None, explore=False):
        mean = torch.zeros(*z["s"].shape[:-1], self.action_dim)
        std = torch.ones_like(mean)
        return (mean + std * torch.randn_like(mean)).clamp(-1, 1), mean, std


def optimal_return(position, steps=LENGTH):
    """The best return of an episode from rest at `position`: its action sequence optimised (L-BFGS on the exact
    dynamics, actions tanh(u) in bounds; deterministic, so the best open-loop sequence is the best policy)."""
    u = torch.zeros(steps, 1, requires_grad=True)
    optim = torch.optim.LBFGS([u], lr=1, max_iter=50, line_search_fn="strong_wolfe")

    def episode_return():
        s, total = torch.tensor([position, 0.0]), 0.0
        for a in torch.tanh(u):
            s = ExactModel._next(s, a)
            total = total - (s[0] - TARGET) ** 2
        return total

    def loss():
        optim.zero_grad()
        cost = -episode_return()
        cost.backward()
        return cost

    optim.step(loss)
    return episode_return().item()


# ---------------------------------------------------------------------------------------------------- agent
@agents.register("toy_rnn")
class RecurrentAgent(Agent):
    """Learns the recurrent model from the replay buffer (observation, reward and one-step TD losses, a policy
    that ascends the model's one-step return) and acts through any registered planner (dream_mpc/agent.py's
    contract; no options of its own)."""

    @classmethod
    def sequence_length(cls, cfg):
        return cfg.horizon + 1

    def __init__(self, cfg, model=None):
        self.cfg = cfg
        self.device = torch.device("cpu")
        self.net = RecurrentNet(cfg.obs_shape[cfg.obs][0], cfg.action_dim)
        self.model = model or RecurrentModel(self.net, cfg.action_dim)  # a test may plan on ExactModel instead
        self.optim = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.discount = 0.9
        self.planner = make_planner(cfg.planner, self.model, cfg, self.discount)
        self.nonfinite_actions = 0

    def set_planner(self, name):
        self.cfg.planner = name
        self.planner = make_planner(name, self.model, self.cfg, self.discount)

    @torch.no_grad()
    def act(self, obs, t0=False, eval_mode=False, task=None):
        if t0:
            self.planner.reset()
        action, self.last_plan_info = self.planner.plan(self.model.encode(obs.unsqueeze(0)), t0=t0, eval_mode=eval_mode)
        if not torch.isfinite(action).all():
            self.nonfinite_actions += 1
            action = torch.zeros_like(action)
        return action[0].clamp(-1, 1)

    def update(self, buffer, **kwargs):
        batch = buffer.sample()
        obs, action, reward = batch["obs"], batch["action"], batch["reward"]
        z = self.model.encode(obs[0])
        loss = 0.0
        for t in range(action.shape[0]):
            nxt = self.model.step(z, action[t])
            v = self.model.values(z)[0]
            with torch.no_grad():
                target = reward[t] + self.discount * self.model.values(self.model.encode(obs[t + 1]))[0]
            loss = (
                loss
                + (self.model.reward(z, action[t]) - reward[t]).pow(2).mean()
                + (nxt["s"] - obs[t + 1]).pow(2).mean()
                + (v - target).pow(2).mean()
            )
            z = nxt
        z0 = self.model.encode(obs[0])
        a = self.model.policy(z0)[0]
        pi_loss = -(self.model.reward(z0, a) + self.discount * self.model.values(self.model.step(z0, a))[0]).mean()
        self.optim.zero_grad()
        (loss + 0.1 * pi_loss).backward()
        self.optim.step()
        return {"loss": float(loss.detach()), "pi_loss": float(pi_loss.detach())}

    # checkpoints: a plain state dict of its own layout
    def weights_state(self):
        return self.net.state_dict()

    def load_weights_state(self, sd):
        self.net.load_state_dict(sd)

    def state_dict(self):
        return {"optim": self.optim.state_dict()}

    def load_state_dict(self, state):
        self.optim.load_state_dict(state["optim"])

    @classmethod
    def from_checkpoint(cls, obj, path, task=None, device="auto", overrides=(), **kwargs):
        cfg = config_of_own_file(obj.get("config"), path, task, device, overrides)  # the file's config, then overrides
        agent = cls(cfg)
        agent.load_weights_state(obj["model"])
        return agent
