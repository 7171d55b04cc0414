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
	$(PY) -m pytest -q tests

bench: .venv/ready
	$(PY) scripts/benchmark.py
	$(PY) scripts/benchmark_planners.py --model-size 5
