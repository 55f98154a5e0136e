# The one entry point. `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck bench chaos sandbox clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m bot.sandbox.demo

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check bot deployer tests chaos bench
	$(BIN)/ruff format --check bot deployer tests chaos bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy bot deployer

bench: $(STAMP)
	$(BIN)/python -m bench.bench

chaos: $(STAMP)
	$(BIN)/python -m chaos.run --rounds 80 --kill-every 8

sandbox: $(STAMP)
	$(BIN)/aistack sandbox

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
