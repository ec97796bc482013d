# One-command set-up: `make demo` runs the main job, `make test` the test suite.
# Both create .venv, install a CPU build of torch where no CUDA GPU is present, then the package.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU build to take when no CUDA GPU is present. Elsewhere than this project's machines, add
# TORCH_ARGS="--index-url https://download.pytorch.org/whl/cpu" for a small CPU-only wheel.
TORCH_CPU ?= torch==2.13.0
TORCH_ARGS ?=
DEMO_ARGS ?=
TEST_ARGS ?=

.PHONY: demo test setup lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		echo "CUDA GPU found: installing the default torch build"; \
	else \
		echo "no CUDA GPU: installing the CPU build ($(TORCH_CPU))"; \
		$(PY) -m pip install -q "$(TORCH_CPU)" $(TORCH_ARGS); \
	fi
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/personadrift demo $(DEMO_ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff format --check personadrift tests benchmarks
	$(VENV)/bin/ruff check personadrift tests benchmarks
	$(VENV)/bin/python -m pytest $(TEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff format personadrift tests benchmarks
	$(VENV)/bin/ruff check --fix personadrift tests benchmarks

clean:
	rm -rf $(VENV) .cache runs
