# dstrack: `make run` sets everything up and starts the service; `make test` runs every check.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha256sum | cut -c1-12)

.PHONY: install run serve test lint typecheck imports schema schema-check pytest pytest-postgres bench clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

run: install
	scripts/run

serve: install
	$(BIN)/dstrack serve

test: install lint typecheck imports schema-check pytest pytest-postgres

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

imports:
	$(BIN)/lint-imports

EXPORT_SCHEMA := $(BIN)/python -c 'from api.schema import schema; print(schema.as_str())'

schema:
	$(EXPORT_SCHEMA) > api/schema.graphql

schema-check:
	$(EXPORT_SCHEMA) | diff -u api/schema.graphql - \
	  || (echo "api/schema.graphql is stale: run 'make schema'"; exit 1)

pytest:
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# The same suite against a real PostgreSQL server (installed with apt-get when missing).
pytest-postgres:
	DSTRACK_TEST_DATABASE_URL="$$(scripts/postgres-for-tests start)" \
	  $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
