"""Evaluation, for every agent family: episodes run and recorded (`episodes.py`), one JSON row per episode with the
job's identity (`records.py`), rliable statistics over them (`aggregates.py`), the confidence intervals every table
and figure shows (`intervals.py`) and the model-exploitation record of a planner's predictions against what the
environment gave (`exploitation.py`)."""
