# The README's two commands are `make demo` (set up, then run the main job) and `make test`.
#
# The interpreter: PYTHON when given; else the project virtualenv .venv/ when it exists, or when
# SYSTEM_PYTHON is one that pip must not install into (PEP 668: Debian's and Ubuntu's python3 carry an
# EXTERNALLY-MANAGED marker), made on first use; else SYSTEM_PYTHON itself (a pyenv, conda or CI
# Python, or an activated virtualenv).
SYSTEM_PYTHON ?= python3
VENV := .venv
EXTERNALLY_MANAGED := import os, sys, sysconfig; \
  marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"); \
  print("yes" if sys.prefix == sys.base_prefix and os.path.isfile(marker) else "no")
ifeq ($(origin PYTHON),undefined)
  ifneq ($(wildcard $(VENV)/bin/python),)
    PYTHON := $(VENV)/bin/python
  else ifeq ($(shell $(SYSTEM_PYTHON) -c '$(EXTERNALLY_MANAGED)' 2>/dev/null),yes)
    PYTHON := $(VENV)/bin/python
  else
    PYTHON := $(SYSTEM_PYTHON)
  endif
endif
PIP ?= $(PYTHON) -m pip
# Where the interpreter's console scripts are (lint-imports): beside it, or on PATH for a bare name.
BIN := $(if $(findstring /,$(PYTHON)),$(dir $(PYTHON)),)

.PHONY: setup testbin test unit lint demo bench image krew clean-testbin

setup: $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/bin/python)
	$(PIP) install --quiet --disable-pip-version-check -e '.[dev]'

$(VENV)/bin/python:
	@echo "make: $(SYSTEM_PYTHON) is managed by the system (PEP 668): installing into the virtualenv $(VENV)/"
	@$(SYSTEM_PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "make: '$(SYSTEM_PYTHON) -m venv' failed: on Debian or Ubuntu run 'sudo apt-get install python3-venv'" >&2; \
	  exit 1; }

testbin:
	bash hack/testbin.sh >/dev/null

test: setup testbin
	$(PYTHON) -m pytest

# The fast tier: pure unit tests and the CLI tests that need no server, nothing built or started.
unit: setup
	$(PYTHON) -m pytest tests/unit tests/cli -m "not testbin and not integration" --timeout=60 -q

lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy
	PYTHONPATH=kubectl_plugins:webhooks:tests/support $(BIN)lint-imports

demo: setup testbin
	PYTHONPATH=tests/support $(PYTHON) -m kaip_testbed.demo $(ARGS)

bench: setup testbin
	$(PYTHON) -m pytest tests/benchmarks -s -p no:cacheprovider

krew: setup
	$(PYTHON) hack/build_krew.py --out dist/krew

image:
	docker build -t ghcr.io/kaip-dev/kaip:v0.1.0 .

clean-testbin:
	rm -rf "$$(bash hack/testbin.sh --print)"
