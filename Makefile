# Two commands for a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
AGORA := $(VENV)/bin/agora
FERRETDB := .agora/bin/ferretdb

.PHONY: help setup up down status demo test lint bench bench-cluster drills clean cluster-up cluster-down

help:
	@echo "make demo    set up, start the local stack and run the scripted scenario"
	@echo "make test    set up and run the whole suite against real services"
	@echo "make bench  raw ceilings, Agora end to end, the AutoGen peer, memory (BENCH_SIZE=quick|full)"
	@echo "make drills kill and restart each part under load, then a long life (DRILL_SIZE=full|ci)"
	@echo "             DRILLS=cluster make drills: the same on the cluster topology"
	@echo "make bench-cluster  one API and one worker against two of each, on a cluster"
	@echo "make cluster-up | cluster-down   two APIs behind HAProxy, two workers, three RabbitMQ nodes"
	@echo "make up | down | status | lint | clean"

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || "$$(tools/python.sh)" -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e ".[dev]"
	@touch $@

$(FERRETDB): tools/ferretdb/go.mod tools/ferretdb/go.sum tools/ferretdb/build.sh
	@tools/ferretdb/build.sh $(FERRETDB)
	@touch $@

## setup: Python deps in .venv, RabbitMQ, PostgreSQL and Chromium from Debian, FerretDB built with
## Go (idempotent; cli/stack.py runs ferretdb on PostgreSQL with --telemetry=disable, every
## service on 127.0.0.1 only)
setup: $(VENV)/.installed $(FERRETDB)
	@tools/install-rabbitmq.sh
	@tools/install-postgresql.sh
	@tools/install-chromium.sh
	@tools/install-haproxy.sh

## up: services, worker and API in the background; waits for /readyz
up: setup
	@$(AGORA) up

down:
	@test -x $(AGORA) && $(AGORA) down || true

status:
	@$(AGORA) status

## cluster-up: the production-shaped topology under .agora/cluster (cli/cluster.py)
cluster-up: setup
	@$(AGORA) cluster up

cluster-down:
	@test -x $(AGORA) && $(AGORA) cluster down || true

demo: up
	@$(PY) -m cli.demo

test: setup
	@$(PY) -m pytest; code=$$?; \
	if [ $$code -eq 5 ]; then echo "no tests were collected: failing" >&2; exit 1; fi; exit $$code

$(VENV)/.bench-installed: $(VENV)/.installed pyproject.toml
	@$(PY) -m pip install -q -e ".[dev,bench]"
	@touch $@

## bench: raw ceilings and Agora's figures from one run (BENCH_SIZE=quick|full)
bench: up $(VENV)/.bench-installed
	@$(PY) -m bench

## bench-cluster: the scale figures, one API and one worker against two of each, on a cluster
## of its own (bench/cluster.py; BENCH_SIZE=quick|full)
bench-cluster: setup $(VENV)/.bench-installed
	@$(PY) -m bench.cluster

## drills: kill and restart each part under load, then a long life (DRILL_SIZE=full|ci);
## they start a stack of their own on free ports, so 'make up' is not needed
drills: setup
	@$(PY) -m bench.drills

lint: setup
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean: down
	rm -rf .agora/data .agora/logs .agora/run
