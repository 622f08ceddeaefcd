# The README's two commands: `make readiness` (the sign-off run) and `make test` (every test).
# Both set up what they need first: the virtualenv, PostgreSQL 17 and, as root, its OS user.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest

.PHONY: setup readiness test lint bench-isolation clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed
	$(PY) -m readiness.install

readiness: setup
	$(PYTEST) -m readiness

test: setup lint
	$(PYTEST) --report-dir=reports/test

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check readiness tests conftest.py bench

bench-isolation: setup
	$(PY) bench/isolation.py 20

clean:
	rm -rf $(VENV) .postgresql reports/*
