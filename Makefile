# Entry points for people and CI. Every target installs what it needs into .venv-dev first, from the dev
# lock. `pulumi install` / `pulumi up` use another virtualenv, .venv (Pulumi.yaml), filled from the runtime
# lock only: whatever ran here, the stack deploys with what requirements.txt pins.
PYTHON ?= python3
VENV := .venv-dev
BIN := $(VENV)/bin
STACK ?= dev

.PHONY: rehearse synth test test-layer lint bench bench-rehearsal bench-predict lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The lock is complete (every transitive dependency pinned), so pip installs it as it is, without resolving
# again: a resolver would refuse pulumi-policy's protobuf pin, which the lock overrides (dev-overrides.txt).
$(VENV)/.installed: requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-dev.txt
	touch $@

# The main offline job: the whole pipeline on this machine, from the program's own resources: the bundled
# sample CSV in, a tuned model deployed, predictions out of the local API (python -m rehearsal --help).
rehearse: $(VENV)/.installed
	$(BIN)/python -m rehearsal rehearse

# Run the real program under Pulumi mocks and print what `pulumi up` would create
# (e.g. `make synth STACK=prod SYNTH_ARGS="--config tracing=false --tuning-request"`).
synth: $(VENV)/.installed
	$(BIN)/python -m tools.synth $(STACK) $(SYNTH_ARGS)

# Lint, type check, then every test.
test: $(VENV)/.installed lint
	$(BIN)/python -m pytest

# One layer of the tests, without the lint: `make test-layer LAYER=infra` (infra, logic, functions, iam,
# rehearsal, corpus, policy).
LAYER ?= infra
test-layer: $(VENV)/.installed
	$(BIN)/python -m pytest tests/$(LAYER)

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

# Re-pin both lock files from pyproject.toml (needs uv: `pip install uv`). The runtime lock is compiled
# under the dev lock's pins, so a package both install has one version.
lock:
	uv pip compile pyproject.toml --extra dev --override dev-overrides.txt --universal --python-version 3.11 -q \
		-o requirements-dev.txt
	uv pip compile pyproject.toml --universal --python-version 3.11 -q -c requirements-dev.txt -o requirements.txt

clean:
	rm -rf $(VENV) .venv .build .synth .rehearsal .pytest_cache .mypy_cache .ruff_cache
