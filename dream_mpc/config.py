"""Config: the root config.yaml with every registered planner's option block, composed with Hydra overrides,
validated (type and range of every key), and completed with TD-MPC2's heuristics.

The root config is registered in Hydra's ConfigStore as `dream_mpc` (`register()`), so `train.py` and
`evaluate.py` are ordinary `@hydra.main` applications (multirun, launcher plugins, --cfg, --help) and work from
any directory after `pip install`. `compose()` builds the same config in-process (tests, load_agent, scripts).
"""

import re
from pathlib import Path
from types import SimpleNamespace

from dream_mpc import options as opts
from dream_mpc.errors import UserError, unknown
from dream_mpc.options import Spec
from dream_mpc.registry import agents, planners

CONFIG_DIR = Path(__file__).with_name("conf")  # Hydra's search path: config.yaml alone (no config groups)
CONFIG_PATH = CONFIG_DIR / "config.yaml"
CONFIG_NAME = "dream_mpc"

# arch presets (official common/__init__.py MODEL_SIZE)
MODEL_SIZE = {
    1: dict(enc_dim=256, mlp_dim=384, latent_dim=128, num_enc_layers=2, num_q=2),
    5: dict(enc_dim=256, mlp_dim=512, latent_dim=512, num_enc_layers=2),
    19: dict(enc_dim=1024, mlp_dim=1024, latent_dim=768, num_enc_layers=3),
    48: dict(enc_dim=1792, mlp_dim=1792, latent_dim=768, num_enc_layers=4),
    317: dict(enc_dim=4096, mlp_dim=4096, latent_dim=1376, num_enc_layers=5, num_q=8),
}
PLANNING_DTYPES = ("float32", "bfloat16")

