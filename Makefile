# demandcast: `make run` runs the pipeline, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test lint format serve image image-pipeline lock clean help
.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "demandcast needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: reinstall only when a lock file changes.
$(VENV)/.run: requirements/pipeline.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/pipeline.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

$(VENV)/.dev: requirements/dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@ $(VENV)/.run

run: $(VENV)/.run  ## run the whole pipeline (dvc repro) and print the evaluation
	$(BIN)/dvc repro
	@$(BIN)/python -m demandcast report

test: $(VENV)/.dev  ## lint, then the whole test suite
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(VENV)/.dev  ## ruff lint and format check, mypy on src/
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: $(VENV)/.dev  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

# Overrides: PORT (serve); CONTAINER=podman, BASE_IMAGE=<a python 3.11+ image>, IMAGE=<tag>,
# BUILD_FLAGS=<more flags of the build command> (image).
PORT        ?= 8000
CONTAINER   ?= docker
BASE_IMAGE  ?=
IMAGE       ?= demandcast-api
BUILD_FLAGS ?=
# The commit the image is built from: its org.opencontainers.image.revision label.
REVISION    ?= $(shell git rev-parse HEAD 2>/dev/null)
# podman (and buildah) build OCI images by default, and the OCI format has no HEALTHCHECK: podman
# drops it without a word (Healthcheck=null). The Docker format keeps it.
IMAGE_FORMAT = $(if $(filter podman buildah,$(notdir $(firstword $(CONTAINER)))),--format docker)

serve: $(VENV)/.dev  ## serve the pipeline's model (models/serving) on 127.0.0.1, port PORT
	PORT=$(PORT) $(BIN)/python -m demandcast.api

# BASE_IMAGE empty: the Dockerfile's own, python:3.11-slim pinned by digest.
image:  ## build the serving image (API + models/serving; run the pipeline first)
	$(CONTAINER) build $(IMAGE_FORMAT) $(BUILD_FLAGS) $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) --build-arg REVISION=$(REVISION) -t $(IMAGE) .

# One image for the Dask scheduler, its workers and the `dvc repro` runner
# (docker-compose.dask.yml); no data or model in it: the repository is mounted at /repo.
# The same overrides as `image` but IMAGE.
image-pipeline:  ## build the pipeline's image, demandcast-pipeline (Dockerfile.pipeline)
	$(CONTAINER) build $(IMAGE_FORMAT) $(BUILD_FLAGS) $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) --build-arg REVISION=$(REVISION) -f Dockerfile.pipeline -t demandcast-pipeline .

# The locks pin every package with the sha256 of its files (pip then checks them): resolved
# with pip, hashed by pip-compile (pip-tools, in a venv of its own), see requirements/hashes.py.
lock:  ## re-resolve requirements/*.lock from pyproject.toml in throwaway venvs, with hashes
	rm -rf /tmp/demandcast-lock /tmp/demandcast-piptools
	$(PYTHON) -m venv /tmp/demandcast-lock && $(PYTHON) -m venv /tmp/demandcast-piptools
	/tmp/demandcast-piptools/bin/pip install --quiet pip-tools
	/tmp/demandcast-lock/bin/pip install --quiet '.[pipeline]'
	/tmp/demandcast-lock/bin/pip freeze --exclude-editable | grep -v '^demandcast' > requirements/pipeline.lock
	/tmp/demandcast-lock/bin/pip install --quiet '.[pipeline,serve,dev]'
	/tmp/demandcast-lock/bin/pip freeze --exclude-editable | grep -v '^demandcast' > requirements/dev.lock
	for lock in pipeline dev serve; do \
	  $(PYTHON) requirements/hashes.py requirements/$$lock.lock /tmp/demandcast-piptools/bin/pip-compile; \
	done

clean:  ## remove pipeline outputs (not the venv, not the DVC cache)
	rm -rf data/prepared.parquet data/features.parquet models reports/plots

# The retraining loop: each step of .github/workflows, runnable here (README: CI/CD). They use
# the DVC remote (scripts/configure_remote.sh) and the git tag `deployed` of the live model.
.PHONY: setup monitor retrain gate pr-report doctor

setup: $(VENV)/.run  ## create .venv with the pipeline's pinned dependencies (as the CI jobs do)

monitor: $(VENV)/.run  ## drift of the deployed model on the newest data (scripts/monitor.sh)
	scripts/monitor.sh

retrain: $(VENV)/.run  ## pull, new data, dvc repro, promotion gate, dvc push, commit and tag
	scripts/retrain.sh

gate: $(VENV)/.run  ## promotion gate: this work tree's model against the deployed one
	scripts/gate.sh

pr-report: $(VENV)/.run  ## the pull-request report against BASE (default main), after dvc repro
	scripts/pr_report.sh $(or $(BASE),main)

doctor:  ## check the local side of the loop's setup (tools, DVC remote, credentials, gh) and say what is missing
	@scripts/doctor.sh
