# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test lint bench clean

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
	$(BIN)/ruff check core runtime ussd sms workers web cli mpesa console tests bench wsgi.py
	$(BIN)/mypy core runtime ussd sms workers web cli mpesa console
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/ledger.py

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