_pos_int, _nonneg_int = dict(type=int, low=1), dict(type=int, low=0)
_pos, _nonneg = dict(type=float, low=0, low_open=True), dict(type=float, low=0)
_fraction = dict(type=float, low=0, high=1)
# type and range of every root key; the planners' options are declared with each planner (MPPI's are root keys)
ROOT = {
    "task": Spec(str),
    "obs": Spec(str, choices=("state", "rgb")),
    "episodic": Spec(bool),
    "agent": Spec(str),
    "planner": Spec(str),
    "device": Spec(str),
    "checkpoint": Spec(str, nullable=True),
    "eval_episodes": Spec(**_pos_int),
    "eval_freq": Spec(**_nonneg_int),
    "eval_noise": Spec(bool),
    "steps": Spec(**_pos_int),
    "batch_size": Spec(**_pos_int),
    "reward_coef": Spec(**_nonneg),
    "value_coef": Spec(**_nonneg),
    "termination_coef": Spec(**_nonneg),
    "consistency_coef": Spec(**_nonneg),
    "rho": Spec(type=float, low=0, low_open=True, high=1),
    "lr": Spec(**_pos),
    "enc_lr_scale": Spec(**_nonneg),
    "grad_clip_norm": Spec(**_pos),
    "tau": Spec(**_fraction),
    "discount_denom": Spec(**_pos),
    "discount_min": Spec(**_fraction),
    "discount_max": Spec(**_fraction),
    "buffer_size": Spec(**_pos_int),
    "seed_steps": Spec(int, low=0, nullable=True),
    "exp_name": Spec(str),
    "data_dir": Spec(str, nullable=True),
    "mpc": Spec(bool),
    "log_std_min": Spec(float),
    "log_std_max": Spec(float),
    "entropy_coef": Spec(**_nonneg),
    "num_bins": Spec(**_pos_int),
    "vmin": Spec(float),
    "vmax": Spec(float),
    "model_size": Spec(int, nullable=True, choices=tuple(MODEL_SIZE)),
    "num_enc_layers": Spec(**_pos_int),
    "enc_dim": Spec(**_pos_int),
    "num_channels": Spec(**_pos_int),
    "mlp_dim": Spec(**_pos_int),
    "latent_dim": Spec(**_pos_int),
    "task_dim": Spec(**_nonneg_int),
    "num_q": Spec(**_pos_int),
    "dropout": Spec(type=float, low=0, high=1),
    "simnorm_dim": Spec(**_pos_int),
    "wandb_project": Spec(str, nullable=True),
    "wandb_entity": Spec(str, nullable=True),
    "wandb_silent": Spec(bool),
    "enable_wandb": Spec(bool),
    "save_csv": Spec(bool),
    "compile": Spec(bool),
    "fused": Spec(bool),
    "keep_freed_memory": Spec(bool),
    "planning_dtype": Spec(str, choices=PLANNING_DTYPES),
    "threads": Spec(**_nonneg_int),
    "plan_threads": Spec(**_nonneg_int),
    "save_video": Spec(bool),
    "save_agent": Spec(bool),
    "save_freq": Spec(**_nonneg_int),
    "resume": Spec(bool),
    "seed": Spec(**_nonneg_int),
    "trust_checkpoint": Spec(bool),
    "eval_tasks": Spec(list, nullable=True),
    "results_dir": Spec(str),
}
# what each root key means (`--help`, docs); MPPI's root keys are documented with MPPI's options
DOCS = {
    "task": "task name (any registered suite's) or a multi-task set: mt30, mt80",
    "obs": "observations: state, or rgb pixels (suites that render)",
    "episodic": "terminations end the TD target (HumanoidBench falls); false: official TD-MPC2",
    "agent": "agent family: any registered agent (the built-in ones and a plug-in's)",
    "planner": "planner that acts: any registered planner (mppi, dream, grad, hybrid, policy, a plug-in's)",
    "device": "auto (cuda if present, else cpu), cpu, cuda or cuda:N",
    "checkpoint": "evaluate.py: the .pt file to evaluate (ours or official)",
    "eval_episodes": "episodes per evaluation",
    "eval_freq": "env steps between evaluations during training",
    "eval_noise": "true: keep the planner's exploration noise at evaluation (the official evaluate.py)",
    "steps": "env steps to train",
    "batch_size": "sub-trajectories per update",
    "reward_coef": "weight of the reward loss",
    "value_coef": "weight of the value loss",
    "termination_coef": "weight of the termination loss (episodic=true)",
    "consistency_coef": "weight of the latent consistency loss",
    "rho": "per-step weight decay of the losses along the horizon",
    "lr": "learning rate",
    "enc_lr_scale": "encoder learning rate as a fraction of lr",
    "grad_clip_norm": "gradient-norm clip of updates",
    "tau": "soft update rate of the target Q-networks",
    "discount_denom": "discount heuristic: episode length / discount_denom sets the discount",
    "discount_min": "lower bound of the discount",
    "discount_max": "upper bound of the discount",
    "buffer_size": "replay buffer rows (at least one episode)",
    "seed_steps": "random-action steps before updates; null: max(1000, 5 * episode_length)",
    "exp_name": "run name: the folder logs/<task>/<seed>/<exp_name> (a plain name)",
    "data_dir": "task=mt30|mt80 training: folder of the dataset chunks",
    "mpc": "false: act with the policy alone (recorded as planner=policy)",
    "log_std_min": "lower bound of the policy's log std",
    "log_std_max": "upper bound of the policy's log std",
    "entropy_coef": "entropy bonus of the policy loss",
    "num_bins": "two-hot bins of reward and value",
    "vmin": "lowest two-hot bin (symlog space)",
    "vmax": "highest two-hot bin (symlog space)",
    "model_size": "preset of the sizes below: 1, 5, 19, 48, 317 (millions of parameters); null: keep them",
    "num_enc_layers": "encoder layers",
    "enc_dim": "encoder width",
    "num_channels": "conv channels of the pixel encoder",
    "mlp_dim": "MLP width",
    "latent_dim": "latent state size",
    "task_dim": "task embedding size (multi-task; set from the task)",
    "num_q": "Q-ensemble members",
    "dropout": "dropout of the Q-networks",
    "simnorm_dim": "SimNorm group size",
    "wandb_project": "Weights & Biases project (enable_wandb=true)",
    "wandb_entity": "Weights & Biases entity",
    "wandb_silent": "silence wandb's output",
    "enable_wandb": "log to Weights & Biases",
    "save_csv": "write the training and evaluation logs as CSV",
    "compile": "torch.compile planning and the update (CUDA); no speed-up on CPU",
    "fused": "fused LayerNorm+Mish and SimNorm CPU operators (same numbers, faster)",
    "keep_freed_memory": "glibc keeps freed memory for reuse (no page faults; resident memory stays at its peak)",
    "planning_dtype": "float32, or bfloat16: planners read a bf16 copy of the world model",
    "threads": "torch CPU threads; 0: torch's default",
    "plan_threads": "CPU threads of an acting step; 0: the fastest of 1..threads, timed as it runs",
    "save_video": "record evaluation videos",
    "save_agent": "write checkpoints",
    "save_freq": "env steps between checkpoints; 0: only at the end",
    "resume": "continue from <work_dir>/models/last.pt when it exists",
    "seed": "random seed (training, or the evaluation's)",
    "trust_checkpoint": "read checkpoints with weights_only=False (can run code: trusted files only)",
    "eval_tasks": "task=mt30|mt80: evaluate only these tasks of the set",
    "results_dir": "evaluate.py appends one record per episode here; a rerun skips recorded episodes",
}


