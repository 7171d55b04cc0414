"""Evaluate a checkpoint with any planner:
python evaluate.py task=dog-run checkpoint=dog-run-1.pt planner=mppi|policy|dream [eval_episodes=10 seed=1
save_video=false eval_noise=false]"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; before anything imports mujoco

import sys
from pathlib import Path

from tdmpc2.errors import UserError, run_cli


def main(argv):
    import numpy as np

    from tdmpc2 import config, runtime
    from tdmpc2.checkpoint import load_agent
    from tdmpc2.envs import make_env
    from tdmpc2.evaluation import run_episode
    from tdmpc2.logger import save_video

    cfg = config.load(argv)
    if cfg.checkpoint is None:
        raise UserError("no checkpoint given: python evaluate.py task=<task> checkpoint=<path.pt> planner=mppi")
    if cfg.eval_episodes < 1:
        raise UserError(f"eval_episodes must be at least 1, got {cfg.eval_episodes}")
    runtime.setup(cfg)
    task_given = any(a.split("=", 1)[0].lstrip("+") == "task" for a in argv)
    agent = load_agent(cfg.checkpoint, task=cfg.task if task_given else None, device=cfg.device, overrides=argv)
    cfg.task = agent.cfg.task  # the file's own task unless task= was given
    env = make_env(cfg)
    runtime.set_seed(cfg.seed)
    planner = agent.cfg.planner
    print(f"evaluating {cfg.checkpoint} on {cfg.task} with planner={planner} "
          f"({'with' if cfg.eval_noise else 'no'} exploration noise)")
    episodes = []
    for i in range(cfg.eval_episodes):
        ep = run_episode(agent, env, eval_mode=not cfg.eval_noise, render=cfg.save_video)
        episodes.append(ep)
        line = f"episode {i + 1}/{cfg.eval_episodes}: return {ep['return']:.1f}"
        print(line + (f", success {ep['success']:.0f}" if env.has_success else ""))
        if ep["frames"] is not None:
            print(f"  video: {save_video(ep['frames'], Path(cfg.work_dir) / 'videos' / f'{cfg.task}-{i}.mp4')}")
    returns = [ep["return"] for ep in episodes]
    summary = f"{cfg.task} planner={planner}: return {np.mean(returns):.1f} ± {np.std(returns):.1f}"
    if env.has_success:
        summary += f", success {np.mean([ep['success'] for ep in episodes]):.2f}"
    ms = sum(ep["ms_per_step"] * ep["length"] for ep in episodes) / sum(ep["length"] for ep in episodes)
    nonfinite = agent.nonfinite_actions + agent.planner.nonfinite_count
    print(summary + f" over {len(returns)} episodes; planning {ms:.2f} ms/step"
          + (f"; {nonfinite} non-finite plans replaced by the policy mean" if nonfinite else ""))


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
