# Set-up on a fresh machine is two commands (README "Quick start"):
#   make demo   installs into .venv and runs the synthetic end-to-end demo
#   make test   installs into .venv (with test extras) and runs the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch and torchvision are pinned to a pair whose operators match (see README "Dependencies").
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.claws-installed

.PHONY: setup demo test bench ffmpeg

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 'setuptools>=68' wheel
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# ffmpeg's encoders write the synthetic test videos; installed from Debian when running as root.
ffmpeg:
	@command -v ffmpeg >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	  else echo "ffmpeg is needed for the tests: install it (e.g. apt-get install ffmpeg)"; exit 1; fi; }

demo: setup ffmpeg
	$(VENV)/bin/claws demo

test: setup ffmpeg
	$(PY) -m pytest

bench: setup ffmpeg
	$(PY) bench/c3d.py