class Config(SimpleNamespace):
    """A plain attribute container (fast attribute access on hot paths, unlike OmegaConf)."""

    def get(self, key, default=None):
        return getattr(self, key, default)

    def to_dict(self):
        return {k: (v.to_dict() if isinstance(v, Config) else v) for k, v in vars(self).items()}


def option_classes():
    """{block name: Options class} of every registered planner and agent that has its own config block."""
    from dream_mpc.agent import option_blocks as agent_blocks
    from dream_mpc.planner import option_blocks as planner_blocks

    out = {block: cls.Options for block, cls in agent_blocks().items()}
    for block, options_cls in planner_blocks().items():
        if block in out:
            raise UserError(f"the option block {block!r} is declared by an agent and by a planner: rename one")
        out[block] = options_cls
    return out


def agent_only_keys():
    """{key: block} of the options of agents with `replaces_root_keys` that are not root keys: given at the top level
    (`<key>=5`), they mean `<block>.<key>=5`, as the official configs of such agents read them."""
    from dream_mpc.agent import option_blocks

    root = set(ROOT) | set(opts.specs(planners.get("mppi").Options))
    out = {}
    for block, cls in option_blocks().items():
        if cls.replaces_root_keys:
            for key in opts.specs(cls.Options):
                if key not in root:
                    out.setdefault(key, block)
    return out


def root_node():
    """The root config as an OmegaConf node: config.yaml plus the option block of every registered planner and
    agent (declared with each: dream_mpc/planners/*.py, the agents' modules)."""
    from omegaconf import OmegaConf

    node = OmegaConf.load(CONFIG_PATH)
    for block, options_cls in option_classes().items():
        if block not in node:
            node[block] = opts.defaults(options_cls)
    return node


