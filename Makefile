# symgnn: one entry point for set-up, demo, tests and benchmarks.
# Everything goes into a virtual environment in .venv (override with VENV=...).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export OMP_NUM_THREADS ?= 2

.PHONY: setup build demo test lint format bench clean

$(VENV)/.deps: pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements-dev.txt
	touch $@

# build and install the package (C++ neighbor list, Python module, LAMMPS plugin)
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

bench: build
	$(PIP) install -q -e .[bench] --no-build-isolation --no-deps
	$(PIP) install -q vesin matscipy
	$(PY) benchmarks/neighbors.py
	$(PY) benchmarks/inference.py

clean:
	rm -rf build $(VENV) .pytest_cache
