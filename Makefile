# The two commands: `make up` runs the studio, `make test` runs the whole suite.
# Each creates .venv and installs what it needs first, so a fresh clone needs nothing else.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The studio's own machine runs every process, the GPU worker included, so both install the
# [gpu] extra (torch, diffusers, transformers) beside [dev]. For a CUDA build of torch, e.g.
#   make up TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
TORCH_INDEX_URL ?=
PYTEST_ARGS ?=

.PHONY: up test install lint typecheck clean chromium

up: $(STAMP) frontend/dist
	$(VENV)/bin/orfeas up $(ARGS)

test: $(STAMP) tests/node/node_modules frontend/dist chromium lint typecheck
	cd frontend && npm test
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ORFEAS Studio needs Python 3.11 or newer")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -n "$(TORCH_INDEX_URL)" ]; then \
		$(PY) -m pip install --quiet torch==2.13.0 --index-url "$(TORCH_INDEX_URL)"; fi
	$(PY) -m pip install --quiet -e '.[dev,gpu]'
	@touch $(STAMP)

# Real Yjs clients (yjs + y-websocket) that the CRDT tests drive; see tests/yjs_clients.py.
tests/node/node_modules: tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund
	@touch $@

# The web workspace (React, Babylon.js, Yjs), built by Vite and served by the API at /.
frontend/node_modules: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund && touch node_modules

frontend/dist: frontend/node_modules $(shell find frontend/src -type f) frontend/index.html \
		frontend/vite.config.ts frontend/tsconfig.json
	cd frontend && npm run build
	@touch $@

# Debian's Chromium for the end-to-end tests (Playwright drives it; no browser download).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "install chromium as root: apt-get install -y chromium" >&2; exit 1; fi; \
		apt-get update && apt-get install -y chromium; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check core workers api infra tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
