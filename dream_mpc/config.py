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
from dream_mpc.envs import set_env_dims  # noqa: F401 (config.set_env_dims: where scripts and tests look for it)
from dream_mpc.errors import UserError, first_line, unknown, warn_once
from dream_mpc.registry import agents, planners

CONFIG_DIR = Path(__file__).with_name("conf")  # Hydra's search path: config.yaml alone (no config groups)
CONFIG_PATH = CONFIG_DIR / "config.yaml"
CONFIG_NAME = "dream_mpc"

# Hydra's own settings of every run: the run writes under logs/<task>/<seed>/<exp_name> (work_dir), not a Hydra folder
HYDRA = {
    "output_subdir": None,
    "run": {"dir": "."},
    "sweep": {"dir": "logs/multirun/${now:%Y-%m-%d_%H-%M-%S}", "subdir": "${hydra.job.num}"},
    "job": {"chdir": False},
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

    root = set(root_specs())
    out = {}
    for block, cls in option_blocks().items():
        if cls.replaces_root_keys:
            for key in opts.specs(cls.Options):
                if key not in root:
                    out.setdefault(key, block)
    return out


def root_sections():
    """[(title, Options class)] of the root keys: the shared ones, each root-keyed planner's (MPPI's: TD-MPC2's key
    names), each agent family's own (`Agent.RootOptions`; one class may serve several families)."""
    from dream_mpc.run_options import RunOptions

    out, seen = [("every run", RunOptions)], {RunOptions}
    for name, cls in planners.items():
        if cls.option_block is None and opts.specs(cls.Options) and cls.Options not in seen:
            out.append((f"planner={name}", cls.Options))
            seen.add(cls.Options)
    for name, cls in agents.items():
        if cls.RootOptions is not None and cls.RootOptions not in seen:
            users = [n for n, c in agents.items() if c.RootOptions is cls.RootOptions]
            out.append(("agent=" + "|".join(users), cls.RootOptions))
            seen.add(cls.RootOptions)
    return out


def root_defaults(options_cls):
    """The defaults of a root section; the shared section's agent is the registered family that declares itself the
    default (`Agent.default_family`)."""
    out = opts.defaults(options_cls)
    if out.get("agent", "") is None:
        out["agent"] = next((n for n, cls in agents.items() if cls.__dict__.get("default_family")), None)
    return out


def root_specs():
    """{root key: Spec} of every declared root key (a key declared twice must be declared alike)."""
    out = {}
    for title, options_cls in root_sections():
        for key, spec in opts.specs(options_cls).items():
            if key in out and out[key] != spec:
                raise UserError(f"the root key {key!r} is declared twice, differently ({title}): rename one")
            out[key] = spec
    return out


def root_node():
    """The root config as an OmegaConf node, built from the declarations: the root keys (`root_sections`), the
    option block of every registered planner and agent, and Hydra's settings."""
    from omegaconf import OmegaConf

    raw = {}
    for _, options_cls in root_sections():
        raw.update({k: v for k, v in root_defaults(options_cls).items() if k not in raw})
    for block, options_cls in option_classes().items():
        raw.setdefault(block, opts.defaults(options_cls))
    raw["hydra"] = HYDRA
    return OmegaConf.create(raw)


def reference_yaml():
    """config.yaml: every key with its default and meaning, generated from the declarations (a test keeps the
    shipped file equal to it: `python -m dream_mpc.config` rewrites it)."""
    from omegaconf import OmegaConf

    def value(v):
        return OmegaConf.to_yaml({"v": v}).strip()[3:]

    lines = [
        "# Dream-MPC's root config, generated from the declarations by `python -m dream_mpc.config` (do not edit).",
        "# Override anything on the command line: python train.py task=dog-run steps=1000000 model_size=5",
        "# `python train.py --cfg job` prints what a run reads, with its agent family's planner defaults applied.",
    ]
    for title, options_cls in root_sections():
        lines += ["", f"# ---- {title}"]
        defaults = root_defaults(options_cls)
        for key, spec in opts.specs(options_cls).items():
            lines.append(f"{key}: {value(defaults[key])}  # {spec.doc}")
    for block, options_cls in option_classes().items():
        kind = "planner" if block in {cls.option_block for _, cls in planners.items()} else "agent"
        lines += ["", f"{block}:  # options of {block} ({kind})"]
        for key, spec in opts.specs(options_cls).items():
            lines.append(f"  {key}: {value(getattr(options_cls(), key))}  # {spec.doc}")
    return "\n".join(lines) + "\n"


def defaults():
    """The root config as a plain dict (without the hydra block)."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(root_node())
    raw.pop("hydra", None)
    return raw


def help_text():
    """`--help`: every config key with its default, what is allowed and what it means, section by section (the root
    keys every run shares, then each planner's and agent family's), from the same declarations as config.yaml."""
    from dream_mpc.agent import option_blocks as agent_blocks

    lines = ["Dream-MPC: python train.py|evaluate.py key=value ... (-m for sweeps; --cfg job prints what a run reads)"]

    def section(title, options_cls, prefix=""):
        lines.extend(["", f"{title} (key=default   (allowed) meaning):"])
        defaults = root_defaults(options_cls) if not prefix else opts.defaults(options_cls)
        for name, spec in opts.specs(options_cls).items():
            value = defaults[name]
            shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else value
            lines.append(f"  {prefix}{name}={shown}   ({spec.allowed()}) {spec.doc}")

    for title, options_cls in root_sections():
        section(f"Root keys of {title}", options_cls)
    for block, options_cls in option_classes().items():
        cls = agent_blocks().get(block)
        what = "; they replace the root keys unless set on the command line" if cls and cls.replaces_root_keys else ""
        section(f"{block}.* ({'agent' if cls else 'planner'}={block} options{what})", options_cls, block + ".")
    lines += ["", "Docs: docs/planners.md (every planner option), docs/errors.md, README.md"]
    return "\n".join(lines).replace("$", "$$")


def register():
    """Store the root config in Hydra's ConfigStore as `dream_mpc` (before @hydra.main composes it)."""
    from hydra.core.config_store import ConfigStore

    node = root_node()
    node["hydra"]["help"] = {"app_name": "dream-mpc", "template": help_text()}
    node["defaults"] = ["_self_", {"override hydra/job_logging": "stdout"}]
    ConfigStore.instance().store(name=CONFIG_NAME, node=node)


def override_key(override):
    """The key of a command-line override (`+a.b=1`, `~a.b` -> `a.b`)."""
    return re.split(r"[=~]", override.lstrip("+~"), maxsplit=1)[0].strip()


def is_multirun(argv):
    return any(a in ("-m", "--multirun") or a.replace(" ", "") == "hydra.mode=MULTIRUN" for a in argv)


# Hydra's flags that take a value (the value is not an override)
_FLAGS_WITH_VALUE = set(
    "--cfg -c --package -p --info -i --config-path -cp --config-name -cn --config-dir -cd --shell-completion -sc "
    "--experimental-rerun".split()
)


def _flagged(argv):
    """(argument, whether it is Hydra's: a flag or the value after one that takes a value) for each argument."""
    value_next = False
    for a in argv:
        hydras = value_next or a.startswith("-")
        value_next = hydras and a in _FLAGS_WITH_VALUE
        yield a, hydras


def check_overrides(overrides):
    """Rewrite and check command-line overrides before Hydra sees them: an agent's own keys may be given at the top
    level (`agent_only_keys`), and an unknown key gets an error naming the closest
    valid ones (Hydra would only say 'not in struct'). Flags (--cfg, -m ...) and hydra/ keys pass through."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    base = defaults()
    agent_only = agent_only_keys()
    multirun = is_multirun(overrides)
    parser = OverridesParser.create()
    out = []
    for ov, hydras in _flagged(overrides):
        if hydras:  # Hydra's own flags, and the value after --cfg, --info, -cn ...
            out.append(ov)
            continue
        if "=" not in ov and not ov.startswith("~"):
            raise UserError(f"cannot read {ov!r}: overrides look like key=value, e.g. task=cartpole-swingup")
        try:  # Hydra's own grammar, checked here so that its complaint becomes one line (and no exit code 1)
            parsed = parser.parse_override(ov)
        except HydraException as err:
            raise UserError(
                f"cannot read {ov!r} ({first_line(err)}): a value with brackets, commas, quotes or spaces needs "
                f"quoting, e.g. 'exp_name=\"a b\"' (grammar: https://hydra.cc/docs/advanced/"
                f"override_grammar/basic/)"
            ) from None
        if parsed.is_sweep_override() and not multirun:
            raise UserError(
                f"{ov} gives several values, which is a sweep: add -m to run one job per value "
                f"(python train.py -m {ov}), or quote the value to mean one string "
                f"({parsed.key_or_group}=\"'...'\")"
            )
        key = override_key(ov)
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
    from dream_mpc.planner import NoOptions

    family, chosen = agents.get(agent), planners.get(planner)
    owned = {k for _, cls in agents.items() for k in (*cls.root_keys, *opts.specs(cls.RootOptions or NoOptions))}
    owned |= {cls.option_block for _, cls in agents.items() if cls.option_block}
    owned |= {cls.option_block for _, cls in planners.items() if cls.option_block}
    owned |= {k for _, cls in planners.items() if cls.option_block is None for k in opts.specs(cls.Options)}
    used = {*family.root_keys, *opts.specs(family.RootOptions or NoOptions), *chosen.root_keys}
    used |= {family.option_block, chosen.option_block}
    if chosen.option_block is None:
        used |= set(opts.specs(chosen.Options))
    if family.replaces_root_keys:
        used |= set(opts.specs(family.Options))
    return owned - used


def warn_unused(agent, planner, overrides):
    """One warning line (stderr, once per process) for each override the run does not read, e.g. latent_dim=64 with
    agent=dreamer, cem.top_k=10 with planner=dream."""
    unused = unused_keys(agent, planner)
    for key in dict.fromkeys(override_key(ov) for ov in overrides if not ov.startswith("-")):
        if key.split(".")[0] in unused:
            warn_once(f"{key} has no effect with agent={agent} planner={planner} (not read by either)")


def job_config_asked(argv):
    """True for `--cfg job` (or `-c job`) without -m: the config as the job will run it is printed instead."""
    args = list(argv)
    return not is_multirun(args) and any(
        a in ("--cfg", "-c") and args[i + 1 : i + 2] == ["job"] for i, a in enumerate(args)
    )


def job_overrides(argv):
    """The config overrides of a command line, Hydra's flags and their values left out."""
    return [a for a, hydras in _flagged(argv) if not hydras]


def job_yaml(raw):
    """A config dict as `--cfg job` prints it: what the run reads, nothing of other families (every planner's block
    kept: one planner= switch away, as they would run), as YAML."""
    from omegaconf import OmegaConf

    if raw["agent"] in agents and raw["planner"] in planners:
        blocks = {cls.option_block for _, cls in planners.items()}
        unused = unused_keys(raw["agent"], raw["planner"]) - blocks
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
    raw["_overridden"] = sorted({override_key(o) for o in overrides if not o.startswith("-")})
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
    for key, spec in root_specs().items():
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
    elif not agents.get(raw["agent"]).multitask:
        raise UserError(
            f"agent={raw['agent']} is single-task; task={raw['task']} is a multi-task set: pick one of its tasks, or "
            f"an agent that learns task sets: {', '.join(n for n, cls in agents.items() if cls.multitask)}"
        )
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
    family = agents.get(raw["agent"])
    if family.RootOptions is not None:  # the chosen family's limits between its root keys (vmin <= vmax ...)
        opts.validate(family.RootOptions, raw)
    return raw


def _warn_cost(raw):
    """One warning (stderr, once per process) when the chosen planner's options cost far more than its defaults."""
    cls = planners.get(raw["planner"])
    block = raw if cls.option_block is None else raw[cls.option_block]
    warning = opts.cost_warning(cls.Options, block, "" if cls.option_block is None else cls.option_block + ".")
    if warning:
        warn_once(warning)


def apply_planner_defaults(raw, overridden=()):
    """The chosen agent family's planner defaults (`Agent.planner_defaults`) in a config dict, in place, for every
    option the user did not set (`overridden`: the keys given on the command line or saved in a file)."""
    if raw.get("agent") not in agents:
        return raw  # validate() names the registered agents
    family = agents.get(raw["agent"])
    if family.default_planner is not None and "planner" not in overridden:
        raw["planner"] = family.default_planner
    for name, values in family.planner_defaults.items():
        block = planners.get(name).option_block
        for key, value in values.items():
            if (key if block is None else f"{block}.{key}") not in overridden:
                (raw if block is None else raw[block])[key] = value
    return raw


def effective(raw, overridden):
    """A composed config dict as the run reads it: the family's planner defaults applied, every value checked, and
    TD-MPC2's `mpc=false` made `planner=policy` (the policy acts, in every family)."""
    raw = validate(apply_planner_defaults(raw, overridden))
    if not raw["mpc"]:
        raw["planner"] = "policy"
    return raw


def parse_cfg(raw):
    """Validate and apply presets: a dict from `compose` -> Config (env-dependent keys come later)."""
    from dream_mpc import envs

    raw = dict(raw)
    overridden = set(raw.pop("_overridden", ()))
    raw = effective(raw, overridden)
    agent = agents.get(raw["agent"])
    raw["frame_stack"] = agent.pixel_frames if raw["obs"] == "rgb" else 1
    raw["action_repeat"] = agent.action_repeat
    if agent.replaces_root_keys:  # the agent's values replace the root's, and its own keys are read at the root
        for key, value in raw[agent.option_block].items():
            if key not in overridden:  # a top-level override wins over the agent's block
                raw[key] = value
    task_names = envs.task_set(raw["task"])
    raw["multitask"] = task_names is not None
    raw["tasks"] = task_names or [raw["task"]]
    agent.complete_config(raw, overridden)  # the family's presets and heuristics (TD-MPC2: model_size ...)
    raw["work_dir"] = str(Path.cwd() / "logs" / raw["task"] / str(raw["seed"]) / raw["exp_name"])
    raw["task_title"] = raw["task"].replace("-", " ").title()
    return _to_config(raw)


def load(overrides=()):
    return parse_cfg(compose(overrides))


if __name__ == "__main__":  # python -m dream_mpc.config: rewrite config.yaml from the declarations
    CONFIG_PATH.write_text(reference_yaml())
    print(f"wrote {CONFIG_PATH}")
