# Sync Doctor: `make run` sets up and runs on the sample org; `make test` sets up and runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/python -m bot diagnose --user alexw@example.com --record "quarterly review" --fixture bot/sandbox/sample_org.json

lint: setup
	$(BIN)/ruff format --check bot cards tests bench
	$(BIN)/ruff check bot cards tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/diagnose_latency.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
