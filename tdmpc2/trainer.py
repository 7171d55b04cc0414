"""TD-MPC2's online trainer: seed with random actions, pretrain on the seed data, then one update per env step;
evaluate every eval_freq steps and checkpoint every save_freq steps (both at the next episode end).

Checkpoints (`models/last.pt`) hold the weights, optimizers, step, episode count, buffer, RNG states and CSV row
counts, so a killed run resumes from its last one and loses only the steps since. An agent that stores plan
targets in the buffer (BMPC) defines `buffer_extras(planned) -> dict` of per-step tensors (NaN when not planned).
"""
import inspect
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tdmpc2 import checkpoint
from tdmpc2.errors import UserError
from tdmpc2.evaluation import run_episode

BUFFER_SAVE_LIMIT = 1 << 30  # bytes: a larger buffer is left out of checkpoints (a resumed run refills it)


class OnlineTrainer:
    def __init__(self, cfg, env, agent, buffer, logger):
        self.cfg, self.env, self.agent, self.buffer, self.logger = cfg, env, agent, buffer, logger
        self.models_dir = Path(cfg.work_dir) / "models"
        self._buffer_extras = getattr(agent, "buffer_extras", None)
        self._step = 0
        self._episode = 0  # completed training episodes
        self._pretrained = False
        self._eval_next = True  # official: evaluate before training starts
        self._start_time, self._start_step = time.time(), 0
        self._update_metrics = []  # metrics of the updates since the last episode end

    # ------------------------------------------------------------------ metrics
    def common_metrics(self):
        elapsed = time.time() - self._start_time
        return {"step": self._step, "episode": self._episode, "elapsed_time": elapsed,
                "steps_per_second": (self._step - self._start_step) / max(elapsed, 1e-9),
                "nonfinite_actions": self.agent.nonfinite_actions,
                "planner_nonfinite": self.agent.planner.nonfinite_count}

    # ------------------------------------------------------------------ evaluation
    def eval(self):
        """eval_episodes episodes with eval_mode=True; a video of the first when save_video."""
        episodes = [run_episode(self.agent, self.env, eval_mode=True, render=self.cfg.save_video and i == 0)
                    for i in range(self.cfg.eval_episodes)]
        if episodes[0]["frames"] is not None:
            self.logger.video(episodes[0]["frames"], self._step)
        metrics = {"episode_reward": float(np.mean([ep["return"] for ep in episodes]))}
        if self.env.has_success:
            metrics["episode_success"] = float(np.mean([ep["success"] for ep in episodes]))
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def save(self, name, resumable=True):
        extra = {"step": self._step, "episode": self._episode}
        if resumable:
            extra.update(pretrained=self._pretrained, eval_next=self._eval_next, log_rows=self.logger.rows(),
                         nonfinite=(self.agent.nonfinite_actions, self.agent.planner.nonfinite_count),
                         rng={"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                              "python": random.getstate(), "env": self.env.get_rng_state(),
                              "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None})
            if self.buffer.nbytes < BUFFER_SAVE_LIMIT:
                extra["buffer"] = self.buffer.state_dict()
        checkpoint.save(self.models_dir / f"{name}.pt", self.agent, **extra)

    def resume(self):
        """Continue from models/last.pt when resume=true and it exists; otherwise start the logs afresh."""
        path = self.models_dir / "last.pt"
        if not (self.cfg.resume and path.is_file()):
            self.logger.restart()
            return
        ckpt = checkpoint.read(path)
        checkpoint.load_weights(self.agent.model, ckpt["model"])
        self.agent.load_state_dict(ckpt["agent"])
        self._step = self._start_step = ckpt["step"]
        self._episode, self._pretrained, self._eval_next = ckpt["episode"], ckpt["pretrained"], ckpt["eval_next"]
        self.agent.nonfinite_actions, self.agent.planner.nonfinite_count = ckpt["nonfinite"]
        if "buffer" in ckpt:
            self.buffer.load_state_dict(ckpt["buffer"])
        else:
            tqdm.write("warning: the checkpoint holds no buffer (too large to save); updates resume as it refills")
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        self.env.set_rng_state(rng["env"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.logger.restart(ckpt["log_rows"])
        tqdm.write(f"resumed from {path} at step {self._step:,} (episode {self._episode})")

    # ------------------------------------------------------------------ training
    def _row(self, obs, action=None, reward=None, terminated=None, planned=False):
        """One buffer row: obs_t with action_{t-1}, reward_{t-1}, terminated_{t-1} (NaN on the reset row)."""
        nan = torch.tensor(float("nan"))
        row = {"obs": obs, "action": torch.full((self.cfg.action_dim,), float("nan")) if action is None else action,
               "reward": nan if reward is None else reward, "terminated": nan if terminated is None else terminated}
        if self._buffer_extras is not None:
            row.update(self._buffer_extras(planned=planned))
        return row

    def _end_episode(self, episode, info):
        if info["terminated"] and not self.cfg.episodic:  # the episode ends; only episodic=true makes it terminal
            episode[-1]["terminated"] = torch.zeros_like(episode[-1]["terminated"])
        self._episode += 1
        metrics = self.common_metrics()
        metrics.update(episode_reward=float(torch.stack([r["reward"] for r in episode[1:]]).sum()),
                       episode_length=len(episode) - 1)
        if self.env.has_success:
            metrics["episode_success"] = float(info["success"])
        if self._update_metrics:
            keys = dict.fromkeys(k for m in self._update_metrics for k in m)  # pretrain updates may lack some
            metrics.update({k: float(np.mean([m[k] for m in self._update_metrics if k in m])) for k in keys})
            self._update_metrics = []
        self.logger.log(metrics, "train")
        self.buffer.add(episode)
        return metrics

    def _update(self):
        """Pretrain with seed_steps updates the first time the buffer can be sampled after seeding, then 1 per step."""
        if self._pretrained:
            self._update_metrics.append(self.agent.update(self.buffer))
            return
        self._pretrained = True
        kwargs = {"pretrain": True} if _accepts(self.agent.update, "pretrain") else {}  # BMPC: no policy update
        for _ in tqdm(range(self.cfg.seed_steps), desc="pretraining", position=1, leave=False, dynamic_ncols=True):
            self._update_metrics.append(self.agent.update(self.buffer, **kwargs))

    def train(self):
        cfg = self.cfg
        self.resume()
        bar = tqdm(total=cfg.steps, initial=self._step, unit="step", dynamic_ncols=True)
        done, episode, info, save_next = True, None, None, False
        while self._step <= cfg.steps:
            if done:
                if episode is not None:
                    bar.set_postfix(reward=f"{self._end_episode(episode, info)['episode_reward']:.1f}")
                    if save_next:
                        self.save("last")
                        save_next = False
                if self._eval_next:
                    eval_metrics = self.eval()
                    self.logger.log({**self.common_metrics(), **eval_metrics}, "eval")
                    self._eval_next = False
                obs = self.env.reset()
                episode = [self._row(obs)]
            planned = self._step > cfg.seed_steps
            action = self.agent.act(obs, t0=len(episode) == 1) if planned else self.env.rand_act()
            obs, reward, done, info = self.env.step(action)
            episode.append(self._row(obs, action, reward, info["terminated"], planned))
            if self._step >= cfg.seed_steps and self.buffer.num_episodes:
                self._update()
            self._step += 1
            bar.update(1)
            self._eval_next |= cfg.eval_freq > 0 and self._step % cfg.eval_freq == 0
            save_next |= cfg.save_freq > 0 and self._step % cfg.save_freq == 0
        bar.close()
        if cfg.save_agent:
            self.save("final", resumable=False)
        self.logger.finish()


def _accepts(fn, name):
    """Whether fn takes a keyword argument `name` (agents differ: BMPC's update takes pretrain=)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
