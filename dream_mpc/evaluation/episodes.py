"""Running evaluation episodes: shared by evaluate.py, the planner comparison and the demo."""

import time

import numpy as np
import torch

from dream_mpc.evaluation import records

SEARCH_EFFORT = ("iterations", "evaluations")  # a plan's gradient steps and objective evaluations, where reported


def run_episode(agent, env, eval_mode=True, render=False, task=None, on_step=None, recorder=None):
    """One episode; returns its return, success, length, mean planning ms per step and (optionally) frames.
    `on_step()` is called after every env step (a progress bar). `recorder` (exploitation.py) adds the
    episode's predicted-minus-realised returns as `exploitation` (its time is not counted in ms_per_step). A planner
    whose plan info reports its search effort (`iterations`, `evaluations`: Dream-MPC and the gradient baselines)
    gets their means per plan in the result; others None."""
    obs, done, ep_return, t, plan_seconds = env.reset(), False, 0.0, 0, 0.0
    effort = {key: [] for key in SEARCH_EFFORT}
    if recorder is not None:
        recorder.start()
    frames = [env.render()] if render else None
    info = {"success": 0.0}
    while not done:
        tic = time.perf_counter()
        action = agent.act(obs, t0=t == 0, eval_mode=eval_mode, task=task)  # a CPU tensor: synchronised
        plan_seconds += time.perf_counter() - tic
        plan_info = agent.last_plan_info or {}
        for key, values in effort.items():
            if key in plan_info:
                values.append(float(plan_info[key]))
        if recorder is not None:
            recorder.planned()
        obs, reward, done, info = env.step(action)
        if recorder is not None:
            recorder.realised(reward)
        ep_return += float(reward)
        t += 1
        if frames is not None:
            frames.append(env.render())
        if on_step is not None:
            on_step()
    return {
        "return": ep_return,
        "success": float(info["success"]),
        "success_any": float(info["success_any"]) if "success_any" in info else None,  # Meta-World: at any step
        "length": t,
        "ms_per_step": 1000 * plan_seconds / max(t, 1),
        "frames": frames,
        "exploitation": recorder.summary() if recorder is not None else None,
        **{key: float(np.mean(v)) if v else None for key, v in effort.items()},
    }


def evaluate_checkpoint(cfg):
    """evaluate.py: cfg.checkpoint on cfg.task (the file's own task unless task= was given; a multi-task set: each of
    its tasks, or those of `eval_tasks`) with cfg.planner; prints one line per episode and a summary per task (a
    set: and its score); returns the episodes run. Every episode is appended as a row to `cfg.results_dir`; those
    already recorded there are skipped, and a rerun gives the same rows as an uninterrupted run (docs/evaluation.md)."""
    from dream_mpc import checkpoint, config, runtime
    from dream_mpc.checkpoint import load_agent
    from dream_mpc.envs import make_env
    from dream_mpc.envs.multitask import set_score
    from dream_mpc.errors import UserError

    if cfg.checkpoint is None:
        raise UserError(f"no checkpoint given: {checkpoint.EXAMPLE} (a .pt file written by torch.save)")
    runtime.setup(cfg)
    overrides = cfg._overrides
    task = cfg.task if "task" in map(config.override_key, overrides) else None  # None: the file's own
    agent = load_agent(cfg.checkpoint, task=task, device=cfg.device, overrides=overrides, trusted=cfg.trust_checkpoint)
    config.warn_unused(agent.cfg.agent, agent.planner.name, overrides)  # e.g. latent_dim=64 on a Dreamer file
    results_dir = runtime.ensure_writable(cfg.get("results_dir") or "logs/results", "evaluation records (results_dir)")
    cfg.task = agent.cfg.task  # the file's own task unless task= was given
    cfg.obs = agent.cfg.obs  # the observations the agent was built for (a pixel file: obs=rgb without saying it)
    cfg.frame_stack = agent.cfg.frame_stack  # and the frames its pixel observations stack
    env = make_env(cfg)
    runtime.set_seed(cfg.seed)
    episodes, jobs, base = [], set(), job_of(cfg, agent)
    for task in cfg.get("eval_tasks") or agent.cfg.tasks:
        index = agent.cfg.tasks.index(task) if agent.cfg.multitask else None  # the task id the agent acts for
        if index is not None:
            env.set_task(index)
        job = {**base, "task": task}
        episodes += _evaluate_job(cfg, agent, env, job, index, results_dir)
        jobs.add(records.job_key(job))
    if agent.cfg.multitask:  # the set's score from its records: the episodes run now and those recorded before
        scores = {}
        for row in records.collect([results_dir]):
            if records.job_key(row) in jobs and row["episode"] < cfg.eval_episodes:
                scores.setdefault(row["task"], []).append(row["score"])
        print(
            f"{cfg.task} planner={base['planner']}: normalized score {set_score(scores):.1f} over {len(scores)} tasks "
            f"(100 x each suite's: DMControl return / 10, Meta-World success x 100); rows in {results_dir}"
        )
    return episodes


