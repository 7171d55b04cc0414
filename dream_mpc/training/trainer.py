"""The online trainer of every agent family. By default TD-MPC2's schedule: seed with random actions, pretrain on the
seed data, then one update per env step; evaluate every eval_freq steps and checkpoint every save_freq steps (both at
the next episode end). An agent whose `schedule(cfg)` is an `EpisodeSchedule` (dream_mpc/agent.py) acts randomly for
its first seed_episodes episodes and updates updates_per_episode times after each episode from then on; one that
stores plan targets in the buffer (BMPC) defines `buffer_extras(planned) -> dict` of per-step tensors.

Checkpoints (`models/last.pt`) hold everything a bit-exact resume needs: weights, optimizers, counters, buffer, every
RNG state (as tensors and plain tuples, so they read back with weights_only=True), CSV row counts and the episode in
progress (replayed from the env's random state at its reset). SIGTERM or SIGUSR1 only sets a flag: the loop saves at
the next step boundary (an evaluation in progress is dropped and runs again on resume) and exits with 128 + the
signal; Ctrl-C stops at once and names the checkpoint a rerun resumes from (docs/checkpoints.md).
"""

import random
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dream_mpc import checkpoint
from dream_mpc.errors import UserError, first_line
from dream_mpc.evaluation.episodes import run_episode
from dream_mpc.training.buffer import episode_row

BUFFER_SAVE_LIMIT = 1 << 30  # bytes: a larger buffer is left out of checkpoints (a resumed run refills it)
STOP_SIGNALS = ("SIGTERM", "SIGUSR1")
# config keys that may change between a run and its resumption without a warning
RUN_CONTROL_KEYS = set(
    "steps resume trust_checkpoint checkpoint threads plan_threads device wandb_project wandb_entity wandb_silent "
    "enable_wandb save_video work_dir _overridden".split()
)


class Stopped(SystemExit):
    """Training stopped by a signal after saving a checkpoint; exits with 128 + the signal number."""


class _EvalStopped(Exception):
    """A stop signal arrived during an evaluation: it ends at that env step (the training loop saves)."""


