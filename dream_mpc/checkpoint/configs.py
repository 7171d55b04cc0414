"""A saved run config as Hydra overrides: how a checkpoint's own config is turned back into a config (the file's
values that differ from the defaults, then what the loading call asks for, strongest last)."""

from dream_mpc import config
from dream_mpc.agent import option_blocks as agent_option_blocks
from dream_mpc.config import override_key  # noqa: F401 (checkpoint.configs.override_key: where loaders look)

# keys of a saved config that the loading call decides, never the file
SAVED_CONFIG_SKIP = ("task", "device", "task_dim", "checkpoint", "trust_checkpoint")


def hydra_value(value):
    """A Python value as a Hydra override value (strings quoted, so '123' stays a string)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def saved_overrides(saved):
    """The values of our own file's config that differ from the defaults, as {key: value} overrides."""
    saved = dict(saved)
    defaults = config.defaults()  # the root config.yaml as a dict (cheaper than a Hydra compose)
    defaults["agent"] = saved.get("agent", defaults["agent"])
    config.apply_planner_defaults(defaults)  # the file's family's planner settings are its defaults, not choices
    # an agent whose block replaces root keys saved its effective values at the top level (read below)
    copied_up = {block for block, cls in agent_option_blocks().items() if cls.replaces_root_keys}
    own = config.agent_only_keys()  # such an agent's own keys, copied up by parse_cfg: back into its block
    out = {}
    for key, value in saved.items():
        if key in SAVED_CONFIG_SKIP:
            continue
        default = defaults.get(key)
        if isinstance(default, dict):
            if key not in copied_up:
                out.update({f"{key}.{k}": v for k, v in value.items() if k in default and v != default[k]})
        elif key in defaults:
            if value != default:
                out[key] = value
        elif key in own and value != defaults[own[key]][key]:
            out[f"{own[key]}.{key}"] = value
    return out
