# Entry points for people and CI. Every target installs what it needs into .venv first,
# the same virtualenv Pulumi.yaml names for `pulumi up`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev

.PHONY: rehearse synth test lint bench bench-rehearsal bench-predict lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The main offline job: the whole pipeline on this machine, from the program's own resources: the bundled
# sample CSV in, a tuned model deployed, predictions out of the local API (python -m rehearsal --help).
rehearse: $(VENV)/.installed
	$(BIN)/python -m rehearsal rehearse

# Run the real program under Pulumi mocks and print what `pulumi up` would create.
synth: $(VENV)/.installed
	$(BIN)/python -m tools.synth $(STACK)

# Lint, type check, then every test.
test: $(VENV)/.installed lint
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Speed and memory of the transform, first and later uploads, against a naive pandas transform (100 MB and
# 1 GB files, ~15 minutes).
bench: $(VENV)/.installed
	$(BIN)/python -m tools.benchmark

# The rehearsal's time, step by step, and the tuned model against plain XGBoost on the same split.
bench-rehearsal: $(VENV)/.installed
	$(BIN)/python -m tools.rehearsal_benchmark

# Prediction latency and throughput under load: the local API (authorization, usage plan, validation, the
# predict function) against the local SageMaker runtime it calls (a few thousand requests, ~2 minutes).
bench-predict: $(VENV)/.installed
	$(BIN)/python -m tools.prediction_load_benchmark

# Re-pin both lock files from pyproject.toml (needs uv: `pip install uv`).
lock:
	uv pip compile pyproject.toml --universal --python-version 3.11 -q -o requirements.txt
	uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 -q -o requirements-dev.txt

clean:
	rm -rf $(VENV) .build .synth .rehearsal .pytest_cache .mypy_cache .ruff_cache
