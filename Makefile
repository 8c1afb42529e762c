# edgefleet — the two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# One module per worker keeps each module's shared fixtures (the security estate) in one place.
PYTEST_ARGS ?= -n 3 --dist loadfile
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck unit bench deps test-deps bytecode clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[server,test]'
	@rm -f $(VENV)/.installed-*; touch $@

deps: $(STAMP)

# Bytecode for the checkout's own modules: an editable install gets none, and where
# PYTHONDONTWRITEBYTECODE is set (as on our test machines) every server, agent and
# CLI process compiled each module it imports from source again, ~0.5 s of CPU a
# start. Only changed files are compiled again.
bytecode: deps
	@$(BIN)/python -m compileall -q -j 0 edgefleet benchmarks

## Start a server and a local agent with a demo job (`edgefleet up`).
run: deps bytecode
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

unit: deps bytecode
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## Benchmarks: results appended to benchmarks/RESULTS.md.
bench: deps test-deps bench-deps bytecode
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

.PHONY: bench-deps
bench-deps:
	@scripts/install-bench-deps.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
