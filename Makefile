# Two commands on a fresh machine with only python3: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: run test lint venv bench clean messages

$(STAMP): requirements.lock pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

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
