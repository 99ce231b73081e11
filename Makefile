# Set-up on a fresh machine is two commands (README "Quick start"):
#   make demo   installs into .venv and runs the synthetic end-to-end demo
#   make test   installs into .venv (with test extras) and runs the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch and torchvision are pinned to a pair whose operators match (see README "Dependencies").
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.claws-installed

.PHONY: setup demo test bench

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 'setuptools>=68' wheel
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/claws demo

test: setup
	$(PY) -m pytest

# Every benchmark script in turn, each printing one JSON line (tens of minutes on a 2-core CPU);
# one alone: .venv/bin/python bench/NAME.py
bench: setup
	set -e; for script in bench/*.py; do echo "== $$script"; $(PY) $$script; done
