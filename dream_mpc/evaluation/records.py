"""The evaluation record format: one row per episode (`ROW_FIELDS`, described in docs/evaluation.md), in JSON Lines
files, and the collector that merges them.

Every evaluation job appends its episodes to `<results_dir>/episodes-<job key>.jsonl`, one file per job (`job_key`:
everything that changes its numbers), so jobs running at the same time never write to the same file. A row is one
`write` of one line, fsynced as its episode ends: a killed job loses at most the episode it was running, and the cost
per episode does not grow with the file (rewriting it would). The only damage a crash can do is a torn last line,
which `read_rows` skips and `append_row` cuts off before the next row. A collector over any set of folders keeps the
first row of each episode identity (the job's and the episode's index).
"""

import glob
import hashlib
import json
import os
import re
import time
from pathlib import Path

import torch

# a row's fields; exploitation: actual minus predicted returns (exploitation.py), penalty_active: false when the
# planner's uncertainty penalty did nothing (one value head), iterations and evaluations: gradient steps and
# objective evaluations per plan (mean over the episode; null for a planner that does not report them)
ROW_FIELDS = tuple(
    "suite task agent checkpoint weights train_seed planner options planning_dtype device eval_noise seed episode "
    "return success success_any score length ms_per_step nonfinite time exploitation penalty_active iterations "
    "evaluations".split()
)
JOB_FIELDS = tuple("task checkpoint weights agent planner options planning_dtype device eval_noise seed".split())
KEY_FIELDS = JOB_FIELDS + ("episode",)
PATTERN = "episodes-*.jsonl"


def options_json(options):
    """A planner's option block as compact, key-sorted JSON (the string that identifies the option set)."""
    return json.dumps(dict(options or {}), sort_keys=True, separators=(",", ":"))


def weights_digest(state_dict):
    """A digest of a model's weights (names, dtypes, shapes and values): the same weights give the same digest
    whatever file, layout or device they were loaded from."""
    h = hashlib.sha256()
    flat = {}

    def walk(prefix, d):  # a nested state (an agent's weights_state) flattened to dotted names
        for k, v in d.items():
            if isinstance(v, dict):
                walk(f"{prefix}{k}.", v)
            else:
                flat[f"{prefix}{k}"] = v

    walk("", state_dict)
    for name in sorted(flat):
        t = flat[name]
        if not hasattr(t, "detach"):
            continue
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def checkpoint_name(path):
    """The checkpoint as recorded: relative to the working directory when inside it, normalised."""
    path = os.path.normpath(str(path))
    try:
        rel = os.path.relpath(path)
        return rel if not rel.startswith("..") else path
    except ValueError:  # another drive (Windows)
        return path


def train_seed_of(path, saved_config=None):
    """The training seed of a checkpoint: its saved config's `seed`, else `<task>-<seed>.pt`, else None."""
    if isinstance(saved_config, dict) and isinstance(saved_config.get("seed"), int):
        return saved_config["seed"]
    m = re.search(r"-(\d+)$", Path(str(path)).stem)
    return int(m.group(1)) if m else None


def episode_key(row):
    return tuple(_norm(row.get(k)) for k in KEY_FIELDS)


def job_key(row):
    return tuple(_norm(row.get(k)) for k in JOB_FIELDS)


def _norm(v):
    return bool(v) if isinstance(v, bool) else v


def job_file(results_dir, row):
    """The file a job's rows go to: named by a hash of the job's identity (task, checkpoint, options, seed...)."""
    digest = hashlib.sha1(json.dumps(list(job_key(row)), sort_keys=True).encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{row['task']}-{row['planner']}-s{row['seed']}")
    return Path(results_dir) / f"episodes-{safe}-{digest}.jsonl"


def append_row(path, row):
    """Append one row as one line and fsync it. A torn last line left by a crash is cut off first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({k: row.get(k) for k in ROW_FIELDS}, separators=(",", ":")) + "\n"
    with open(path, "ab+") as f:
        size = f.seek(0, os.SEEK_END)
        if size:
            f.seek(size - 1)
            if f.read(1) != b"\n":  # a torn line from a killed writer: drop it, rows are whole lines
                f.seek(0)
                data = f.read()
                f.truncate(data.rfind(b"\n") + 1)
        f.write(line.encode())
        f.flush()
        os.fsync(f.fileno())


def read_rows(path):
    """The whole rows of one file; a torn or unparsable line (a crash mid-write) is skipped."""
    rows = []
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                continue
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and all(k in row for k in KEY_FIELDS):
                rows.append({k: row.get(k) for k in ROW_FIELDS} | {k: v for k, v in row.items() if k not in ROW_FIELDS})
    return rows


def files_in(paths):
    """Every record file under the given folders (searched recursively) or given directly as files."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(Path(q) for q in glob.glob(str(p / "**" / PATTERN), recursive=True)))
    return out


def collect(paths):
    """All rows of every record file under `paths`, one per episode identity (the first one read), in file order."""
    seen, rows = set(), []
    for f in files_in(paths):
        for row in read_rows(f):
            key = episode_key(row)
            if key not in seen:
                seen.add(key)
                rows.append(row)
    return rows


def lock_job(path):
    """Hold the job's lock until the returned file is closed: a second evaluation of the same job into the same
    folder waits (saying so), then finds the episodes recorded and skips them, so no episode is recorded twice.
    The kernel releases the lock of a process that dies."""
    import fcntl
    import sys

    lock = Path(path).parent / ".locks" / f"{Path(path).name}.lock"  # beside the records, out of their way
    lock.parent.mkdir(parents=True, exist_ok=True)
    f = open(lock, "a")  # noqa: SIM115 (held until the caller closes it)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for another process that evaluates the same job ({Path(path).name})", file=sys.stderr)
        fcntl.flock(f, fcntl.LOCK_EX)
    return f


def done_episodes(results_dir, job):
    """The episode indices already recorded in results_dir for this job (a dict with JOB_FIELDS)."""
    key = job_key(job)
    return {row["episode"] for row in collect([results_dir]) if job_key(row) == key}


def make_row(job, episode, result, suite, task, nonfinite):
    """A record row from the job's identity, the episode index and run_episode's result."""
    row = dict(job)
    row.update(
        {
            "episode": int(episode),
            "return": float(result["return"]),
            "success": float(result["success"]),
            "success_any": result.get("success_any"),
            "length": int(result["length"]),
            "ms_per_step": float(result["ms_per_step"]),
            "nonfinite": int(nonfinite),
            "time": time.time(),
            "exploitation": result.get("exploitation"),
            "iterations": result.get("iterations"),
            "evaluations": result.get("evaluations"),
            "suite": suite.name,
            "score": float(suite.normalized_score(task, result["return"], result["success"])),
        }
    )
    return row


def to_frame(rows):
    """Rows as a pandas DataFrame with the columns in ROW_FIELDS order."""
    import pandas as pd

    return pd.DataFrame([{k: r.get(k) for k in ROW_FIELDS} for r in rows], columns=list(ROW_FIELDS))