def defaults():
    """The root config as a plain dict (without the hydra block)."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(root_node())
    raw.pop("hydra", None)
    return raw


def help_text():
    """`--help`: every config key with its default, what is allowed and what it means; then each option block."""
    from dream_mpc.agent import option_blocks as agent_blocks
    from dream_mpc.planner import option_blocks

    base = defaults()
    mppi = opts.specs(planners.get("mppi").Options)
    lines = [
        "Dream-MPC: python train.py|evaluate.py key=value ... (-m for sweeps; --cfg job prints the composed config)",
        "",
        "Config keys (default; allowed: meaning):",
    ]

    def add(key, value, spec, doc):
        shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else value
        lines.append(f"  {key}={shown}   ({spec.allowed()}) {doc}")

    for key, value in base.items():
        if isinstance(value, dict):
            continue
        spec = ROOT.get(key) or mppi.get(key)
        if spec is not None:
            add(key, value, spec, DOCS.get(key) or spec.doc)
    for block, options_cls in option_blocks().items():
        lines += ["", f"{block}.* (planner={block} options):"]
        for name, spec in opts.specs(options_cls).items():
            add(f"{block}.{name}", base[block][name], spec, spec.doc)
    for block, cls in agent_blocks().items():
        what = "; they replace the keys above unless set on the command line" if cls.replaces_root_keys else ""
        lines += ["", f"{block}.* (agent={block} options{what}):"]
        for name, spec in opts.specs(cls.Options).items():
            add(f"{block}.{name}", base[block][name], spec, spec.doc)
    lines += ["", "Docs: docs/planners.md (every planner option), docs/errors.md, README.md"]
    return "\n".join(lines).replace("$", "$$")


def register():
    """Store the root config in Hydra's ConfigStore as `dream_mpc` (before @hydra.main composes it)."""
    from hydra.core.config_store import ConfigStore

    node = root_node()
    node["hydra"]["help"] = {"app_name": "dream-mpc", "template": help_text()}
    node["defaults"] = ["_self_", {"override hydra/job_logging": "stdout"}]
    ConfigStore.instance().store(name=CONFIG_NAME, node=node)


def _key(override):
    return re.split(r"[=~]", override.lstrip("+~"), maxsplit=1)[0].strip()


_FLAGS_WITH_VALUE = {
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--info",
    "-i",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--shell-completion",
    "-sc",
    "--experimental-rerun",
}


