"""The OmegaConf containers that official multi-task files carry under "metadata" (reference 3.1): the classes a
safe read allowlists for them, and the containers as plain dicts and lists once read."""

import collections
import typing


def omegaconf_globals():
    """What a pickled OmegaConf DictConfig/ListConfig names (omegaconf 2.x): the containers, their metadata
    dataclasses, the value nodes of plain values, and the builtins and typing.Any its metadata refers to. Each only
    gets attributes assigned when rebuilt (its `__setstate__` calls nothing named in the file); anything else a file
    names (os.system, a user class) is still refused."""
    from omegaconf import DictConfig, ListConfig, base, nodes

    names = ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "BytesNode")
    value_nodes = [getattr(nodes, name) for name in names if hasattr(nodes, name)]
    containers = [DictConfig, ListConfig, base.Metadata, base.ContainerMetadata, *value_nodes]
    return [*containers, collections.defaultdict, typing.Any, dict, list, int, float, str, bool]


def plain(value):
    """OmegaConf containers -> plain dicts and lists (unresolved: interpolations stay strings)."""
    from omegaconf import Container, OmegaConf

    if isinstance(value, Container):
        return OmegaConf.to_container(value, resolve=False)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and any(isinstance(v, Container) for v in value):
        return type(value)(plain(v) for v in value)
    return value
