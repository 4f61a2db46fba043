# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test lint bench mutate mutate-nightly clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/harambee demo

test: $(STAMP)
	$(BIN)/python -m pytest

# Style, types, and who may import whom (the contracts in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check core runtime ussd sms workers web cli mpesa tests bench tools wsgi.py
	$(BIN)/mypy core runtime ussd sms workers web cli mpesa tools
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
