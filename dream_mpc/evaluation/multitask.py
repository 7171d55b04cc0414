"""Evaluation of a multi-task set (task=mt30|mt80): `evaluate_task_set(agent, cfg, tasks, episodes)` runs `episodes`
evaluation episodes of each task and returns per-task returns and successes and the official multi-task score: the
mean over tasks of return / 10 for DMControl tasks and success x 100 for Meta-World tasks (100 x each suite's
normalized score). `evaluate_checkpoint_set` is evaluate.py's: the same, and one record per episode in results_dir
(dream_mpc/evaluation/records.py, the format of every evaluation)."""

import numpy as np

from dream_mpc.envs.multitask import MultitaskEnv, official_score
from dream_mpc.errors import UserError
from dream_mpc.evaluation.episodes import run_episode


def evaluate_task_set(agent, cfg, tasks=None, episodes=None, eval_mode=True, log=print, on_episode=None):
    """`episodes` (default cfg.eval_episodes) episodes of each of `tasks` (default: all of cfg.tasks), with the agent's
    task index of each; returns {"tasks": {task: {returns, successes, return, success, score}},
    "score": the mean official score over the tasks evaluated}. `on_episode(task, index, episode)` sees each
    episode's result as it ends (evaluate.py records it)."""
    all_tasks = list(cfg.tasks)
    tasks = all_tasks if tasks is None else list(tasks)
    unknown = [t for t in tasks if t not in all_tasks]
    if unknown:
        raise UserError(f"tasks {unknown} are not in {cfg.task}; valid: {', '.join(all_tasks)}")
    episodes = int(cfg.eval_episodes if episodes is None else episodes)
    lengths = getattr(cfg, "episode_lengths", None)
    env = MultitaskEnv(
        all_tasks,
        cfg,
        obs_dims=[cfg.obs_shape[cfg.obs][0]] * len(all_tasks),
        action_dims=getattr(cfg, "action_dims", None) or [cfg.action_dim] * len(all_tasks),
        episode_lengths=lengths or [cfg.episode_length] * len(all_tasks),
    )
    results = {}
    for task in tasks:
        idx = all_tasks.index(task)
        env.set_task(idx)
        runs = []
        for i in range(episodes):
            runs.append(run_episode(agent, env, eval_mode=eval_mode, task=idx if len(all_tasks) > 1 else None))
            if on_episode is not None:
                on_episode(task, i, runs[-1])
        returns = [ep["return"] for ep in runs]
        successes = [ep["success"] for ep in runs]
        score = float(np.mean([official_score(task, r, s) for r, s in zip(returns, successes)]))
        results[task] = {
            "returns": returns,
            "successes": successes,
            "return": float(np.mean(returns)),
            "success": float(np.mean(successes)),
            "score": score,
        }
        if log is not None:
            log(
                f"{task}: return {results[task]['return']:.1f}, success {results[task]['success']:.2f}, "
                f"score {score:.1f}"
            )
    return {"tasks": results, "score": float(np.mean([r["score"] for r in results.values()]))}


def evaluate_checkpoint_set(cfg):
    """evaluate.py with task=mt30|mt80: the multi-task checkpoint on every task of the set (or on `eval_tasks`, when
    the config has that key), cfg.eval_episodes episodes each; prints per-task lines and the official score."""
    from dream_mpc import runtime
    from dream_mpc.checkpoint import load_agent
    from dream_mpc.envs import suite_of
    from dream_mpc.evaluation import records
    from dream_mpc.evaluation.episodes import job_of

    if cfg.checkpoint is None:
        raise UserError(f"no checkpoint given: python evaluate.py task={cfg.task} checkpoint=<path.pt> planner=mppi")
    runtime.setup(cfg)
    agent = load_agent(
        cfg.checkpoint, task=cfg.task, device=cfg.device, overrides=cfg._overrides, trusted=cfg.trust_checkpoint
    )
    runtime.set_seed(cfg.seed)
    tasks = cfg.get("eval_tasks") or None
    print(
        f"evaluating {cfg.checkpoint} on {cfg.task} ({len(tasks or agent.cfg.tasks)} tasks) with "
        f"planner={agent.cfg.planner}, {cfg.eval_episodes} episodes each"
    )
    results_dir = runtime.ensure_writable(cfg.get("results_dir") or "logs/results", "evaluation records (results_dir)")
    nonfinite = [agent.nonfinite_actions + agent.planner.nonfinite_count]

    def record(task, i, ep):  # one row per episode, the format of every evaluation (records.py)
        job = {**job_of(cfg, agent), "task": task}
        now = agent.nonfinite_actions + agent.planner.nonfinite_count
        row = records.make_row(job, i, ep, suite_of(task), task, now - nonfinite[0])
        nonfinite[0] = now
        records.append_row(records.job_file(results_dir, job), row)

    result = evaluate_task_set(
        agent, agent.cfg, tasks, episodes=cfg.eval_episodes, eval_mode=not cfg.eval_noise, on_episode=record
    )
    print(
        f"{cfg.task} planner={agent.cfg.planner}: normalized score {result['score']:.1f} over "
        f"{len(result['tasks'])} tasks (DMControl return / 10, Meta-World success x 100); rows -> {results_dir}"
    )
    return result
