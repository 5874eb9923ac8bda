# symgnn: one entry point for set-up, demo, tests and benchmarks.
# Everything goes into a virtual environment in .venv (override with VENV=...).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export OMP_NUM_THREADS ?= 2
# the torch pin, written once in pyproject.toml (dependencies and [build-system] requires)
TORCH_PIN := $(shell sed -n 's/^ *"\(torch==[^"]*\)".*/\1/p' pyproject.toml | head -1)

.PHONY: setup build demo test test-fast test-wheel lint format bench clean

$(VENV)/.deps: pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_PIN)"
	$(PIP) install -q -r requirements-dev.txt
	touch $@

# the developer build: editable, incremental (build/<wheel tag>), with the C++ tests; the C++
# neighbor list, Python module, fused operators and LAMMPS plugin. Users: pip install .
build: $(VENV)/.deps
	$(PIP) install -q --no-build-isolation --no-deps -e .

setup: build

# the demo runs NP ranks x 1 thread (ranks x threads <= cores) unless you set OMP_NUM_THREADS
demo: setup
	$(if $(filter file,$(origin OMP_NUM_THREADS)),env -u OMP_NUM_THREADS) bash examples/lammps/run_demo.sh

lint: $(VENV)/.deps
	$(VENV)/bin/ruff check python tests benchmarks examples training
	$(VENV)/bin/ruff format --check python tests benchmarks examples training
	$(VENV)/bin/clang-format --dry-run --Werror $$(git ls-files 'csrc/*.h' 'csrc/*.cpp' 'csrc/*.cu' 'lammps_plugin/*.h' 'lammps_plugin/*.cpp' 'tests/cpp/*.cpp')

format: $(VENV)/.deps
	$(VENV)/bin/ruff format python tests benchmarks examples
	$(VENV)/bin/ruff check --fix python tests benchmarks examples
	$(VENV)/bin/clang-format -i $$(git ls-files 'csrc/*.h' 'csrc/*.cpp' 'csrc/*.cu' 'lammps_plugin/*.h' 'lammps_plugin/*.cpp' 'tests/cpp/*.cpp')

test: build lint
	$(PY) -m pytest -q tests

# the developer's fast loop: every test not marked slow (tests/conftest.py: training with
# torchrun, the real glass, all but a few LAMMPS runs), aim < 90 s; no rebuild and no lint, so
# run `make build` after changing C++. CI runs `make test`: everything
test-fast: $(VENV)/.deps
	$(PY) -m pytest -q -m "not slow" tests

# the user's path: pip wheel . (isolated build, without CUDA: WHEEL_CUDA=AUTO), a fresh venv
# with only that wheel and its dependencies, then the ASE quick-start, symgnn predict, lmp on 1
# and 2 ranks and a short symgnn demo from outside the checkout (tests/wheel/run.sh; WORK=DIR
# keeps and reuses the wheel). CI runs make test test-wheel (.ci/run)
test-wheel:
	bash tests/wheel/run.sh

bench: build
	$(PIP) install -q -e .[bench] --no-build-isolation --no-deps
	$(PIP) install -q vesin matscipy
	$(PY) benchmarks/neighbors.py
	$(PY) benchmarks/inference.py

clean:
	rm -rf build $(VENV) .pytest_cache