def check_overrides(overrides):
    """Rewrite and check command-line overrides before Hydra sees them: an agent's own keys may be given at the top
    level (`agent_only_keys`), and an unknown key gets an error naming the closest
    valid ones (Hydra would only say 'not in struct'). Flags (--cfg, -m ...) and hydra/ keys pass through."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    base = defaults()
    agent_only = agent_only_keys()
    multirun = any(ov in ("-m", "--multirun") or ov.replace(" ", "") == "hydra.mode=MULTIRUN" for ov in overrides)
    parser = OverridesParser.create()
    out, flag_value = [], False
    for ov in overrides:
        if ov.startswith("-") or flag_value:  # Hydra's own flags, and the value after --cfg, --info, -cn ...
            flag_value = ov in _FLAGS_WITH_VALUE
            out.append(ov)
            continue
        if "=" not in ov and not ov.startswith("~"):
            raise UserError(f"cannot read {ov!r}: overrides look like key=value, e.g. task=cartpole-swingup")
        try:  # Hydra's own grammar, checked here so that its complaint becomes one line (and no exit code 1)
            parsed = parser.parse_override(ov)
        except HydraException as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(
                f"cannot read {ov!r} ({reason}): a value with brackets, commas, quotes or spaces needs "
                f"quoting, e.g. 'exp_name=\"a b\"' (grammar: https://hydra.cc/docs/advanced/"
                f"override_grammar/basic/)"
            ) from None
        if parsed.is_sweep_override() and not multirun:
            raise UserError(
                f"{ov} gives several values, which is a sweep: add -m to run one job per value "
                f"(python train.py -m {ov}), or quote the value to mean one string "
                f"({parsed.key_or_group}=\"'...'\")"
            )
        key = _key(ov)
        if key.startswith("hydra"):
            out.append(ov)
            continue
        if key in agent_only:
            ov, key = ov.replace(key, f"{agent_only[key]}.{key}", 1), f"{agent_only[key]}.{key}"
        parts = key.split(".")
        if parts[0] not in base:
            raise unknown("config key", parts[0], list(base))
        if len(parts) > 1:
            block = base[parts[0]]
            if not isinstance(block, dict) or parts[1] not in block:
                raise unknown(f"{parts[0]} option", parts[1], list(block) if isinstance(block, dict) else [])
        elif isinstance(base[key], dict) and not ov.startswith("~") and not isinstance(parsed.value(), dict):
            raise UserError(
                f"{ov} is not allowed: {key} is a block of options, set them one by one, e.g. "
                f"{key}.{next(iter(base[key]), 'option')}=...; its options: {', '.join(base[key])}"
            )
        out.append(ov)
    return out


def unused_keys(agent, planner):
    """The top-level config keys and option blocks that a run of `agent` with `planner` never reads: other families'
    root keys and blocks, other planners' blocks and root options (MPPI's)."""
    family, chosen = agents.get(agent), planners.get(planner)
    owned = {k for _, cls in agents.items() for k in cls.root_keys}
    owned |= {cls.option_block for _, cls in agents.items() if cls.option_block}
    owned |= {cls.option_block for _, cls in planners.items() if cls.option_block}
    owned |= {k for _, cls in planners.items() if cls.option_block is None for k in opts.specs(cls.Options)}
    used = {*family.root_keys, *chosen.root_keys, family.option_block, chosen.option_block}
    if chosen.option_block is None:
        used |= set(opts.specs(chosen.Options))
    if family.replaces_root_keys:
        used |= set(opts.specs(family.Options))
    return owned - used


_warned_unused = set()


def warn_unused(agent, planner, overrides):
    """One warning line (stderr, once per process) for each override the run does not read, e.g. latent_dim=64 with
    agent=dreamer, cem.top_k=10 with planner=dream."""
    import sys

    unused = unused_keys(agent, planner)
    for ov in overrides:
        key = _key(ov)
        if not ov.startswith("-") and key.split(".")[0] in unused and key not in _warned_unused:
            _warned_unused.add(key)
            print(
                f"warning: {key} has no effect with agent={agent} planner={planner} (not read by either)",
                file=sys.stderr,
            )


def job_config_asked(argv):
    """True for `--cfg job` (or `-c job`) without -m: the config as the job will run it is printed instead."""
    args = list(argv)
    multirun = "-m" in args or "--multirun" in args
    return not multirun and any(a in ("--cfg", "-c") and args[i + 1 : i + 2] == ["job"] for i, a in enumerate(args))


def job_config_yaml(argv):
    """`--cfg job`: the composed config with the chosen agent family's planner defaults applied (Hydra alone would
    print the planners' own defaults), as YAML."""
    from omegaconf import OmegaConf

    overrides, skip = [], False
    for a in argv:  # Hydra's flags and their values out, the overrides kept
        if skip or a.startswith("-"):
            skip = a in _FLAGS_WITH_VALUE
            continue
        overrides.append(a)
    raw = compose(overrides)
    raw = apply_planner_defaults(raw, set(raw.pop("_overridden")))
    if raw["agent"] in agents and raw["planner"] in planners:  # what this run reads, nothing of other families
        unused = unused_keys(raw["agent"], raw["planner"])
        raw = {k: v for k, v in raw.items() if k not in unused}
    return OmegaConf.to_yaml(OmegaConf.create(raw)).rstrip("\n")


def compose(overrides=()):
    """The root config with Hydra-syntax overrides applied, as a plain dict (in-process, without @hydra.main)."""
    from hydra import compose as hydra_compose
    from hydra import initialize
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    overrides = check_overrides(list(overrides))
    register()
    try:
        if GlobalHydra.instance().is_initialized():  # inside a Hydra app: compose with its own instance
            cfg = hydra_compose(config_name=CONFIG_NAME, overrides=overrides)
        else:
            with initialize(config_path=None, version_base=None):
                cfg = hydra_compose(config_name=CONFIG_NAME, overrides=overrides)
    except HydraException as err:
        raise UserError(f"cannot apply overrides {overrides}: {err}".replace("\n", " ")) from None
    return from_hydra(cfg, overrides)


