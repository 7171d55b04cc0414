"""TD-MPC2's offline multi-task trainer: `python train.py task=mt30 data_dir=<dir of chunk_*.pt>`.

A chunk is a torch-saved TensorDict of whole episodes with batch [episodes, steps] (official: mt30 chunks hold
(N, 501) episodes with `obs` (N, 501, 24), `action` (N, 501, 6), `reward` (N, 501), `task` (N, 501) int32; row 0 is
the reset observation, its action and reward NaN). The chunks are read with weights_only=True (no code runs from
them), the episodes of the set's tasks (task id < len(cfg.tasks)) go into the replay buffer, and the agent takes
cfg.steps gradient steps; every eval_freq steps and at the end (eval_freq > 0) every task is evaluated (eval_episodes
episodes each, the official score: 100 x each suite's normalized score, averaged over the tasks); the agent is saved
to models/<step>.pt then and at the end (save_agent). `TDMPC2.train_task_set` is this module's `train`.
"""

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dream_mpc.envs import make_env, suite_of
from dream_mpc.envs.multitask import set_score
from dream_mpc.errors import UserError
from dream_mpc.evaluation.episodes import run_episode

REQUIRED_KEYS = ("obs", "action", "reward", "task")
OFFICIAL_CHUNKS = {"mt30": 4, "mt80": 20}


def chunk_files(data_dir):
    files = sorted(Path(data_dir).glob("*.pt")) if data_dir else []
    if not files:
        raise UserError(
            f"no dataset chunks (*.pt) in data_dir={data_dir!r}; download TD-MPC2's mt30/mt80 chunks "
            "(huggingface.co/datasets/nicklashansen/tdmpc2) and pass data_dir=<their folder>"
        )
    return files


def read_chunk(path):
    """One chunk as a dict of (episodes, steps, ...) tensors (weights_only: no code runs from the file)."""
    import tensordict  # noqa: F401 - importing it allowlists its TensorDict reductions for weights_only loading

    try:
        td = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"cannot read dataset chunk {path}: {err}") from None
    missing = [k for k in REQUIRED_KEYS if k not in td.keys()]
    if missing:
        raise UserError(f"dataset chunk {path} lacks {missing}; a chunk holds {', '.join(REQUIRED_KEYS)}")
    data = {k: td[k] for k in td.keys() if k in REQUIRED_KEYS + ("terminated",)}
    if data["obs"].dim() != 3:
        raise UserError(f"dataset chunk {path}: obs must be (episodes, steps, dim), got {tuple(data['obs'].shape)}")
    return data


def load_dataset(cfg, log=tqdm.write):
    """A replay buffer holding every episode of the set's tasks (ids < len(cfg.tasks)) from cfg.data_dir."""
    import types

    from dream_mpc.training.buffer import Buffer

    files = chunk_files(cfg.data_dir)
    if cfg.task in OFFICIAL_CHUNKS and len(files) < OFFICIAL_CHUNKS[cfg.task]:
        log(
            f"warning: {len(files)} chunk(s) in {cfg.data_dir}; the official {cfg.task} dataset has "
            f"{OFFICIAL_CHUNKS[cfg.task]}"
        )
    obs_dim, action_dim, num_tasks = cfg.obs_shape[cfg.obs][0], cfg.action_dim, len(cfg.tasks)
    chunks = []
    for path in files:
        data = read_chunk(path)
        if data["obs"].shape[-1] > obs_dim or data["action"].shape[-1] > action_dim:
            raise UserError(
                f"dataset chunk {path} has obs dim {data['obs'].shape[-1]} and action dim "
                f"{data['action'].shape[-1]}; task={cfg.task} takes at most {obs_dim} and {action_dim}"
            )
        task = data["task"][:, 0].long()
        chunks.append((path, data, ((task >= 0) & (task < num_tasks)).nonzero().squeeze(1).tolist()))
    rows = sum(len(keep) * data["obs"].shape[1] for _, data, keep in chunks)
    if rows == 0:
        raise UserError(f"no episode of {cfg.task}'s tasks (ids 0..{num_tasks - 1}) in {cfg.data_dir}")
    length = max(data["obs"].shape[1] for _, data, _ in chunks)
    buffer = Buffer(
        types.SimpleNamespace(
            buffer_size=max(rows, length + 1),
            steps=rows,
            episode_length=length,
            horizon=cfg.horizon,
            batch_size=cfg.batch_size,
            device=cfg.device,
        )
    )
    for path, data, keep in chunks:
        terminated = data.get("terminated")
        for i in keep:
            reward = data["reward"][i].reshape(-1).float()
            buffer.add(
                {
                    "obs": _pad(data["obs"][i], obs_dim),
                    "action": _pad(data["action"][i], action_dim),
                    "reward": reward,
                    "task": data["task"][i].long(),
                    "terminated": torch.zeros_like(reward) if terminated is None else terminated[i].reshape(-1).float(),
                }
            )
        log(f"loaded {path.name}: {len(keep)} of {len(data['task'])} episodes")
    chunks.clear()
    return buffer


