"""Registries: planners, agents and environment suites register themselves where they are defined.

Config validation, error messages and the scripts ask these registries; nothing keeps a hand-written list.
Built-in entries are found by importing every module of their package on the first lookup (drop a file in
`dream_mpc/planners/` and it is a planner). Other packages add entries through the Python entry-point groups
`dream_mpc.planners`, `dream_mpc.agents`, `dream_mpc.suites` (each entry point names the object to register) or
by listing modules to import in the environment variable `DREAM_MPC_PLUGINS` (comma-separated), which is how a
plug-in that is not installed as a package (a test, a notebook's module) reaches `train.py` and `evaluate.py`.

A plug-in that fails to load (its import raises, an entry point names what is not there) is skipped with one line on
stderr naming it, once per process: a broken package installed in the environment must not break every command.
`Registry.get` of a name that is not registered then also names the plug-ins that failed.
"""

import importlib
import os
import pkgutil
import sys
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
                    try:
                        obj = ep.load()
                    except Exception as err:  # the plug-in's own bug: skip it, say so
                        _skip(f"{ep.name} = {ep.value} (entry point of {self.group})", err)
                        continue
                    self.register(ep.name, obj)
        load_plugins()

    def get(self, name):
        """The object registered as name, or a UserError listing the valid names, closest first (and the plug-ins
        that failed to load: the name may be theirs)."""
        self._load()
        if name not in self._entries:
            err = unknown(self.kind, name, self.names())
            if _plugins["skipped"]:
                err = UserError(f"{err} (plug-ins that failed to load: {', '.join(_plugins['skipped'])})")
            raise err
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


_plugins = {"loaded": set(), "skipped": {}}  # skipped: what -> its error, in the order met


def _skip(what, err):
    """A plug-in that failed to load: one line on stderr (once per process), then everything else goes on."""
    if what in _plugins["skipped"]:
        return
    lines = str(err).strip().splitlines()
    _plugins["skipped"][what] = reason = f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    print(f"warning: plug-in {what} failed to load and is skipped ({reason})", file=sys.stderr, flush=True)


def load_plugins():
    """Import the modules named in $DREAM_MPC_PLUGINS and the `dream_mpc.plugins` entry points (once each); one
    that raises is skipped with a line on stderr."""
    names = [(m.strip(), "DREAM_MPC_PLUGINS") for m in os.environ.get("DREAM_MPC_PLUGINS", "").split(",")]
    for ep in entry_points(group="dream_mpc.plugins"):
        names.append((ep.module, f"entry point {ep.name} of dream_mpc.plugins"))
    for name, source in names:
        if not name or name in _plugins["loaded"]:
            continue
        _plugins["loaded"].add(name)
        try:
            importlib.import_module(name)
        except Exception as err:  # ImportError, or whatever the module's own code raised
            _skip(f"module {name!r} (named in {source})", err)


planners = Registry("planner", packages=("dream_mpc.planners",), group="dream_mpc.planners")
# the built-in agents register as a plug-in does, through the entry points of pyproject.toml: this package names none
agents = Registry("agent", group="dream_mpc.agents")
suites = Registry("env suite", packages=("dream_mpc.envs",), group="dream_mpc.suites")
