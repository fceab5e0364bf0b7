# The two commands of the README: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python manage.py migrate --verbosity 0
	exec $(BIN)/python manage.py runserver

test: install
	$(BIN)/python -m pytest

# Side by side with the Backstage reference backend (../shared/peer), then reads at 1M todos.
bench: install
	$(BIN)/python scripts/bench.py --write docs/benchmarks.md

lint: install
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/ruff check .
