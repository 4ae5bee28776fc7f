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
	@echo "make kafka-up | kafka-down - a local Kafka + registry that stays up (down also stops a killed demo's JVMs)"

# The virtualenv is rebuilt when pyproject.toml changes; pip's cache makes that quick.
$(STAMP): pyproject.toml setup.py $(wildcard gateway/*/*.pyx gateway/*/*/*.pyx)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

# Kafka's jars and the registry from Maven Central, cached under deploy/*/target and ~/.m2.
fetch: $(STAMP)
	$(BIN)/python -m gateway.infra fetch

lint: $(STAMP)
	$(BIN)/ruff check gateway tests docs setup.py
	$(BIN)/ruff format --check gateway tests docs setup.py

style: $(STAMP)
	$(BIN)/ruff format gateway tests docs setup.py
	$(BIN)/ruff check --fix gateway tests docs setup.py

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

# The container image (deploy/docker/Dockerfile), built here without any image registry: Debian's
# Docker engine is installed and started where none answers (as root, on a socket of its own), and
# the Python bases are made from Debian's packages with debootstrap (deploy/docker/build.sh; the
# builder's adds gcc and python3.11-dev, ~30 s, to compile the record writer). The first build
# took 3 min here (2 of them the base), later ones seconds to a minute (layer cache);
# image-smoke adds a ~20 s run of the image against a local Kafka and the simulator
# (deploy/docker/smoke.sh, gateway/infra/image.py). Not part of `make test`, for that first build.
IMAGE ?= binance-gateway:dev
.PHONY: image image-smoke image-lock
image:
	deploy/docker/build.sh $(IMAGE)

image-smoke: $(STAMP)
	PYTHON=$(BIN)/python deploy/docker/smoke.sh $(IMAGE)

# After changing pyproject.toml's dependencies: re-pin deploy/docker/requirements.lock (hashes).
image-lock:
	deploy/docker/lock.sh