def _evaluate_job(cfg, agent, env, job, index, results_dir):
    """The episodes of one job (evaluate_checkpoint): those not recorded yet, each appended as a row."""
    from pathlib import Path

    from tqdm import tqdm

    from dream_mpc.envs import suite_of
    from dream_mpc.evaluation.exploitation import ExploitationRecorder
    from dream_mpc.evaluation.video import save_video

    task, planner = job["task"], job["planner"]
    out_file = records.job_file(results_dir, job)
    held = records.lock_job(out_file)  # one writer a job: what another wrote meanwhile is read below, not redone
    done = records.done_episodes(results_dir, job)
    todo = [i for i in range(cfg.eval_episodes) if i not in done]
    tqdm.write(
        f"evaluating {cfg.checkpoint} on {task} with planner={planner} "
        f"({'with' if cfg.eval_noise else 'no'} exploration noise): {len(todo)} episodes to run"
        + (f", {cfg.eval_episodes - len(todo)} already in {results_dir}" if len(todo) < cfg.eval_episodes else "")
        + f"; rows -> {out_file}"
    )
    video_dir = Path(cfg.work_dir).parents[2] / task / str(cfg.seed) / cfg.exp_name / "videos"
    episodes = []
    for i in range(cfg.eval_episodes):
        if i in done:
            env.reset()  # draws this episode's initial state, as a full run did
            continue
        torch.manual_seed(cfg.seed * 100_003 + i)  # the planner's noise: the same whichever episodes were skipped
        before = agent.nonfinite_actions + agent.planner.nonfinite_count
        with tqdm(
            total=env.max_episode_steps,
            desc=f"episode {i + 1}/{cfg.eval_episodes}",
            unit="step",
            leave=False,
            dynamic_ncols=True,
        ) as bar:
            ep = run_episode(
                agent,
                env,
                eval_mode=not cfg.eval_noise,
                render=cfg.save_video,
                task=index,
                on_step=bar.update,
                recorder=ExploitationRecorder(agent, task=index),  # predicted vs realised returns (appendix D.3)
            )
        nonfinite = agent.nonfinite_actions + agent.planner.nonfinite_count - before
        row = records.make_row(job, i, ep, suite_of(task), task, nonfinite)
        row["penalty_active"] = agent.planner.penalty_active  # None until the first plan tells
        records.append_row(out_file, row)
        episodes.append(ep)
        line = f"episode {i + 1}/{cfg.eval_episodes}: return {ep['return']:.1f}"
        tqdm.write(
            line + (f", success {ep['success']:.0f}" if env.has_success else "") + f" ({ep['ms_per_step']:.1f} ms/step)"
        )
        if ep["frames"] is not None:
            tqdm.write(f"  video: {save_video(ep['frames'], video_dir / f'{task}-{i}.mp4')}")
    held.close()
    if not episodes:
        print(f"{task} planner={planner}: all {cfg.eval_episodes} episodes already recorded in {results_dir}")
        return episodes
    returns = [ep["return"] for ep in episodes]
    spread = f" ± {np.std(returns):.1f}" if len(returns) > 1 else ""  # one episode: no spread to show, not ± 0
    summary = f"{task} planner={planner}: return {np.mean(returns):.1f}{spread}"
    if env.has_success:
        summary += f", success {np.mean([ep['success'] for ep in episodes]):.2f}"
    ms = sum(ep["ms_per_step"] * ep["length"] for ep in episodes) / sum(ep["length"] for ep in episodes)
    nonfinite = agent.nonfinite_actions + agent.planner.nonfinite_count
    threads = agent.act_threads and agent.act_threads.summary()  # adaptive CPU threads, where the agent has them
    print(
        summary
        + f" over {len(returns)} episodes; planning {ms:.2f} ms/step"
        + (f" ({threads})" if threads else "")
        + (f"; {nonfinite} non-finite plans replaced by the policy mean" if nonfinite else "")
    )
    return episodes


def job_of(cfg, agent):
    """An evaluation job's identity (dream_mpc/evaluation/records.py): everything that changes its numbers."""
    from dream_mpc import runtime

    return {
        "task": cfg.task,
        "checkpoint": records.checkpoint_name(cfg.checkpoint),
        "weights": records.weights_digest(agent.weights_state()),
        "agent": agent.cfg.agent,
        "train_seed": records.train_seed_of(cfg.checkpoint, agent.saved_config),  # the file is read once
        "planner": agent.planner.name,  # the planner that acts (mpc=false: the policy)
        "options": records.options_json({**agent.planner.effective_config(), **agent.acting_options()}),
        "planning_dtype": str(agent.cfg.get("planning_dtype", "float32")),
        "device": runtime.resolve_device(agent.device or cfg.device).type,  # a family that leaves it None: the run's
        "eval_noise": bool(cfg.eval_noise),
        "seed": int(cfg.seed),
    }
