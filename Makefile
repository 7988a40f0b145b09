# The README's two commands are `make demo` (set up, then run the main job) and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: setup testbin test unit lint demo bench image krew clean-testbin

setup:
	$(PIP) install --quiet --disable-pip-version-check -e '.[dev]'

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
	PYTHONPATH=kubectl_plugins:webhooks:tests/support lint-imports

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
