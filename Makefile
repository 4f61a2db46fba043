# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo phone test lint bench mutate mutate-nightly clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/harambee demo

# A phone in the terminal, on the running demo: make phone N=+254700000001
phone: $(STAMP)
	$(BIN)/harambee phone $(or $(N),+254711000001)

# The suite on TEST_JOBS cores (pytest-xdist; each worker has its own database and
# Redis db number). TEST_JOBS=0 runs it in this process.
TEST_JOBS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_JOBS)

# Style, types, and who may import whom (the contracts in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check core runtime ussd sms workers web cli mpesa console tests bench tools wsgi.py
	$(BIN)/mypy core runtime ussd sms workers web cli mpesa console tools
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/ledger.py

# Mutation testing (docs/testing.md): the modules CI gates, or those named in MODULES
# (`make mutate MODULES="money parser"`); mutate-nightly runs every module in mutate.toml.
MODULES ?=
mutate: $(STAMP)
	$(BIN)/python tools/mutate.py $(if $(strip $(MODULES)),$(MODULES),--ci)

mutate-nightly: $(STAMP)
	$(BIN)/python tools/mutate.py --all

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis mutants
