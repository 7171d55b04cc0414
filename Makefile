# make demo: set up .venv if missing, then compare planners on the bundled agent (~3 minutes on 2 CPU cores)
# make test: set up .venv if missing, then run the test suite (the slow real runs: make test-slow; CI runs both)
PY := .venv/bin/python
export MUJOCO_GL ?= egl

.PHONY: demo test test-slow lint bench install

# the package with its dependencies and extras as pyproject.toml declares them, pinned by the lock constraints.txt
# (torch 2.13.0's CPU build among them)
.venv/ready: constraints.txt pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[all]"
	touch .venv/ready
	@echo "set up: run 'source .venv/bin/activate' so that python is this environment (or call .venv/bin/python)"

install: .venv/ready

# HumanoidBench is not on PyPI and its own pins clash with ours: a .pth file puts the vendored, unmodified copy
# (../shared/vendor/humanoid-bench, read-only in CI) on the venv's sys.path; without it its tests are skipped
HB_VENDOR := $(abspath ../shared/vendor/humanoid-bench)
.venv/humanoid_bench: .venv/ready
	@if [ -d "$(HB_VENDOR)/humanoid_bench" ]; then echo "$(HB_VENDOR)" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/humanoid_bench_vendor.pth" && touch $@ && echo "HumanoidBench: $(HB_VENDOR) on sys.path"; else echo "HumanoidBench: $(HB_VENDOR) not found, its tests will be skipped (install: git clone https://github.com/carlosferrazza/humanoid-bench.git && .venv/bin/pip install --no-deps -e humanoid-bench)"; fi
install: .venv/humanoid_bench
test: .venv/humanoid_bench

demo: .venv/ready
	$(PY) scripts/demo.py

test: .venv/ready
	$(PY) -m pytest -q -m "not slow" tests

test-slow: .venv/humanoid_bench
	$(PY) -m pytest -q -m slow tests

lint: .venv/ready
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: .venv/ready
	$(PY) scripts/benchmark.py
	$(PY) scripts/benchmark_planners.py --model-size 5
