# Flan Studio. Quickstart: `make run` (serve the demo studio), `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
WORKER_STAMP := $(VENV)/.worker-installed
DEV_STAMP := $(VENV)/.dev-installed
export OMP_NUM_THREADS ?= 1
# LLaMA-Factory pins older libraries than ours: its loader test runs in an environment of its own, kept outside the
# checkout and named by its pins, so it is made once per machine and again only when they change.
LLAMAFACTORY_ENV := $(HOME)/.cache/flan-studio/llamafactory-$(shell sha256sum requirements-llamafactory.txt | cut -c1-12)

.PHONY: run test migrate demo serve browser llamafactory-env clean help

help:
	@echo "make run    create .venv, migrate, load the demo workspace, start a worker and serve http://127.0.0.1:8000"
	@echo "make test   install test dependencies and Chromium, run the suite on SQLite and PostgreSQL"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3

$(RUNTIME_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

# The worker's model stack (torch CPU build, transformers): about a minute and 1 GB the first time.
$(WORKER_STAMP): requirements-worker.txt $(RUNTIME_STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-worker.txt
	touch $@

$(DEV_STAMP): requirements-dev.txt $(WORKER_STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(RUNTIME_STAMP)
	$(BIN)/python -m app migrate

demo: migrate $(WORKER_STAMP)
	$(BIN)/python -m app demo

# The worker runs beside the web server and stops with it.
serve: $(WORKER_STAMP)
	@trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python -m worker & worker=$$!; \
	$(BIN)/python -m app serve

run: demo serve

browser:
	@scripts/ensure-chromium.sh

llamafactory-env:
	@PYTHON=$(PYTHON) scripts/llamafactory-env.sh $(LLAMAFACTORY_ENV)

test: $(DEV_STAMP) browser llamafactory-env
	$(BIN)/ruff check .
	$(BIN)/mypy
	STUDIO_LLAMAFACTORY_PYTHON=$(LLAMAFACTORY_ENV)/bin/python $(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
