"""Training, for every agent family: the online trainer (`trainer.py`: the agent's schedule, checkpoints, exact
resumes), the replay buffer of whole episodes (`buffer.py`) and the CSV / wandb logger (`logger.py`)."""
