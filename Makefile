# One command runs the pipeline on the sample, one runs the tests; both build the environment
# from nothing when it is missing (Python 3.11+, pinned versions from requirements.lock).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Dagster keeps instance state (runs, schedules, logs) under .dagster/ (git-ignored).
export DAGSTER_HOME := $(CURDIR)

.PHONY: run test lint browser java report ui docs sample bench clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev,spark]'
	touch $(STAMP)

## run: the whole pipeline on data/sample into ./warehouse (through Dagster)
run: $(STAMP)
	$(BIN)/journeys run --config data/sample/journeys.yaml --warehouse warehouse

## test: lint (ruff, sqlfluff) and the full test suite
test: lint browser java
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

## browser: Debian's chromium for the report's browser tests (installed when root)
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || echo "no /usr/bin/chromium: the report's browser tests will be skipped (they fail under CI=true)"

## java: Debian's Java runtime for the Spark engine's tests (installed when root)
java:
	@command -v java >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; } || echo "no java: the Spark engine's tests will be skipped (they fail under CI=true)"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint sql docs/queries

## report: the journey map of ./warehouse (after make run)
report: $(STAMP)
	$(BIN)/journeys report --warehouse warehouse

## ui: the Dagster UI (asset graph, schedule) on http://127.0.0.1:3000
ui: $(STAMP)
	$(BIN)/dagster dev -m pipelines.definitions

## docs: regenerate docs/tables.md from the schema module
docs: $(STAMP)
	$(BIN)/journeys docs --out docs/tables.md

## sample: regenerate data/sample from the generator
sample: $(STAMP)
	$(BIN)/journeys generate --out data/sample

## bench: journeys run and the stripped pipeline vs the DuckDB sort floor at 1M and 10M events, the Spark engine at 1M (BENCH_SIZES, BENCH_REPEATS, BENCH_SPARK_MAX)
bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf warehouse .dagster
