# One place for every command; CI (.ci/run) calls `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config/gateway.yaml

.PHONY: help install fetch run demo test test-unit test-integration lint style types bench \
        kafka-up kafka-down clean

help:
	@echo "make run     - the gateway on real Binance with a local Kafka + schema registry"
	@echo "make demo    - the same pipeline fed by the bundled Binance simulator"
	@echo "make test    - lint, types and the whole suite (starts its own Kafka)"
	@echo "make bench   - the gateway vs a reference pipeline through a real broker (QUICK=1: short)"
	@echo "make kafka-up | kafka-down - a local Kafka + registry that stays up"

# The virtualenv is rebuilt when pyproject.toml changes; pip's cache makes that quick.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

# Kafka's jars and the registry from Maven Central, cached under deploy/*/target and ~/.m2.
fetch: $(STAMP)
	$(BIN)/python -m gateway.infra fetch

lint: $(STAMP)
	$(BIN)/ruff check gateway tests docs
	$(BIN)/ruff format --check gateway tests docs

style: $(STAMP)
	$(BIN)/ruff format gateway tests docs
	$(BIN)/ruff check --fix gateway tests docs

types: $(STAMP)
	$(BIN)/mypy

test: lint types fetch
	$(BIN)/pytest

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

test-integration: fetch
	$(BIN)/pytest tests/integration

run: fetch
	$(BIN)/gateway run --config $(CONFIG) --local-stack

demo: fetch
	$(BIN)/gateway demo

# QUICK=1: the CI-sized run (two scenarios, short windows); EXTRAS=1 adds the simulator figures.
bench: fetch
	$(BIN)/gateway bench $(if $(QUICK),--quick) $(if $(EXTRAS),--extras)

kafka-up: fetch
	$(BIN)/python -m gateway.infra up

kafka-down: $(STAMP)
	$(BIN)/python -m gateway.infra down

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache deploy/*/target

# The container image (deploy/docker/Dockerfile); needs a Docker engine (BuildKit), which CI
# and these machines do not have: the manifests are tested without it (tests/deploy).
IMAGE ?= binance-gateway:dev
.PHONY: image
image:
	@command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || { \
	  echo "make image: no Docker engine answers here ('docker info' failed): the image needs" \
	       "one (Docker Desktop, dockerd, or a remote DOCKER_HOST); nothing was built." >&2; \
	  exit 1; }
	docker build -f deploy/docker/Dockerfile -t $(IMAGE) .
