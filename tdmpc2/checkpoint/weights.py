"""Loading a converted state_dict into a built model, strictly, with one readable error when it does not fit.

Older layouts lack some buffers (log-std bounds, action masks): the freshly built model's values are used.
Pre-release files had a parameter-free input transform at encoder position 0, which no state_dict key records:
it is re-applied as a forward pre-hook and remembered on the model, so `save` can write it down.
"""

from dream_mpc.errors import UserError, unknown
from tdmpc2 import math
from tdmpc2.checkpoint.layouts import convert, detect_layout

# buffers that older layouts lack (they were plain attributes): the freshly built model's values are used
FILLED_BUFFERS = ("log_std_min", "log_std_dif", "expl_log_std_min", "expl_log_std_dif", "_action_masks")
# the parameter-free transform at encoder position 0 of pre-release files (unconfirmed which one)
INPUT_TRANSFORMS = {"identity": None, "symlog": math.symlog}


def set_input_transform(model, name):
    """Apply a parameter-free transform ('symlog') to the state encoder's input, where pre-release files had
    one at encoder position 0; None or 'identity' removes it. A forward pre-hook on the encoder keeps the
    state_dict keys official; `model.input_transform` names the transform so `save` can record it."""
    if name is not None and name not in INPUT_TRANSFORMS:
        raise unknown("prerelease_input", name, list(INPUT_TRANSFORMS))
    old = getattr(model, "_input_transform_hook", None)
    if old is not None:
        old.remove()
    fn = INPUT_TRANSFORMS.get(name)
    model.input_transform = name if fn is not None else None
    model._input_transform_hook = None
    if fn is not None:
        if "state" not in model._encoder:
            raise UserError("an input transform applies to state encoders only")
        model._input_transform_hook = model._encoder["state"].register_forward_pre_hook(
            lambda _module, args: (fn(args[0]), *args[1:])
        )


def load_converted(model, sd):
    """Strictly load a converted state_dict, taking the buffers older layouts lack from the model itself."""
    own = model.state_dict()
    sd = {**{k: own[k] for k in FILLED_BUFFERS if k in own and k not in sd}, **sd}
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    reshaped = [
        f"{k} (file {tuple(sd[k].shape)}, model {tuple(own[k].shape)})"
        for k in own
        if k in sd and sd[k].shape != own[k].shape
    ]
    if missing or unexpected or reshaped:
        parts = [
            f"{len(v)} {name}: {', '.join(v[:4])}{' ...' if len(v) > 4 else ''}"
            for name, v in (("missing", missing), ("unexpected", unexpected), ("with other shapes", reshaped))
            if v
        ]
        raise UserError("checkpoint does not fit the model: " + "; ".join(parts))
    model.load_state_dict(sd)


def input_transform_of(obj, layout, prerelease_input):
    """Pre-release files: the transform asked for; our files record theirs next to "model"; others have none."""
    if layout == "prerelease":
        return prerelease_input
    return obj.get("input_transform") if isinstance(obj.get("model"), dict) else None


def load_weights(model, obj, prerelease_input="symlog"):
    """Load a checkpoint's weights (a file's object `{"model": ...}` or a bare state_dict, any official layout)
    into our model, strictly. Pass the whole file object so a recorded input transform comes along too.

    For a pre-release file the encoder's input transform is `prerelease_input` ('symlog' or 'identity').
    Returns the layout name.
    """
    if prerelease_input not in INPUT_TRANSFORMS:
        raise unknown("prerelease_input", prerelease_input, list(INPUT_TRANSFORMS))
    layout = detect_layout(obj)
    load_converted(model, convert(obj))
    set_input_transform(model, input_transform_of(obj, layout, prerelease_input))
    return layout