def from_hydra(cfg, overrides):
    """A composed DictConfig -> the plain dict parse_cfg takes (which keys the user set is kept for presets)."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg, resolve=True)
    raw.pop("hydra", None)
    raw["_overridden"] = sorted({_key(o) for o in overrides if not o.startswith("-")})
    return raw


def _to_config(d):
    return Config(**{k: _to_config(v) if isinstance(v, dict) else v for k, v in d.items()})


def validate(raw):
    """Type and range of every root key and of every agent's and planner's options; names against the registries.
    A mistake is a one-line UserError naming the key, the value and what is allowed."""
    from dream_mpc import envs
    from dream_mpc.planner import validate_options

    for key, value in list(raw.items()):  # official: strings like "5*2" are arithmetic
        if isinstance(value, str) and re.fullmatch(r"\d+\s*[+\-*/]\s*\d+", value):
            raw[key] = eval(value, {"__builtins__": {}})
    for key, spec in ROOT.items():
        if key in raw:
            raw[key] = spec.check(key, raw[key])
    blocks = option_classes()
    for block in blocks:
        if block in raw and not isinstance(raw[block], dict):
            raise UserError(
                f"{block}={raw[block]!r} is not allowed: {block} is a block of options, set them one "
                f"by one, e.g. {block}.<option>=<value>"
            )
    from dream_mpc.agent import option_blocks as agent_blocks

    for block in agent_blocks():
        raw[block] = opts.validate(blocks[block], raw[block], block + ".")
    chosen = planners.get(raw["planner"]).option_block if raw["planner"] in planners else None
    for name in planners.names():  # every value's type and range; limits between values for the chosen block only
        validate_options(name, raw, limits=name == raw["planner"] or planners.get(name).option_block == chosen)
    if raw["agent"] not in agents:
        raise unknown("agent", raw["agent"], agents.names())
    if raw["planner"] not in planners:
        raise unknown("planner", raw["planner"], planners.names())
    _warn_cost(raw)
    if raw["exp_name"] in ("", ".", "..") or re.search(r"[/\\\x00]", raw["exp_name"]):
        raise UserError(
            f"exp_name={raw['exp_name']!r} is not allowed: exp_name names a folder inside the run folder "
            f"(logs/<task>/<seed>/<exp_name>), so it must be a plain name without '/', '\\', '.' or '..', e.g. "
            "exp_name=dream-h5"
        )
    if envs.task_set(raw["task"]) is None:
        envs.suite_of(raw["task"])  # an unknown task: the closest names of every suite
    if raw.get("eval_tasks"):
        members = envs.task_set(raw["task"])
        if members is None:
            raise UserError(
                f"eval_tasks only applies to a multi-task set (task=mt30 or task=mt80), not task={raw['task']}"
            )
        for name in raw["eval_tasks"]:
            if name not in members:
                raise UserError(f"{unknown('task', name, members)} (eval_tasks names tasks of {raw['task']})")
    if not (raw["device"] in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", raw["device"])):
        raise unknown("device", raw["device"], ["auto", "cpu", "cuda", "cuda:0"])
    for lo, hi in (("vmin", "vmax"), ("log_std_min", "log_std_max"), ("discount_min", "discount_max")):
        if raw[lo] > raw[hi]:
            raise UserError(f"{lo}={raw[lo]} is above {hi}={raw[hi]}: {lo} must be <= {hi}")
    return raw


_warned = set()


def _warn_cost(raw):
    """One warning (stderr, once per process) when the chosen planner's options cost far more than its defaults."""
    import sys

    cls = planners.get(raw["planner"])
    block = raw if cls.option_block is None else raw[cls.option_block]
    warning = opts.cost_warning(cls.Options, block, "" if cls.option_block is None else cls.option_block + ".")
    if warning and warning not in _warned:
        _warned.add(warning)
        print(f"warning: {warning}", file=sys.stderr)


_EXAMPLE_CHECKPOINT = "checkpoint=agents/cartpole-swingup-tdmpc2-1M.pt"


