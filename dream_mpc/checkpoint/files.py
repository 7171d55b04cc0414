"""Checkpoint files on disk (docs/checkpoints.md): atomic writes, so a run killed mid-write (preemption, the OOM killer,
a full disk) leaves the previous checkpoint loadable (a temporary file in the same folder, fsynced, renamed over the
old one; a write error is a one-line `UserError`), and safe reads (`torch.load(weights_only=True)`: tensors, plain
containers and the classes a registered family allowlists for its files, `Agent.file_globals`; anything else is
refused unless the caller trusts the file, `trust_checkpoint=true`).
"""

import errno
import os
import pickle
import re
import tempfile
import warnings
from pathlib import Path

import torch

from dream_mpc.errors import UserError, first_line

TRUST_OPTION = "trust_checkpoint=true"
EXAMPLE = "checkpoint=agents/cartpole-swingup-tdmpc2-1M.pt"


# ---------------------------------------------------------------------------------------------------- writing
def _tmp_prefix(path):
    return f".{path.name}.{os.getpid()}."


def _remove_stale_temps(path):
    """Temporary files that a killed writer left next to `path` (its pid, in the name, is gone)."""
    pattern = re.compile(re.escape(f".{path.name}.") + r"(\d+)\..*\.tmp")
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        m = pattern.fullmatch(tmp.name)
        if m is None or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except OSError:  # alive, or not ours to ask about
            pass


def _write_error(path, err):
    reason = "disk full" if err.errno in (errno.ENOSPC, errno.EDQUOT) else "write failed"
    return UserError(
        f"cannot write checkpoint {path}: {reason} ({err.strerror or err}); "
        f"the previous checkpoint there, if any, is unchanged"
    )


def atomic_save(obj, path):
    """torch.save to a temporary file in the target folder, fsync, rename over `path`, fsync the folder."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=".tmp")
    except OSError as err:
        raise _write_error(path, err) from None
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        os_error = _os_error_in(err)
        if os_error is not None:
            raise _write_error(path, os_error) from None
        raise
    _fsync_dir(path.parent)


def _os_error_in(err):
    """The OSError behind `err`: torch.save's zip writer reports a failed write as a RuntimeError ("unexpected
    pos") raised while it handles the OSError, which is then only the exception's context."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _fsync_dir(folder):
    """Make the rename itself durable (a power cut right after it could otherwise bring back the old file)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------------- reading
def _allowed_globals():
    """What the registered families' files may name beyond tensors and plain data (`Agent.file_globals`)."""
    from dream_mpc.registry import agents

    return [g for _, cls in agents.items() for g in cls.file_globals()]


def _refused(path, err):
    """The weights_only unpickler's complaint: a global it refused (a class or function the file names, which
    unpickling would import and call), an opcode no pickle of plain data has (not a torch file, or damaged), or
    some other object it cannot rebuild."""
    text = str(err)
    m = re.search(r"GLOBAL ([\w.]+)", text)  # "Unsupported global: GLOBAL x.y", "unsupported GLOBAL x.y whose.."
    if m is None and re.search(r"unsupported operand", text, re.IGNORECASE):
        reason = next(line.strip() for line in text.splitlines() if "nsupported operand" in line)
        return UserError(f"cannot read checkpoint {path}: not a torch file, or damaged ({reason})")
    what = f"it names {m.group(1)}" if m else "it holds Python objects"
    return UserError(
        f"refusing to load {path}: {what}, beyond the tensors and plain data a checkpoint needs, and "
        f"unpickling it could run code. Only if you trust where the file came from, load it with "
        f"{TRUST_OPTION}"
    )


def read(path, device="cpu", trusted=False):
    """torch.load with tensors landing on `device` (files written on a GPU open on a CPU-only machine), a plain
    error for a missing or unreadable file, and weights_only=True unless `trusted` (then with a warning)."""
    path = _readable(Path(path))
    if trusted:
        warnings.warn(f"loading {path} with weights_only=False ({TRUST_OPTION}): the file can run code", stacklevel=2)
    try:
        if trusted:
            obj = torch.load(path, map_location=device, weights_only=False)
        else:
            with torch.serialization.safe_globals(_allowed_globals()):
                obj = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" in str(err):
            raise _refused(path, err) from None
        raise UserError(f"cannot read checkpoint {path}: {type(err).__name__}: {first_line(err)}") from None
    except Exception as err:
        damage = _damage(path)
        if damage:
            raise UserError(f"cannot read checkpoint {path}: {damage}") from None
        raise UserError(f"cannot read checkpoint {path}: {type(err).__name__}: {first_line(err)}") from None
    return obj


def _readable(path):
    """`path` if it is a file that torch.save could have written (a zip archive, or a pickle for files from before
    PyTorch 1.6); else a one-line UserError naming what is allowed, before anything is loaded."""
    must = f"checkpoint= must name a .pt file written by torch.save, e.g. {EXAMPLE}"
    if not path.is_file():
        raise UserError(
            f"checkpoint not found: {path} ({'is a directory' if path.is_dir() else 'no such file'}); {must}"
        )
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        raise UserError(f"cannot read checkpoint {path}: {err.strerror}; {must}") from None
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # zip archive; legacy pickle (protocol 2+)
        raise UserError(
            f"cannot read checkpoint {path}: not a torch file (neither the zip archive nor the pickle that "
            f"torch.save writes); {must}"
        )
    return path


def _damage(path):
    """What is wrong with a torch zip archive that does not load: truncated, or a member that fails its CRC check
    (an interrupted download or copy); None when the archive is whole or not a zip archive at all."""
    import zipfile

    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            return None
    hint = "an interrupted download or copy? Fetch or copy the file again"
    if not zipfile.is_zipfile(path):
        return f"the file is truncated or damaged ({size:,} bytes, and the end of its zip archive is missing; {hint})"
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError, NotImplementedError) as err:
        return f"the file is corrupt ({size:,} bytes; its zip archive does not read: {first_line(err)}; {hint})"
    return f"the file is corrupt ({size:,} bytes; {bad} fails its checksum; {hint})" if bad else None
