# Crucible: `make run` starts the API and a worker (embedded by default), `make test` runs
# the whole suite. Both create the virtual environment and install what is missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVE_STAMP := $(VENV)/.installed-serve
# In-process tests run on this many processes; tests of real servers and browsers alone.
TEST_PROCESSES ?= 2

.PHONY: install install-serve run migrate api worker test test-fast lint format bench clean

# What serving needs (`make run`): the service and its Python client, no development tools.
$(SERVE_STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . -e clients/python
	touch $(SERVE_STAMP)

# Everything (`make test`, `make lint`): the service, its client and the development tools.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e clients/python
	touch $(STAMP) $(SERVE_STAMP)

install: $(STAMP)

install-serve: $(SERVE_STAMP)

migrate: install-serve
	$(BIN)/alembic upgrade head

run: migrate
	./scripts/run.sh

# As scripts/run.sh passes them: LOG_LEVEL to uvicorn (which spells it in lower case) and
# Celery, and uvicorn's access log only when ACCESS_LOG is on.
LOG_LEVEL ?= INFO
ACCESS_LOG ?= false
lowercase = $(shell printf '%s' '$(1)' | tr '[:upper:]' '[:lower:]')
ACCESS_LOG_FLAG = $(if $(filter 1 t true y yes on,$(call lowercase,$(ACCESS_LOG))),--access-log,--no-access-log)

api: migrate
	$(BIN)/uvicorn api.main:app --host $${HOST:-127.0.0.1} --port $${PORT:-8000} \
		--log-level $(call lowercase,$(LOG_LEVEL)) $(ACCESS_LOG_FLAG)

worker: install-serve
	$(BIN)/celery -A worker.app worker --pool=solo --queues=$${QUEUES:-gpu,cpu} \
		--loglevel=$(LOG_LEVEL)

# Both runs go to the end, so one CI run reports every failure; either failing fails the target.
test: install
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile --ignore=tests/integration --ignore=tests/browser; \
	in_process=$$?; \
	$(BIN)/pytest tests/integration tests/browser; \
	exit $$((in_process || $$?))

test-fast: install
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile -m "not slow" --ignore=tests/integration --ignore=tests/browser

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
