"""Run logging: console lines, `train.csv` / `eval.csv` in the work dir, eval videos, and optionally wandb."""

import csv
import datetime
import os
from pathlib import Path

from tqdm import tqdm

from dream_mpc.evaluation.video import VIDEO_FPS, save_video

CSV_COLUMNS = {"eval": ("step", "episode_reward", "episode_success")}  # as the official eval.csv; train.csv: all
# console columns: (metric, label, format)
CONSOLE = (
    ("episode", "E", "{:,d}"),
    ("step", "I", "{:,d}"),
    ("episode_reward", "R", "{:.1f}"),
    ("episode_success", "S", "{:.2f}"),
    ("elapsed_time", "T", None),
    ("steps_per_second", "FPS", "{:.0f}"),
)


class CSVLog:
    """Rows appended to a CSV file; the header grows when a row brings new keys (e.g. losses after seeding)."""

    def __init__(self, path):
        self.path = Path(path)
        self.fields, self.rows = [], []
        if self.path.is_file():
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                self.fields, self.rows = list(reader.fieldnames or []), list(reader)

    def append(self, row):
        new = [k for k in row if k not in self.fields]
        self.rows.append(row)
        if new:
            self.fields += new
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, self.fields).writerow(row)

    def truncate(self, num_rows):
        self.rows = self.rows[:num_rows]
        self._rewrite()

    def _rewrite(self):
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, self.fields)
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)


class Logger:
    def __init__(self, cfg):
        self.work_dir = Path(cfg.work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._csv = {name: CSVLog(self.work_dir / f"{name}.csv") for name in ("train", "eval")} if cfg.save_csv else {}
        self._wandb = None
        if cfg.enable_wandb and cfg.wandb_project and cfg.wandb_entity:
            if cfg.wandb_silent:
                os.environ["WANDB_SILENT"] = "true"
            import wandb  # only when asked for: importing it is slow

            self._wandb = wandb.init(
                project=cfg.wandb_project,
                entity=cfg.wandb_entity,
                name=str(cfg.seed),
                group=f"{cfg.task}-{cfg.exp_name}",
                dir=str(self.work_dir),
                tags=[cfg.task, f"seed:{cfg.seed}", f"planner:{cfg.planner}", cfg.agent],
                config=cfg.to_dict(),
            )
        tqdm.write(
            f"work dir: {self.work_dir}  (task {cfg.task}, agent {cfg.agent}, planner {cfg.planner}, "
            f"wandb {'on' if self._wandb else 'off'})"
        )

    def rows(self):
        """Rows written per CSV file, saved with checkpoints so that a resumed run drops what came after."""
        return {name: len(log.rows) for name, log in self._csv.items()}

    def restart(self, rows=None):
        """Keep the first rows[name] rows of each CSV file (none: a fresh run)."""
        for name, log in self._csv.items():
            log.truncate((rows or {}).get(name, 0))

    def log(self, metrics, category):
        """category: train | eval; metrics hold at least step."""
        parts = []
        for key, label, fmt in CONSOLE:
            if key in metrics:
                value = metrics[key]
                text = str(datetime.timedelta(seconds=int(value))) if fmt is None else fmt.format(value)
                parts.append(f"{label}: {text}")
        tqdm.write(f"{category:<9}" + "  ".join(parts))
        if category in self._csv:
            columns = CSV_COLUMNS.get(category, metrics)
            self._csv[category].append({k: v for k, v in metrics.items() if k in columns})
        if self._wandb is not None:
            self._wandb.log({f"{category}/{k}": v for k, v in metrics.items()}, step=metrics["step"])

    def video(self, frames, step):
        path = save_video(frames, self.work_dir / "videos" / f"eval_{step}.mp4")
        if self._wandb is not None:
            import wandb

            self._wandb.log({"eval/video": wandb.Video(str(path), fps=VIDEO_FPS, format="mp4")}, step=step)

    def finish(self):
        if self._wandb is not None:
            self._wandb.finish()
