# Entry points for people and CI. Every target installs what it needs into .venv first,
# the same virtualenv Pulumi.yaml names for `pulumi up`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev

.PHONY: synth test lint bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The main offline job: run the real program under Pulumi mocks and print what `pulumi up` would create.
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

# Re-pin both lock files from pyproject.toml (needs uv: `pip install uv`).
lock:
	uv pip compile pyproject.toml --universal --python-version 3.11 -q -o requirements.txt
	uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 -q -o requirements-dev.txt

clean:
	rm -rf $(VENV) .build .synth .pytest_cache .mypy_cache .ruff_cache
