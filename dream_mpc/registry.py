"""Registries: planners, agents and environment suites register themselves where they are defined.

Config validation, error messages and the scripts ask these registries; nothing keeps a hand-written list.
Built-in entries are found by importing every module of their package on the first lookup (drop a file in
`dream_mpc/planners/` and it is a planner). Other packages add entries through the Python entry-point groups
`dream_mpc.planners`, `dream_mpc.agents`, `dream_mpc.suites` (each entry point names the object to register) or
by listing modules to import in the environment variable `DREAM_MPC_PLUGINS` (comma-separated), which is how a
plug-in that is not installed as a package (a test, a notebook's module) reaches `train.py` and `evaluate.py`.
"""

import importlib
import os
import pkgutil
from importlib.metadata import entry_points

from dream_mpc.errors import UserError, unknown


class Registry:
    """Name -> object, filled by `@registry.register("name")` where the object is defined."""

    def __init__(self, kind, packages=(), modules=(), group=None):
        self.kind, self.group = kind, group
        self._packages, self._modules = packages, modules
        self._entries = {}
        self._loaded = False

    def register(self, name, obj=None):
        """Register obj under name; used as a decorator when obj is omitted."""

        def add(obj):
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered ({self._entries[name]!r})")
            self._entries[name] = obj
            return obj

        return add if obj is None else add(obj)

    def _load(self):
        if self._loaded:
            return
        self._loaded = True
        for package in self._packages:
            pkg = importlib.import_module(package)
            for info in pkgutil.iter_modules(pkg.__path__):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{package}.{info.name}")
        for module in self._modules:
            importlib.import_module(module)
        if self.group:
            for ep in entry_points(group=self.group):
                if ep.name not in self._entries:
                    self.register(ep.name, ep.load())
        load_plugins()

    def get(self, name):
        """The object registered as name, or a UserError listing the valid names, closest first."""
        self._load()
        if name not in self._entries:
            raise unknown(self.kind, name, self.names())
        return self._entries[name]

    def __contains__(self, name):
        self._load()
        return name in self._entries

    def names(self):
        self._load()
        return sorted(self._entries)

    def items(self):
        self._load()
        return sorted(self._entries.items())


_plugins = {"loaded": set()}


def load_plugins():
    """Import the modules named in $DREAM_MPC_PLUGINS and the `dream_mpc.plugins` entry points (once each)."""
    names = [m.strip() for m in os.environ.get("DREAM_MPC_PLUGINS", "").split(",") if m.strip()]
    for ep in entry_points(group="dream_mpc.plugins"):
        names.append(ep.module)
    for name in names:
        if name in _plugins["loaded"]:
            continue
        _plugins["loaded"].add(name)
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise UserError(f"cannot import the plug-in module {name!r} named in DREAM_MPC_PLUGINS: {err}") from None


planners = Registry("planner", packages=("dream_mpc.planners",), group="dream_mpc.planners")
# the built-in agents register as a plug-in does, through the entry points of pyproject.toml: this package names none
agents = Registry("agent", group="dream_mpc.agents")
suites = Registry("env suite", packages=("dream_mpc.envs",), group="dream_mpc.suites")
