"""Environments. Every env has the old 4-tuple API of TD-MPC2's wrappers:
`reset() -> obs`, `step(action) -> (obs, reward, done, info)` with torch tensors, `info["success"]` (float) and
`info["terminated"]` (tensor), plus `rand_act()`, `render()`, `max_episode_steps`, `observation_space`,
`action_space`, `has_success`, and `get_rng_state()` / `set_rng_state()` for resuming."""
from tdmpc2 import config
from tdmpc2.errors import UserError, unknown


def make_env(cfg):
    """The env for cfg.task; fills in cfg's env-dependent keys (obs_shape, action_dim, episode_length ...)."""
    if cfg.task in config.TASK_SET:
        raise UserError(f"task={cfg.task} is a multi-task set: it trains offline from data_dir and has no single "
                        f"online environment; pick one of its tasks, e.g. task={config.TASK_SET[cfg.task][0]}")
    if cfg.task not in config.DMC_TASKS:
        raise unknown("task", cfg.task, config.DMC_TASKS)
    from tdmpc2.envs.dmcontrol import DMControl
    env = DMControl(cfg.task, seed=cfg.seed, obs=cfg.obs)
    config.set_env_dims(cfg, env.observation_space.shape, env.action_space.shape[0], env.max_episode_steps)
    return env