def train(cfg):
    """train.py's branch for task=mt30|mt80: dims from the tables, the agent, the dataset, the updates."""
    from dream_mpc import runtime
    from dream_mpc.registry import agents
    from dream_mpc.training.logger import Logger

    runtime.setup(cfg)
    env = make_env(cfg)  # one env over the set's tasks, its dims from the tables (no simulator is built yet)
    agent = agents.get(cfg.agent)(cfg)
    OfflineTrainer(cfg, env, agent, load_dataset(cfg), Logger(cfg)).train()


def _pad(x, dim):
    x = x.float()
    if x.shape[-1] == dim:
        return x
    out = torch.zeros(*x.shape[:-1], dim)
    out[..., : x.shape[-1]] = x
    return out


class OfflineTrainer:
    def __init__(self, cfg, env, agent, buffer, logger):
        self.cfg, self.env, self.agent, self.buffer, self.logger = cfg, env, agent, buffer, logger
        self.models_dir = Path(cfg.work_dir) / "models"

    def eval(self, step):
        """eval_episodes episodes of every task (or of eval_tasks); logs each task's mean return and success, and
        the official score."""
        metrics, scores = {"step": step}, {}
        for task in self.cfg.get("eval_tasks") or self.cfg.tasks:
            index = self.cfg.tasks.index(task)
            self.env.set_task(index)
            episodes = [run_episode(self.agent, self.env, task=index) for _ in range(self.cfg.eval_episodes)]
            metrics[f"{task}/episode_reward"] = float(np.mean([ep["return"] for ep in episodes]))
            metrics[f"{task}/episode_success"] = float(np.mean([ep["success"] for ep in episodes]))
            scores[task] = [suite_of(task).normalized_score(task, ep["return"], ep["success"]) for ep in episodes]
        metrics["score"] = set_score(scores)
        self.logger.log(metrics, "eval")
        return metrics

    def save(self, step):
        from dream_mpc import checkpoint

        checkpoint.save(self.models_dir / f"{step}.pt", self.agent, step=step)

    def train(self):
        cfg = self.cfg
        tqdm.write(f"{self.buffer.num_episodes} episodes in the buffer; {cfg.steps:,} updates")
        metrics, start = [], time.time()
        for step in tqdm(range(1, cfg.steps + 1), unit="update", dynamic_ncols=True):
            metrics.append(self.agent.update(self.buffer))
            if step % 1000 == 0 or step == cfg.steps:
                summary = {k: float(np.mean([float(m[k]) for m in metrics])) for k in metrics[0]}
                summary.update(step=step, elapsed_time=time.time() - start)
                self.logger.log(summary, "train")
                metrics = []
            if cfg.eval_freq > 0 and step % cfg.eval_freq == 0 and step < cfg.steps:
                self.eval(step)
                if cfg.save_agent:
                    self.save(step)
        if cfg.eval_freq > 0:
            self.eval(cfg.steps)
        if cfg.save_agent:
            self.save(cfg.steps)
        self.logger.finish()
