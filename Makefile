# Crucible: `make run` starts the API and a worker (embedded by default), `make test` runs
# the whole suite. Both create the virtual environment and install what is missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run migrate api worker test test-fast lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/alembic upgrade head

run: migrate
	./scripts/run.sh

api: migrate
	$(BIN)/uvicorn api.main:app --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

worker: install
	$(BIN)/celery -A worker.app worker --pool=solo --queues=$${QUEUES:-gpu,cpu} --loglevel=INFO

test: install
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow and not integration"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

clean:
	rm -rf var .pytest_cache .ruff_cache
