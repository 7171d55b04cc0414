"""agent=pets: a PETS-like agent family (probabilistic ensemble, planning only: no policy, no value)."""

import torch

import dream_mpc.checkpoint
from dream_mpc.agent import Agent
from dream_mpc.errors import UserError
from dream_mpc.planner import make_planner
from dream_mpc.registry import agents
from dream_mpc.runtime import resolve_device

from .model import ProbabilisticEnsemble
from .options import PETSOptions
from .world_model import PETSWorldModel


def _state(obs):
    return obs if torch.is_tensor(obs) else obs["state"]


@agents.register("pets")  # on import: through the entry point, or DREAM_MPC_PLUGINS=pets_family.family
class PETSAgent(Agent):
    Options = PETSOptions
    option_block = "pets"
    default_planner = "cem"
    # CEM is the one planner that needs neither a policy nor a value, and only with terminal_value=false
    # (make_planner refuses the others); PETS-sized CEM, small enough for a CPU
    planner_defaults = {
        "cem": {"num_candidates": 200, "top_k": 20, "iterations": 5, "horizon": 15, "terminal_value": False},
    }

    def __init__(self, cfg):
        super().__init__()
        if cfg.obs != "state":
            raise UserError(f"agent=pets reads state observations only, got obs={cfg.obs}: use obs=state")
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        opt = cfg.pets
        self.discount = float(opt.discount)
        obs_dim = int(cfg.obs_shape["state"][0])
        self.net = ProbabilisticEnsemble(
            obs_dim, int(cfg.action_dim), opt.ensemble_size, opt.hidden_size, opt.num_layers
        )
        self.net.to(self.device)
        self.optim = torch.optim.Adam(self.net.parameters(), lr=opt.lr, weight_decay=opt.weight_decay)
        self.model = PETSWorldModel(self.net, opt.propagation)
        self.nonfinite_actions = 0
        self.last_plan_info = None
        self.planner = make_planner(cfg.planner, self.model, cfg, self.discount)  # mpc=false: "policy", refused

    # acting
    def set_planner(self, name):
        self.planner = make_planner(name, self.model, self.cfg, self.discount)
        self.cfg.planner = name

    def act(self, obs, t0=False, eval_mode=False, task=None):
        z = _state(obs).to(self.device, torch.float32).reshape(1, -1)
        action, info = self.planner.plan(z, t0=t0, eval_mode=eval_mode, task=task)
        self.last_plan_info = info
        action = action[0].detach().to("cpu", torch.float32)
        if not torch.isfinite(action).all():
            self.nonfinite_actions += 1
            action = torch.zeros_like(action)
        return action.clamp(-1, 1)

    # learning
    @classmethod
    def sequence_length(cls, cfg):
        return cfg.pets.sequence_length + 1  # rows: T + 1 observations for T transitions

    @classmethod
    def batch_size(cls, cfg):
        return cfg.pets.batch_size

    @classmethod
    def schedule(cls, cfg):
        return None  # TD-MPC2's: seed steps, then one update per env step

    def update(self, buffer, pretrain=False):
        batch = buffer.sample()  # a dict, time-major: obs (T + 1, B, D), action (T, B, A), reward (T, B, 1)
        obs = _state(batch["obs"]).to(self.device, torch.float32)
        action = batch["action"].to(self.device, torch.float32)
        reward = batch["reward"].to(self.device, torch.float32)
        T = action.shape[0]
        x_obs = obs[:T].reshape(-1, obs.shape[-1])
        x_act = action.reshape(-1, action.shape[-1])
        target = torch.cat([(obs[1 : T + 1] - obs[:T]).reshape(-1, obs.shape[-1]), reward.reshape(-1, 1)], -1)
        self.net.observe(torch.cat([x_obs, x_act], -1), target)
        loss, metrics = self.net.loss(x_obs, x_act, target)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        metrics["model_loss"] = loss.item()
        return metrics

    # files
    def weights_state(self):
        return self.net.state_dict()

    def load_weights_state(self, sd):
        self.net.load_state_dict(sd)

    def state_dict(self):
        return {"model": self.net.state_dict(), "optim": self.optim.state_dict()}

    def load_state_dict(self, sd):
        self.net.load_state_dict(sd["model"])
        self.optim.load_state_dict(sd["optim"])

    @classmethod
    def from_checkpoint(
        cls, obj, path, task=None, device="auto", overrides=(), prerelease_input="symlog", env_dims=None
    ):
        cfg = dream_mpc.checkpoint.config_of_own_file(obj.get("config"), path, task, device, overrides)
        agent = cls(cfg)
        agent.load_weights_state(obj["model"])
        return agent
