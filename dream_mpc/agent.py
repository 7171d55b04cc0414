"""The agent contract: what the trainer, the evaluator and the checkpoints ask of any agent family (TD-MPC2, BMPC,
Dreamer, a plug-in's). An agent registers itself (`@agents.register("name")` in its own module, or the
`dream_mpc.agents` entry-point group, as the built-in agents do); the core never names one.

Options: like a planner, an agent declares `Options` (a dataclass of `dream_mpc.options.option` fields: type,
range, doc) read from the config block `option_block` (`bmpc.td_horizon=2`), validated when the config is built,
listed by `--help` and `--cfg job`. With `replaces_root_keys`, the block's values also replace the root keys of the
same name when this agent is chosen (unless the user set them on the command line) and the block's own keys are
copied to the root, which is how the official BMPC config reads (`reanalyze_interval=5` works at the top level).

Acting: `act(obs, t0, eval_mode, task)` returns an action in [-1, 1] on the CPU; `t0=True` marks an episode's start
(the trainer and the evaluator always say it), where the agent resets whatever it carries between calls: a
planner's warm start, a recurrent filter's state. What it carries is `acting_state()` (tensors or None), saved in a
checkpoint in the middle of an episode and restored by `load_acting_state` for exact resumes.

Learning: `sequence_length(cfg)` is how many consecutive rows one training sample holds (TD-MPC2: horizon + 1;
Dreamer: its chunk length); the trainer's buffer samples that many. `update(buffer, pretrain=False)` makes one
update and returns float metrics. `buffer_extras(planned)` (optional) adds per-step fields to stored rows.
`schedule(cfg)` says when the trainer acts randomly and when it updates: None (the default) is TD-MPC2's schedule
(seed_steps random steps, seed_steps pretraining updates at once, then one update per env step); an
`EpisodeSchedule` is Dreamer's (seed_episodes random episodes, then updates_per_episode updates after each
collected episode).

Planner defaults: `planner_defaults` ({planner name: {option: value}}) are the settings this family's paper runs
its planners with (Dreamer: the Dream-MPC paper's table 16); they replace the planners' own defaults when this
agent is chosen, the user's command line wins, and `--cfg job` and the records show the effective values.
Multi-task sets (task=mt30|mt80): a family with `multitask = True` learns one model of a set's tasks, acts with the
task's index (`act(..., task=i)`) and trains on a set its own way (`train_task_set(cfg)`: TD-MPC2 offline from the
dataset chunks in data_dir); the config refuses a set for the others.
Pixels: `pixel_frames` is how many 64x64 frames one rgb observation stacks (TD-MPC2: 3; Dreamer: 1).

Checkpoints: `weights_state()` / `load_weights_state()` are the weights as files hold them (an agent keeps its
official layout), `state_dict()` / `load_state_dict()` the rest of the training state (optimisers, scales), and
`from_checkpoint(obj, path, task, device, overrides, ...)` builds a ready agent from a read file.

`python -m dream_mpc.contract agent=<name>` checks a family against this contract, point by point (contract.py).
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

from dream_mpc.planner import NoOptions


@dataclass(frozen=True)
class EpisodeSchedule:
    """Training by episodes (Dreamer's algorithm 2): the first `seed_episodes` training episodes act randomly;
    after each training episode from the seed_episodes-th on, `updates_per_episode` updates run back to back."""

    seed_episodes: int
    updates_per_episode: int


class Agent(ABC):
    """What every family's instances hold, set by their __init__ (or the loader):

    - `cfg`: the run's Config: the root keys, every option block (the family's, the planners') with the family's
      planner defaults applied, and after the env (or a file) the env dims: `obs_shape`, `action_dim`,
      `episode_length`, `frame_stack`;
    - `device`: the torch.device it computes on; `discount`: its gamma (float, or a tensor per task);
    - `planner`: the acting planner; `last_plan_info`: the info of the last plan (None before one);
    - `act_threads`: adaptive CPU threads of acting whose choices the evaluator reports (None: none);
    - `saved_config`: the config its file was trained with (set by `load_agent`; None for official files)."""

    cfg = None
    device = None
    discount = None
    last_plan_info = None
    act_threads = None
    saved_config = None
    Options = NoOptions
    option_block = None
    replaces_root_keys = False
    #: {planner name: {option: value}}: the family's defaults for its planners (the user's overrides win)
    planner_defaults = {}
    #: the planner of a run that names none (None: the root's, MPPI)
    default_planner = None
    #: True for the family of a run that names none (TD-MPC2's, as the official config)
    default_family = False
    #: whether the family learns and acts on a multi-task set (then `train_task_set` trains on one)
    multitask = False
    #: frames stacked in one rgb observation
    pixel_frames = 3
    #: env steps per agent step where a suite leaves it to the agent (Pendulum-v1); None: the suite's own
    action_repeat = None
    #: the family's own root config keys (a dataclass of `option` fields: TD-MPC2's official names), beside the
    #: keys every run shares: another family's runs neither show (`--cfg job`) nor read them, and warn when set
    RootOptions = None
    #: root keys of others (a root-keyed planner's) that the family reads too (TD-MPC2: MPPI's horizon)
    root_keys = ()

    #: counters the evaluator and the logs read: actions replaced before reaching the env (non-finite)
    nonfinite_actions = 0
    #: the planner that acts (dream_mpc/planner.py); `set_planner(name)` swaps it
    planner = None

    @classmethod
    @abstractmethod
    def sequence_length(cls, cfg):
        """Rows per sampled training sequence: T + 1 observations for T transitions (at least 2). `buffer.sample()`
        gives a dict of time-major tensors: obs (T + 1, B, ...), action (T, B, A) (action t was taken at obs t),
        reward and terminated (T, B, 1), plus the fields of `buffer_extras`."""

    @classmethod
    def batch_size(cls, cfg):
        """Sequences per sampled training batch (default: the root key batch_size)."""
        return cfg.batch_size

    @classmethod
    def schedule(cls, cfg):
        """When the trainer acts randomly and updates: None (TD-MPC2's, per step) or an `EpisodeSchedule`."""
        return None

    @classmethod
    def train_task_set(cls, cfg):
        """Train on the multi-task set cfg.task (its tasks: cfg.tasks); only where `multitask` is True."""
        raise NotImplementedError(f"{cls.__name__} is single-task")

    @classmethod
    def complete_config(cls, raw, overridden):
        """The family's presets and heuristics, in the config dict being built (after validation; `overridden`:
        the keys the user set). Default: nothing."""

    @abstractmethod
    def act(self, obs, t0=False, eval_mode=False, task=None):
        """An action for one observation (or a batch), finite and in [-1, 1], on the CPU."""

    @abstractmethod
    def update(self, buffer, pretrain=False):
        """One update from the buffer; returns {name: float}."""

    @abstractmethod
    def set_planner(self, name):
        """Act with the planner registered as `name` from now on."""

    def reset(self):
        """An episode starts: forget what was carried from the last one."""
        self.load_acting_state(None)

    def acting_state(self):
        """What acting carries from one call to the next (the planner's warm start; a filter's state)."""
        return {"planner": self.planner.state_dict()}

    def load_acting_state(self, state):
        """Restore `acting_state()`; None: the state of an episode's start."""
        if state is None:
            self.planner.reset()
        else:
            self.planner.load_state_dict(state["planner"])

    @abstractmethod
    def weights_state(self):
        """The weights as a checkpoint file holds them."""

    @abstractmethod
    def load_weights_state(self, state):
        pass

    @abstractmethod
    def state_dict(self):
        """The training state besides the weights (optimisers, running scales)."""

    @abstractmethod
    def load_state_dict(self, state):
        pass

    @classmethod
    @abstractmethod
    def from_checkpoint(cls, obj, path, **kwargs):
        """A ready agent from a read checkpoint `obj` (see dream_mpc.checkpoint.load_agent)."""

    @classmethod
    def recognizes(cls, obj):
        """Whether a read file without this project's config (another code base's checkpoint) is this agent's."""
        return False

    @classmethod
    def file_globals(cls):
        """Classes beyond tensors and plain data that files of this family may name (another code base's layout:
        TD-MPC2's multi-task files hold OmegaConf containers), allowlisted for safe (weights_only) reads."""
        return []

    def acting_options(self):
        """The agent's own options that change its evaluation actions ({"block.key": value}): an evaluation record
        identifies its job by them with the planner's (Dreamer: its deterministic action's rule)."""
        return {}

    def file_extras(self):
        """What a checkpoint file holds beside weights, training state and config ({key: tensors or plain data})."""
        return {}


def option_blocks():
    """{block name: agent class} of every registered agent that declares options."""
    from dream_mpc.registry import agents

    return {cls.option_block: cls for _, cls in agents.items() if cls.option_block}