class OnlineTrainer:
    def __init__(self, cfg, env, agent, buffer, logger):
        self.cfg, self.env, self.agent, self.buffer, self.logger = cfg, env, agent, buffer, logger
        self.models_dir = Path(cfg.work_dir) / "models"
        self._buffer_extras = getattr(agent, "buffer_extras", None)
        schedule = getattr(type(agent), "schedule", None)  # an agent outside the contract: the per-step schedule
        self._schedule = schedule(cfg) if schedule is not None else None
        self._step = 0
        self._episode = 0  # completed training episodes
        self._pretrained = False
        # updates due but not yet made (pretraining's seed_steps, an episode schedule's batch): made one by one at a
        # step boundary, so a stop signal between two of them saves a checkpoint that resumes with the rest
        self._pending_updates, self._pending_pretrain = 0, False
        self._eval_next = cfg.eval_freq > 0  # official: evaluate before training starts (eval_freq=0: never)
        self._start_time, self._start_step = time.time(), 0
        self._elapsed_before = 0.0  # wall time of the segments before a resume
        self._update_metrics = []  # metrics of the updates since the last episode end
        self._stop_signal = None  # set by the signal handler, acted on at the next step boundary
        self._saved = None  # (path, step) of the last checkpoint this run wrote or resumed from
        # the loop's state between steps: what a checkpoint in the middle of an episode must hold
        self._episode_rows, self._obs, self._done, self._info, self._save_next = None, None, True, None, False
        self._episode_env_rng = None  # the env's random state right before the current episode's reset

    # ------------------------------------------------------------------ metrics
    def _elapsed(self):
        """The run's wall time: this segment's plus that of the segments it resumed from."""
        return self._elapsed_before + time.time() - self._start_time

    def common_metrics(self):
        segment = time.time() - self._start_time
        return {
            "step": self._step,
            "episode": self._episode,
            "elapsed_time": self._elapsed_before + segment,
            "steps_per_second": (self._step - self._start_step) / max(segment, 1e-9),  # this segment's speed
            "nonfinite_actions": self.agent.nonfinite_actions,
            "planner_nonfinite": self.agent.planner.nonfinite_count,
        }

    # ------------------------------------------------------------------ evaluation
    def eval(self):
        """eval_episodes episodes with eval_mode=True; a video of the first when save_video. A progress bar counts
        the evaluation's env steps (the training bar stands still meanwhile). A stop signal ends it after the env
        step in progress (_EvalStopped): an evaluation of pixel MPPI takes many minutes, a preemption's grace period
        does not."""
        n, length = self.cfg.eval_episodes, self.env.max_episode_steps
        episodes = []

        def on_step():
            bar.update(1)
            if self._stop_signal is not None:
                raise _EvalStopped

        with tqdm(
            total=n * length,
            desc=f"eval at step {self._step:,}",
            unit="step",
            position=1,
            leave=False,
            dynamic_ncols=True,
        ) as bar:
            for i in range(n):
                bar.set_postfix(episode=f"{i + 1}/{n}")
                render = self.cfg.save_video and i == 0  # a video of the first episode
                episodes.append(run_episode(self.agent, self.env, eval_mode=True, render=render, on_step=on_step))
                bar.update((i + 1) * length - bar.n)  # an episode that ended early
        if episodes[0]["frames"] is not None:
            self.logger.video(episodes[0]["frames"], self._step)
        metrics = {"episode_reward": float(np.mean([ep["return"] for ep in episodes]))}
        if self.env.has_success:
            metrics["episode_success"] = float(np.mean([ep["success"] for ep in episodes]))
        return metrics

    def _evaluate(self, bar):
        """The due evaluation, logged. Stopped during it: what it changed that a checkpoint holds (random states,
        non-finite counters) is put back, so the saved run is the one before it and evaluates again on resume."""
        before = self._rng_state(), (self.agent.nonfinite_actions, self.agent.planner.nonfinite_count)
        try:
            eval_metrics = self.eval()
        except _EvalStopped:
            self._set_rng_state(before[0])
            self.agent.nonfinite_actions, self.agent.planner.nonfinite_count = before[1]
            self._stop(bar, f"the evaluation at step {self._step:,} was cut short and runs again on resume")
        self.logger.log({**self.common_metrics(), **eval_metrics}, "eval")
        self._eval_next = False

    # ------------------------------------------------------------------ checkpoints
    def _rng_state(self):
        return {
            "torch": torch.get_rng_state(),
            "numpy": _plain_rng(np.random.get_state()),
            "python": random.getstate(),
            "env": _plain_rng(self.env.get_rng_state()),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def _set_rng_state(self, rng):
        torch.set_rng_state(rng["torch"])
        np.random.set_state(_numpy_rng(rng["numpy"]))
        version, internal, gauss = rng["python"]
        random.setstate((version, tuple(internal), gauss))  # a checkpoint may hold lists; setstate needs tuples
        self.env.set_rng_state(_numpy_rng(rng["env"]))
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def save(self, name, resumable=True):
        extra = {"step": self._step, "episode": self._episode}
        if resumable:
            extra.update(
                elapsed_time=self._elapsed(),
                pretrained=self._pretrained,
                pending_updates=(self._pending_updates, self._pending_pretrain),
                eval_next=self._eval_next,
                save_next=self._save_next,
                log_rows=self.logger.rows(),
                update_metrics=list(self._update_metrics),
                nonfinite=(self.agent.nonfinite_actions, self.agent.planner.nonfinite_count),
                rng=self._rng_state(),
                current_episode=self._episode_state(),
            )
            if self.buffer.nbytes < BUFFER_SAVE_LIMIT:
                extra["buffer"] = self.buffer.state_dict()
        path = self.models_dir / f"{name}.pt"
        checkpoint.save(path, self.agent, **extra)
        if resumable:
            self._saved = (path, self._step)
        return path

    def _episode_state(self):
        """The episode in progress (None between episodes): its rows, whether it just ended, the env's random
        state at its reset, and the planner's carried-over warm start."""
        if self._episode_rows is None:
            return None
        return {
            "rows": self._episode_rows,
            "done": self._done,
            "info": self._info,
            "env_rng": _plain_rng(self._episode_env_rng),
            "acting": self.agent.acting_state(),  # a planner's warm start, a recurrent filter's state
        }

    def _restore_episode(self, state):
        """Back into the episode a checkpoint was written in: reset the env from its saved random state and
        replay the stored actions (simulators are deterministic), then restore the planner's warm start."""
        self._episode_rows, self._done, self._info = state["rows"], state["done"], state["info"]
        self._episode_env_rng = _numpy_rng(state["env_rng"])
        self._obs = self._episode_rows[-1]["obs"]
        self.agent.load_acting_state(state["acting"])
        if self._done:  # it ended at the checkpoint: the loop ends it and resets the env
            return
        self.env.set_rng_state(self._episode_env_rng)
        obs = self.env.reset()
        for row in self._episode_rows[1:]:
            obs, *_ = self.env.step(row["action"])
        if not torch.equal(torch.as_tensor(obs), torch.as_tensor(self._obs)):
            tqdm.write(
                "warning: replaying the interrupted episode did not reproduce its last observation (a "
                "different simulator version?); training goes on from the replayed state"
            )
            self._obs = obs

    def resume(self):
        """Continue from models/last.pt when resume=true and it exists; otherwise start the logs afresh."""
        path = self.models_dir / "last.pt"
        if not (self.cfg.resume and path.is_file()):
            self.logger.restart()
            return
        ckpt = checkpoint.read(path, trusted=self.cfg.get("trust_checkpoint", False))
        self._warn_config_changes(path, ckpt.get("config"))
        try:
            self.agent.load_weights_state(ckpt["model"])
            self.agent.load_state_dict(ckpt["agent"])
        except (UserError, KeyError, ValueError, RuntimeError) as err:
            raise UserError(
                f"tried to resume {path}, but it holds a different model than this run builds "
                f"({first_line(err)}). To start fresh instead: resume=false (overwrites that run) or a "
                f"new exp_name=..."
            ) from None
        self._step = self._start_step = ckpt["step"]
        self._episode, self._pretrained, self._eval_next = ckpt["episode"], ckpt["pretrained"], ckpt["eval_next"]
        self._save_next, self._update_metrics = ckpt["save_next"], list(ckpt["update_metrics"])
        self._pending_updates, self._pending_pretrain = ckpt["pending_updates"]
        self.agent.nonfinite_actions, self.agent.planner.nonfinite_count = ckpt["nonfinite"]
        if "buffer" in ckpt:
            self.buffer.load_state_dict(ckpt["buffer"])
        else:
            tqdm.write("warning: the checkpoint holds no buffer (too large to save); updates resume as it refills")
        if ckpt.get("current_episode") is not None:
            self._restore_episode(ckpt["current_episode"])
        self._set_rng_state(ckpt["rng"])
        self.logger.restart(ckpt["log_rows"])
        self._elapsed_before = float(ckpt["elapsed_time"])  # the wall time so far
        self._saved = (path, self._step)
        tqdm.write(f"resumed from {path} at step {self._step:,} (episode {self._episode})")

    def _warn_config_changes(self, path, saved):
        """A resume with another config is allowed (e.g. more steps), but never silent."""
        if not isinstance(saved, dict):
            return
        current = self.cfg.to_dict()
        changed = [
            f"{k} ({saved.get(k)!r} -> {current.get(k)!r})"
            for k in sorted(set(saved) | set(current))
            if k not in RUN_CONTROL_KEYS and not k.startswith("_") and saved.get(k) != current.get(k)
        ]
        if changed:
            tqdm.write(
                f"warning: resuming {path}, whose config differs from this run's in {', '.join(changed)}. "
                f"To start fresh instead: resume=false (overwrites that run) or a new exp_name=..."
            )

    # ------------------------------------------------------------------ stopping
    def _install_signal_handlers(self):
        """SIGTERM/SIGUSR1 set a flag (saving inside a handler could interrupt a write of the same state)."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for name in STOP_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None:
                previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _on_signal(self, signum, _frame):
        if self._stop_signal is None:
            self._stop_signal = signum

    def _stop(self, bar, note=None):
        """Save at this step boundary, say so, and exit with 128 + the signal number."""
        bar.close()
        name = signal.Signals(self._stop_signal).name
        path = self.save("last")
        if self._episode_rows is not None and not self._done:
            what = f"with the episode in progress, {len(self._episode_rows) - 1} steps in"
        else:
            what = "between episodes"
        if self._pending_updates:
            what += f"; {self._pending_updates:,} {'pretraining ' if self._pending_pretrain else ''}updates to go"
        if note:
            what += f"; {note}"
        tqdm.write(
            f"{name} received: saved {path} at step {self._step:,} ({what}). To resume, run the same "
            f"command again (with resume=true, the default)."
        )
        sys.stdout.flush()
        self.logger.finish()
        raise Stopped(128 + self._stop_signal)

    def _interrupted(self):
        if self._saved is None:
            msg = (
                f"nothing saved yet (checkpoints are written every save_freq={self.cfg.save_freq} steps, at an "
                "episode's end); running the same command again starts afresh"
            )
        else:
            path, step = self._saved
            msg = f"the last checkpoint is {path} at step {step:,}; run the same command again to resume from it"
        print(f"interrupted at step {self._step:,}: {msg}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ training
    def _end_episode(self, episode, info):
        if info["terminated"] and not self.cfg.episodic:  # the episode ends; only episodic=true makes it terminal
            episode[-1]["terminated"] = torch.zeros_like(episode[-1]["terminated"])
        self._episode += 1
        metrics = self.common_metrics()
        metrics.update(
            episode_reward=float(torch.stack([r["reward"] for r in episode[1:]]).sum()), episode_length=len(episode) - 1
        )
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
        """Pretrain with seed_steps updates the first time the buffer can be sampled after seeding (made at the next
        step boundary, before anything else happens), then 1 per step."""
        if self._pretrained:
            self._update_metrics.append(self.agent.update(self.buffer))
            return
        self._pretrained = True
        self._pending_updates, self._pending_pretrain = self.cfg.seed_steps, True

    def _run_pending(self, bar):
        """The updates due, one by one; a stop signal between two of them saves and stops (the rest are in the file)."""
        if not self._pending_updates:
            return
        desc = "pretraining" if self._pending_pretrain else "updates"
        with tqdm(total=self._pending_updates, desc=desc, position=1, leave=False, dynamic_ncols=True) as updates:
            while self._pending_updates:
                if self._stop_signal is not None:
                    updates.close()
                    self._stop(bar)
                self._update_metrics.append(self.agent.update(self.buffer, pretrain=self._pending_pretrain))
                self._pending_updates -= 1
                updates.update(1)
        self._pending_pretrain = False

    def _acts(self):
        """Whether the agent acts at this step (else a random action): after the seeding."""
        if self._schedule is None:
            return self._step > self.cfg.seed_steps
        return self._episode >= self._schedule.seed_episodes

    def _episode_updates(self):
        """Make an episode schedule's updates due once an episode entered the buffer (`_run_pending` runs them)."""
        schedule = self._schedule
        if schedule is None or self._episode < schedule.seed_episodes or not self.buffer.num_episodes:
            return
        self._pending_updates, self._pending_pretrain = schedule.updates_per_episode, False

    def _warn_no_updates(self):
        """Updates start after the seeding, once the buffer holds a whole episode: a warning if `steps` ends first."""
        length = self.env.max_episode_steps
        if self._schedule is not None:
            episodes = max(self._schedule.seed_episodes, 1)
            first, why = episodes * length, f"after {episodes} episodes"
        else:
            first = max(self.cfg.seed_steps, length)
            why = f"after seed_steps={self.cfg.seed_steps} random steps and the first episode's end at step {length}"
        if self.cfg.steps < first:
            tqdm.write(
                f"warning: no update will happen: updates start at step {first:,} ({why}), but steps={self.cfg.steps}; "
                "the agent only acts randomly"
            )

    def train(self):
        previous = self._install_signal_handlers()
        try:
            self._train()
        except KeyboardInterrupt:
            self._interrupted()
            raise
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _train(self):
        cfg = self.cfg
        self.resume()
        self._warn_no_updates()
        if self._step > cfg.steps:
            tqdm.write(
                f"nothing to train: {self._saved[0]} is at step {self._step:,}, past steps={cfg.steps:,}. "
                f"Raise steps= to train further, or start fresh with resume=false or a new exp_name=..."
            )
            self.logger.finish()
            return
        bar = tqdm(total=cfg.steps, initial=self._step, unit="step", dynamic_ncols=True)
        while self._step <= cfg.steps:
            if self._stop_signal is not None:
                self._stop(bar)
            self._run_pending(bar)
            if self._done:
                if self._episode_rows is not None:
                    bar.set_postfix(reward=f"{self._end_episode(self._episode_rows, self._info)['episode_reward']:.1f}")
                    self._episode_rows = None
                    self._episode_updates()
                    self._run_pending(bar)
                    if self._save_next:
                        self._save_next = False
                        self.save("last")
                if self._eval_next:
                    self._evaluate(bar)
                self._episode_env_rng = self.env.get_rng_state()
                self._obs = self.env.reset()
                self._episode_rows = [episode_row(self._obs, cfg.action_dim, extras=self._buffer_extras)]
                self._done = False
            planned = self._acts()
            if planned:
                action = self.agent.act(self._obs, t0=len(self._episode_rows) == 1)
            else:
                action = self.env.rand_act()
            self._obs, reward, self._done, self._info = self.env.step(action)
            terminated = self._info["terminated"]
            row = episode_row(self._obs, cfg.action_dim, action, reward, terminated, self._buffer_extras, planned)
            self._episode_rows.append(row)
            if self._schedule is None and self._step >= cfg.seed_steps and self.buffer.num_episodes:
                self._update()
            self._step += 1
            bar.update(1)
            self._eval_next |= cfg.eval_freq > 0 and self._step % cfg.eval_freq == 0
            self._save_next |= cfg.save_freq > 0 and self._step % cfg.save_freq == 0
        bar.close()
        self.save("last")  # a rerun with a larger `steps` continues from here
        if cfg.save_agent:
            self.save("final", resumable=False)
        self.logger.finish()


# ---------------------------------------------------------------------------------------------------- state
def _plain_rng(state):
    """A random state as plain data for weights_only checkpoints, whatever its shape (a numpy RandomState tuple, a
    numpy Generator's dict, a suite's dict of both): numpy arrays become tagged int64/float tensors, numpy scalars
    Python numbers; tuples, lists and dicts are kept. `_numpy_rng` undoes it exactly."""
    if isinstance(state, np.ndarray):
        wide = state.dtype.kind == "u" and state.dtype.itemsize == 8  # bit-preserving view, undone on load
        data = state.view(np.int64) if wide else state.astype(np.int64 if state.dtype.kind in "iub" else np.float64)
        return {"__ndarray__": str(state.dtype), "data": torch.from_numpy(np.ascontiguousarray(data))}
    if isinstance(state, np.generic):
        return state.item()
    if isinstance(state, dict):
        return {k: _plain_rng(v) for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(_plain_rng(v) for v in state)
    return state


def _numpy_rng(state):
    """The inverse of `_plain_rng`."""
    if isinstance(state, dict) and "__ndarray__" in state:
        dtype, data = np.dtype(state["__ndarray__"]), state["data"].numpy()
        return data.view(dtype) if dtype.kind == "u" and dtype.itemsize == 8 else data.astype(dtype)
    if isinstance(state, dict):
        return {k: _numpy_rng(v) for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(_numpy_rng(v) for v in state)
    return state
