# The two commands: `make run` and `make test`. Each bootstraps .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test test-sqlite test-services tools docker-engine lint bench load demo clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,prod]'
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	$(BIN)/signflow keys init
	$(BIN)/signflow db upgrade
	$(BIN)/signflow serve

# Poppler's pdfsig and NSS's certutil let the suite check our PDFs with a
# second, independent validator; SoftHSM2 stands in for an HSM; Chromium runs
# the signing page for Playwright (its own browser download cannot work here).
# Installed with apt when we may; the tests that need them skip loudly otherwise.
APT_TOOLS := poppler-utils libnss3-tools softhsm2 chromium xmlsec1
tools:
	@if ! command -v pdfsig >/dev/null || ! command -v certutil >/dev/null || ! command -v softhsm2-util >/dev/null || ! command -v chromium >/dev/null || ! command -v xmlsec1 >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_TOOLS) >/dev/null) \
	      || echo "WARNING: could not install $(APT_TOOLS); the tests needing them will skip"; \
	  else echo "WARNING: $(APT_TOOLS) missing and apt-get unavailable; the tests needing them will skip"; fi; \
	fi

# tests/test_compose_docker.py runs docker-compose.yml on a real Docker engine.
# Where none answers and we may (root, apt-get): Debian's docker.io and
# docker-compose, debootstrap for the stand-in images where no image registry
# answers, and dockerd started in the background (its log in /tmp).  Where that
# cannot work, the test skips and says why.
DOCKER_APT := docker.io docker-compose debootstrap
docker-engine:
	@if ! docker info >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null \
	        || ! (docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null); then \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends $(DOCKER_APT) >/dev/null) \
	        || echo "WARNING: could not install $(DOCKER_APT); the real-engine compose test will skip"; \
	    fi; \
	    if command -v dockerd >/dev/null; then \
	      (nohup dockerd >/tmp/signflow-dockerd.log 2>&1 &); \
	      for i in $$(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done; \
	      docker info >/dev/null 2>&1 || echo "WARNING: dockerd did not start (/tmp/signflow-dockerd.log); the real-engine compose test will skip"; \
	    fi; \
	  else echo "WARNING: no Docker engine and no root apt-get; the real-engine compose test will skip"; fi; \
	fi

# The passes below side by side (tests/passes.py): they share nothing, and most
# of a test's time is waiting, so together they take about as long as the longest.
test: $(STAMP) tools docker-engine lint
	$(BIN)/python tests/passes.py

test-sqlite: $(STAMP)
	@echo "== test suite on SQLite, jobs in-process =="
	$(BIN)/python -m pytest -q

# The same suite again on PostgreSQL with jobs through RQ on Redis and a real
# `signflow worker` and `signflow dispatcher`, when both services answer on this
# machine.  The browser tests ran on the first pass: pages look the same on
# either database, and they are the slowest part of the suite.  So did the fault
# tests (tests/test_faults.py), which start a whole deployment of their own
# (PostgreSQL, Redis, gunicorn, worker, dispatcher, scheduler) and break it.
# And so did every test that reaches neither the database nor Redis (PDF work,
# verification, parsers): tests/conftest.py deselects those here.
test-services: $(STAMP)
	@urls="$$($(BIN)/python tests/services.py)"; \
	if [ -z "$$urls" ]; then echo "== PostgreSQL/Redis not reachable: service run skipped =="; exit 0; fi; \
	echo "== test suite on PostgreSQL + Redis/RQ =="; \
	env $$urls $(BIN)/python -m pytest -q -m "not browser and not faults and not docker"

# STYLE.md: ruff and mypy clean in CI (`make test` runs this first).
lint: $(STAMP)
	$(BIN)/ruff check signflow tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# 200 rounds x 3 signers through the API against a deployment of its own
# (PostgreSQL, Redis, gunicorn, two workers: benchmarks/load.py says what it
# reports); smaller: make load LOAD_ARGS="--rounds 10 --clients 4".
load: $(STAMP)
	$(BIN)/python benchmarks/load.py $(LOAD_ARGS)

demo: $(STAMP)
	$(BIN)/signflow keys init
	$(BIN)/signflow demo --out signflow-demo.pdf

clean:
	rm -rf $(VENV) instance .pytest_cache
