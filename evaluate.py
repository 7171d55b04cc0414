"""Evaluate a checkpoint with any planner:
python evaluate.py task=dog-run checkpoint=dog-run-1.pt planner=mppi|policy|dream [eval_episodes=10 seed=1
save_video=false eval_noise=false]"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; before anything imports mujoco

import sys
import time
from pathlib import Path

from tdmpc2.errors import UserError


def load_agent(cfg, overrides):
    from tdmpc2 import checkpoint
    if hasattr(checkpoint, "load_agent"):
        return checkpoint.load_agent(cfg.checkpoint, task=cfg.task, device=cfg.device, overrides=overrides)
    from tdmpc2.agent import TDMPC2  # until checkpoint.load_agent exists: our own single-task layout only
    agent = TDMPC2(cfg)
    checkpoint.load_weights(agent.model, checkpoint.read(cfg.checkpoint)["model"])
    return agent


def main(argv):
    import numpy as np

    from tdmpc2 import config, runtime
    from tdmpc2.envs import make_env
    from tdmpc2.logger import save_video

    cfg = config.load(argv)
    if cfg.checkpoint is None:
        raise UserError("no checkpoint given: python evaluate.py task=<task> checkpoint=<path.pt> planner=mppi")
    if cfg.eval_episodes < 1:
        raise UserError(f"eval_episodes must be at least 1, got {cfg.eval_episodes}")
    runtime.setup(cfg)
    env = make_env(cfg)
    agent = load_agent(cfg, argv)
    planner = agent.cfg.planner  # the checkpoint's own unless planner= was given
    print(f"evaluating {cfg.checkpoint} on {cfg.task} with planner={planner} "
          f"({'with' if cfg.eval_noise else 'no'} exploration noise)")
    returns, successes, plan_seconds, plan_steps = [], [], 0.0, 0
    for i in range(cfg.eval_episodes):
        obs, done, ep_reward, t = env.reset(), False, 0.0, 0
        frames = [env.render()] if cfg.save_video else None
        while not done:
            tic = time.perf_counter()
            action = agent.act(obs, t0=t == 0, eval_mode=not cfg.eval_noise)  # returns on the CPU: synchronised
            plan_seconds += time.perf_counter() - tic
            obs, reward, done, info = env.step(action)
            ep_reward += float(reward)
            t += 1
            if frames is not None:
                frames.append(env.render())
        plan_steps += t
        returns.append(ep_reward)
        successes.append(float(info["success"]))
        line = f"episode {i + 1}/{cfg.eval_episodes}: return {ep_reward:.1f}"
        print(line + (f", success {successes[-1]:.0f}" if env.has_success else ""))
        if frames is not None:
            print(f"  video: {save_video(frames, Path(cfg.work_dir) / 'videos' / f'{cfg.task}-{i}.mp4')}")
    summary = f"{cfg.task} planner={planner}: return {np.mean(returns):.1f} ± {np.std(returns):.1f}"
    if env.has_success:
        summary += f", success {np.mean(successes):.2f}"
    print(summary + f" over {len(returns)} episodes; planning {1000 * plan_seconds / plan_steps:.2f} ms/step")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(2)
