"""Option declarations: each planner (and the root config) declares its options with their type, range and doc.

A planner's options are a dataclass whose fields are made with `option(...)`; `validate` checks a block of
values against it when the config is built, so a bad value is a one-line error naming the key, the value and
what is allowed, long before anything runs:

    @dataclass
    class Options:
        num_candidates: int = option(5, "candidate action sequences per step", low=1)
        lr: float = option(0.1, "gradient-ascent step size", low=0, low_open=True)
"""

import dataclasses
import math

from dream_mpc.errors import UserError


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a value may be: its type, an optional closed or open range, or a set of choices."""

    type: type
    doc: str = ""
    low: float = None
    high: float = None
    low_open: bool = False  # True: low itself is not allowed
    choices: tuple = None
    nullable: bool = False

    def allowed(self):
        """'an integer >= 1', 'a number > 0', 'one of abs, signed' ... for error messages and docs."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        kind = {
            int: "an integer",
            float: "a number",
            bool: "true or false",
            str: "a string",
            list: "a list, e.g. [a,b]",
        }.get(self.type, "a value")
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"<= {self.high:g}")
        text = kind + (" " + " and ".join(parts) if parts else "")
        return text + (" (or null)" if self.nullable else "")

    def check(self, key, value):
        """The value converted to the declared type, or a UserError naming key, value and what is allowed."""
        if value is None and self.nullable:
            return None
        bad = UserError(f"{key}={_show(value)} is not allowed: {key} must be {self.allowed()}")
        if self.type is bool:
            if not isinstance(value, bool):
                raise bad
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise bad
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise bad
            value = float(value)
        elif self.type in (str, list) and not isinstance(value, self.type):
            raise bad
        if self.choices is not None and value not in self.choices:
            raise bad
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise bad
        if self.high is not None and value > self.high:
            raise bad
        return value


def _show(value):
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)


def option(default, doc, **spec):
    """A dataclass field with its Spec (type taken from the annotation when the dataclass is built)."""
    return dataclasses.field(default=default, metadata={"doc": doc, "spec": spec})


def specs(options_cls):
    """{field name: Spec} of an options dataclass."""
    out = {}
    for f in dataclasses.fields(options_cls):
        kind = f.type if isinstance(f.type, type) else {"int": int, "float": float, "bool": bool, "str": str}[f.type]
        out[f.name] = Spec(kind, f.metadata.get("doc", ""), **f.metadata.get("spec", {}))
    return out


def defaults(options_cls):
    """The default values of an options dataclass as a plain dict."""
    return dataclasses.asdict(options_cls())


def validate(options_cls, values, prefix="", limits=True):
    """Check every declared key of `values` (a dict); returns the converted dict. Unknown keys are the caller's
    concern (Hydra and config.py reject them with the valid names). `limits=False`: each value alone (the options of
    a planner that is not in use are never checked against each other)."""
    out = dict(values)
    for name, spec in specs(options_cls).items():
        if name in out:
            out[name] = spec.check(prefix + name, out[name])
    limits = getattr(options_cls, "limits", None) if limits else None  # between options (MPPI: elites <= samples)
    if limits is not None and all(f.name in out for f in dataclasses.fields(options_cls)):
        problem = limits(options_cls(**{f.name: out[f.name] for f in dataclasses.fields(options_cls)}), prefix)
        if problem:
            raise UserError(problem)
    return out


def cost_warning(options_cls, values, prefix="", factor=100):
    """A warning (str) when the options make a plan far costlier than the defaults: `work(self)` of the options
    dataclass counts model evaluations per plan; None when it is within `factor` of the defaults' or undeclared."""
    work = getattr(options_cls, "work", None)
    if work is None:
        return None
    names = [f.name for f in dataclasses.fields(options_cls)]
    mine, base = work(options_cls(**{n: values[n] for n in names if n in values})), work(options_cls())
    if mine <= factor * base:
        return None
    changed = ", ".join(
        f"{prefix}{n}={values[n]}" for n in names if n in values and values[n] != getattr(options_cls(), n)
    )
    return (
        f"{changed} makes a plan {mine / base:,.0f}x the model evaluations of the defaults ({mine:,} instead of "
        f"{base:,}): a step takes roughly that many times its default time (docs/performance.md), so an episode may "
        "take hours"
    )


def table(options_cls, prefix=""):
    """A Markdown table of the options (key, default, allowed, meaning) for docs and --help."""
    rows = ["| option | default | allowed | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(options_cls):
        spec = specs(options_cls)[f.name]
        default = str(f.default).lower() if isinstance(f.default, bool) else _show(f.default).strip("'")
        cells = (f"`{prefix}{f.name}`", f"`{default}`", spec.allowed(), spec.doc)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)
