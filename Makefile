# make demo: set up .venv if missing, then compare planners on the bundled agent (a few minutes on a CPU)
# make test: set up .venv if missing, then run the test suite
PY := .venv/bin/python
export MUJOCO_GL ?= egl

.PHONY: demo test bench install

.venv/ready: requirements.txt pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch .venv/ready

install: .venv/ready

demo: .venv/ready
	$(PY) scripts/demo.py

test: .venv/ready
	$(PY) -m pytest -q tests

bench: .venv/ready
	$(PY) scripts/benchmark.py
	$(PY) scripts/benchmark_planners.py --model-size 5
