"""Running evaluation episodes: shared by evaluate.py, the planner comparison and the demo."""
import time

import numpy as np
import torch


def run_episode(agent, env, eval_mode=True, render=False, task=None):
    """One episode; returns its return, success, length, mean planning ms per step and (optionally) frames."""
    obs, done, ep_return, t, plan_seconds = env.reset(), False, 0.0, 0, 0.0
    frames = [env.render()] if render else None
    info = {"success": 0.0}
    while not done:
        tic = time.perf_counter()
        action = agent.act(obs, t0=t == 0, eval_mode=eval_mode, task=task)  # a CPU tensor: synchronised
        plan_seconds += time.perf_counter() - tic
        obs, reward, done, info = env.step(action)
        ep_return += float(reward)
        t += 1
        if frames is not None:
            frames.append(env.render())
    return {"return": ep_return, "success": float(info["success"]), "length": t,
            "ms_per_step": 1000 * plan_seconds / max(t, 1), "frames": frames}


def seed_everything(seed, env=None):
    """Seed the planner's noise and the environment's initial states, so every planner sees the same episodes."""
    torch.manual_seed(seed)
    if env is not None and hasattr(env, "set_rng_state"):
        env.set_rng_state(np.random.RandomState(seed).get_state())
