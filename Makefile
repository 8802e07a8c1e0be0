# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs format bench bench-more screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded,postgres]'
	touch $(STAMP)

## make demo: the example app, a worker and the dashboard on an embedded Redis and SQLite
demo: $(STAMP)
	$(BIN)/python -m example_app.demo

## make lint: ruff (lint and format check), mypy --strict, and the import layering (import-linter)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## make docs: the Sphinx site in docs/_build/html; a warning (a broken reference) fails it
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

## make test: lint, the docs, then the test suite against a real Redis and a real database
test: lint docs
	$(BIN)/python -m pytest

## make bench: flask-jobs against RQ, Celery and Dramatiq, one table (not part of `make test`)
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/suite.py

## make bench-more: history cost and freshness, scheduler lateness and failover
bench-more: $(STAMP)
	$(BIN)/python bench/history.py
	$(BIN)/python bench/scheduler.py

## make screenshots: the README's dashboard images (docs/images), shot by the browser tests
screenshots: $(STAMP)
	JOBS_SCREENSHOTS=docs/images $(BIN)/python -m pytest -q -p no:cacheprovider \
		"tests/test_dashboard_screenshots.py::test_main_pages_light_and_dark_at_1280_and_800"

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache docs/_build
