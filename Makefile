# Sync Doctor.
#   make run    set up, then run the bot on the sample org with the Agents Playground (a local Teams client)
#   make test   set up, then run every check: ruff, mypy, pytest (unit, scenario and end-to-end)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
BOT_PORT ?= 3978
PLAYGROUND_PORT ?= 56150
# The demo's checks after a one-click fix: the sample org syncs every 60 s, so "Fixed" comes in a minute or two
# (production: 900,2400).
FIX_RECHECK_AFTER ?= 70,150
# pytest-xdist workers: most tests wait on sockets and child processes; CI has 2 cores (`make test PYTEST_WORKERS=0`: one process)
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup
# The Playground has no host option: this preload makes it listen on loopback only.
LOOPBACK := NODE_OPTIONS=--require=$(CURDIR)/tests/e2e/loopback.js

.PHONY: setup run test test-fast lint e2e bench clean

# Exactly the versions in requirements-dev.lock (the image installs requirements.lock: the same pins, runtime
# only), hashes checked; then the project itself, editable. Regenerate both locks after changing
# pyproject.toml's dependencies (pip-tools): see the first lines of requirements.lock.
$(PY_STAMP): pyproject.toml requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium drives the end-to-end tests (no browser download).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi; }

setup: $(PY_STAMP) $(NODE_STAMP)

run: setup
	@echo "Open http://127.0.0.1:$(PLAYGROUND_PORT) and ask: why isn't my appointment in Outlook?  (Ctrl+C stops both)"
	@$(LOOPBACK) TEAMSAPPTESTER_BROWSER=none node_modules/.bin/agentsplayground start --disable-telemetry \
	  -e http://127.0.0.1:$(BOT_PORT)/api/messages -c msteams -p $(PLAYGROUND_PORT) >/dev/null 2>&1 & \
	  trap "kill $$! 2>/dev/null" EXIT INT TERM; \
	  LOG_FORMAT=text FIX_RECHECK_AFTER=$(FIX_RECHECK_AFTER) $(BIN)/python -m bot serve --sandbox --port $(BOT_PORT)

lint: setup
	$(BIN)/ruff format --check bot cards tests bench manifest
	$(BIN)/ruff check bot cards tests bench manifest
	$(BIN)/mypy

test: lint chromium
	$(PYTEST)

test-fast: lint
	$(PYTEST) -m "not e2e"

e2e: setup chromium
	$(PYTEST) tests/e2e

bench: setup
	$(BIN)/python bench/diagnose_latency.py --latency-ms 150 --runs 20

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache manifest/build
