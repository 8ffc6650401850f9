# Two commands on a fresh machine with only python3: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two hashed locks made from pyproject.toml by `make lock`: requirements.lock is what production installs
# (the Dockerfile, tests/test_packaging.py), requirements-dev.lock adds the extras dev, bench and drill at the
# same versions. The stamp names a checksum of both and pyproject.toml, so changing any of them reinstalls.
LOCKS := requirements.lock requirements-dev.lock
STAMP := $(VENV)/.installed-$(shell cat $(LOCKS) pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
LOCK_ARGS ?=

.PHONY: run test lint venv lock bench clean messages

$(STAMP): $(LOCKS) pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

# Regenerate both locks after changing the dependencies in pyproject.toml (pip-tools, pinned in the dev lock).
# Pins already in a lock are kept; to move one on: `make lock LOCK_ARGS="--upgrade-package NAME"`. The dev lock
# is constrained by the runtime lock, so a package in both has one version.
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links
lock: venv
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) $(LOCK_ARGS) --allow-unsafe --extra dev --extra bench --extra drill \
		--constraint requirements.lock --output-file requirements-dev.lock pyproject.toml

# Development on purpose: the only environment that runs on the published keys (WAIMAI_ENV defaults to production).
run: export WAIMAI_ENV ?= development
run: venv
	$(BIN)/waimai migrate
	$(BIN)/waimai seed --if-empty
	$(BIN)/waimai serve --with-fake-gateway

lint: venv
	$(BIN)/ruff check waimai tests bench
	$(BIN)/mypy
	$(BIN)/bandit -q -ll -c pyproject.toml -r waimai
	$(BIN)/lint-imports

test: venv lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

bench: venv
	$(BIN)/python bench/order_throughput.py

# `pybabel extract` over code and templates (babel.cfg), then `pybabel update` of each .po: new msgids
# arrive untranslated and the catalog test fails until they are translated.
messages: venv
	$(BIN)/python -m waimai.web.i18n messages

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache test-artifacts
