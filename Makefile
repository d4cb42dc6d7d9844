# The two commands (see README):  make run   and   make test
# Both install everything they need first; reruns reuse the venv and the cached jars.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONNECTORS := spark4.1-iceberg1.12.0-comet1.2.0
UV_VERSION := 0.13.9
MOVIELAKE_JARS_DIR ?= $(HOME)/.cache/movielake/jars/$(CONNECTORS)
export MOVIELAKE_JARS_DIR

.PHONY: setup run test test-fast lint format dev clean lock

setup: $(BIN)/.installed $(MOVIELAKE_JARS_DIR)/.complete

# Exactly the versions in requirements.lock (the ones CI last passed with), then this project.
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

# Re-resolve requirements.lock from pyproject.toml (newest allowed versions); then run make test.
lock: $(BIN)/.installed
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --universal -o requirements.lock

# Spark's connector jars (Iceberg, S3, the SQLite catalog, the Comet engine) from Maven Central, cached outside the
# clone (a rerun downloads nothing).
$(MOVIELAKE_JARS_DIR)/.complete: connectors/pom.xml
	mkdir -p $(MOVIELAKE_JARS_DIR)
	mvn --batch-mode --quiet -f connectors/pom.xml dependency:copy-dependencies \
	    -DincludeScope=runtime -DoutputDirectory=$(MOVIELAKE_JARS_DIR) \
	    -DexcludeGroupIds=io.netty,org.slf4j,commons-logging,commons-codec,org.apache.httpcomponents,org.scala-lang,org.scala-lang.modules
	touch $@

run: setup
	$(BIN)/movielake run

# Two pytest workers (the machine has 2 cores; much of a test's time is Dagster and Spark overhead on
# tiny data, not CPU), each taking whole modules, so a module's fixtures (its built lakes) are built
# once. (xdist's loadgroup does not group with pytest 9: the test ids keep no group suffix.)
test: setup lint
	$(BIN)/pytest -n 2 --dist loadfile

test-fast: setup lint
	$(BIN)/pytest -n 2 --dist loadfile -m "not slow"

# ruff's linter and formatter (configured in pyproject.toml); `make format` applies both.
lint: setup
	$(BIN)/ruff check movielake_dagster movielake_dagster_tests
	$(BIN)/ruff format --check movielake_dagster movielake_dagster_tests

format: setup
	$(BIN)/ruff check --fix movielake_dagster movielake_dagster_tests
	$(BIN)/ruff format movielake_dagster movielake_dagster_tests

dev: setup
	$(BIN)/dagster dev

clean:
	rm -rf .movielake spark-warehouse metastore_db