def check_checkpoint_file(path):
    """evaluate.py's checkpoint= before anything is loaded: an existing file that torch.save could have written (a
    zip archive, or a pickle for files from before PyTorch 1.6); else a one-line UserError naming what is allowed."""
    if path is None:
        raise UserError(
            f"no checkpoint given: checkpoint= must name a .pt file written by torch.save, e.g. {_EXAMPLE_CHECKPOINT}"
        )
    file = Path(path)
    if not file.is_file():
        what = "is a directory" if file.is_dir() else "no such file"
        raise UserError(
            f"checkpoint not found: {path} ({what}); checkpoint= must name a .pt file written by "
            f"torch.save, e.g. {_EXAMPLE_CHECKPOINT}"
        )
    try:
        with open(file, "rb") as f:
            head = f.read(4)
    except OSError as err:
        raise UserError(
            f"cannot read checkpoint {path}: {err.strerror}; checkpoint= must name a readable .pt file"
        ) from None
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # zip archive; legacy pickle (protocol 2+)
        raise UserError(
            f"cannot read checkpoint {path}: not a torch file (neither the zip archive nor the pickle "
            f"that torch.save writes); checkpoint= must name a .pt file written by torch.save, e.g. "
            f"{_EXAMPLE_CHECKPOINT}"
        )
    return path


def apply_planner_defaults(raw, overridden=()):
    """The chosen agent family's planner defaults (`Agent.planner_defaults`) in a config dict, in place, for every
    option the user did not set (`overridden`: the keys given on the command line or saved in a file)."""
    if raw.get("agent") not in agents:
        return raw  # validate() names the registered agents
    for name, values in agents.get(raw["agent"]).planner_defaults.items():
        block = planners.get(name).option_block
        for key, value in values.items():
            if (key if block is None else f"{block}.{key}") not in overridden:
                (raw if block is None else raw[block])[key] = value
    return raw


def parse_cfg(raw):
    """Validate and apply presets: a dict from `compose` -> Config (env-dependent keys come later)."""
    from dream_mpc import envs

    raw = dict(raw)
    overridden = set(raw.pop("_overridden", ()))
    raw = validate(apply_planner_defaults(raw, overridden))
    agent = agents.get(raw["agent"])
    raw["frame_stack"] = agent.pixel_frames if raw["obs"] == "rgb" else 1
    if agent.replaces_root_keys:  # the agent's values replace the root's, and its own keys are read at the root
        for key, value in raw[agent.option_block].items():
            if key not in overridden:  # a top-level override wins over the agent's block
                raw[key] = value
    if raw["model_size"] is not None:
        size = raw["model_size"]
        raw.update({k: v for k, v in MODEL_SIZE[size].items() if k not in overridden})
        if raw["task"] == "mt30" and size == 19:
            raw["latent_dim"] = 512
    task_names = envs.task_set(raw["task"])
    raw["multitask"] = task_names is not None
    raw["tasks"] = task_names or [raw["task"]]
    if raw["multitask"]:
        raw["task_dim"] = 96 if raw["task"] == "mt80" or raw["model_size"] in (1, 317) else 64
    else:
        raw["task_dim"] = 0
    raw["bin_size"] = (raw["vmax"] - raw["vmin"]) / (raw["num_bins"] - 1) if raw["num_bins"] > 1 else 0.0
    raw["work_dir"] = str(Path.cwd() / "logs" / raw["task"] / str(raw["seed"]) / raw["exp_name"])
    raw["task_title"] = raw["task"].replace("-", " ").title()
    return _to_config(raw)


def discount(episode_length, cfg):
    """TD-MPC2's heuristic: longer episodes get a discount closer to 1."""
    frac = episode_length / cfg.discount_denom
    return min(max((frac - 1) / frac, cfg.discount_min), cfg.discount_max)


def set_env_dims(cfg, obs_shape, action_dim, episode_length, action_dims=None, episode_lengths=None):
    """Fill in what comes from the environment (or a checkpoint) and the heuristics that depend on it."""
    cfg.obs_shape = {cfg.obs: tuple(obs_shape)}
    cfg.action_dim = int(action_dim)
    cfg.episode_length = int(episode_length)
    if cfg.get("seed_steps") is None or cfg.get("_seed_steps_heuristic"):
        cfg.seed_steps = max(1000, 5 * cfg.episode_length)
        cfg._seed_steps_heuristic = True
    if cfg.multitask:
        cfg.action_dims = list(action_dims)
        cfg.episode_lengths = list(episode_lengths)
    return cfg


def load(overrides=()):
    return parse_cfg(compose(overrides))
