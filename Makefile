# The README's two commands: `make demo` and `make test`. Each creates .venv if missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install bench clean

$(STAMP): pyproject.toml setup.py requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c requirements/constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) lint
	$(BIN)/python -m pytest -m "not slow and not gpu" -q -p no:cacheprovider

demo: $(STAMP)
	$(BIN)/polyformer demo

bench: $(STAMP)
	$(BIN)/pip install -q -c requirements/constraints.txt -e '.[bench]'
	$(BIN)/python -m benchmarks.core.mixers

clean:
	rm -rf runs outputs multirun lightning_logs
