# ring-actors entry points. On a fresh Debian 12 machine these install and start everything they need
# (as root): Debian packages, Docker, Podman, containerd, two local registries, test images, and .venv.
#
#   make run                      serve with a default config (docker runtime) and a generated secret key
#   make test                     engine test environment + .venv + pytest (parallel, xdist)
#   make test PYTEST_ARGS='tests/unit -x'      pass arguments to pytest
#   make test PYTEST_XDIST=       run pytest without xdist
#   make bench                    engine test environment + .venv + python -m bench
#   make test-env                 only the engines, registries and test images (idempotent, fast when up)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

RING_CONFIG_DIR ?= $(HOME)/.config/kemeter/ring
export RING_CONFIG_DIR

PYTEST_ARGS ?=
PYTEST_XDIST ?= -n 3 --dist loadgroup
BENCH_ARGS ?=
RUN_ARGS ?=
TIMED := scripts/timed.sh

.PHONY: help venv test-env run test bench lint

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

venv:
	@$(TIMED) venv scripts/setup-python.sh

test-env:
	@scripts/setup-test-env.sh

run:
	@scripts/run-server.sh $(RUN_ARGS)

test:
	@scripts/setup-test-env.sh
	@$(TIMED) venv scripts/setup-python.sh
	@$(TIMED) pytest .venv/bin/pytest -p no:cacheprovider $(PYTEST_XDIST) $(PYTEST_ARGS)

bench:
	@scripts/setup-test-env.sh
	@$(TIMED) venv scripts/setup-python.sh
	@$(TIMED) bench .venv/bin/python -m bench $(BENCH_ARGS)

# Shell scripts always; ruff and mypy when the venv has them.
lint:
	@for f in scripts/*.sh scripts/timed.sh .ci/run; do bash -n "$$f"; done
	@if command -v shellcheck >/dev/null; then shellcheck -x scripts/*.sh .ci/run; fi
	@if [[ -x .venv/bin/ruff ]]; then .venv/bin/ruff check .; else echo "lint: ruff not in .venv, skipped"; fi
	@if [[ -x .venv/bin/mypy ]]; then .venv/bin/mypy ring_actors; else echo "lint: mypy not in .venv, skipped"; fi
