# edgefleet — the two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# One module per worker keeps each module's shared fixtures (the security estate) in one place.
PYTEST_ARGS ?= -n 3 --dist loadfile
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck unit bench deps test-deps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[server,test]'
	@rm -f $(VENV)/.installed-*; touch $@

deps: $(STAMP)

## Start a server and a local agent with a demo job (`edgefleet up`).
run: deps
	$(BIN)/edgefleet up

## Install what the tests need (Debian packages when missing), then lint, type-check and test.
test: deps test-deps lint typecheck unit

test-deps:
	@scripts/install-test-deps.sh

lint: deps
	$(BIN)/ruff check edgefleet tests benchmarks scripts
	$(BIN)/ruff format --check edgefleet tests benchmarks scripts
	$(BIN)/lint-imports

typecheck: deps
	$(BIN)/mypy

unit: deps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## Benchmarks: results appended to benchmarks/RESULTS.md.
bench: deps test-deps bench-deps
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

.PHONY: bench-deps
bench-deps:
	@scripts/install-bench-deps.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
