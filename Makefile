# Set-up and everyday commands. Each target creates .venv first if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LINT_PATHS := riaktq_py tests $(wildcard bench)

.DEFAULT_GOAL := help
.PHONY: help demo test lint

help:
	@echo "make demo   run the demo (creates .venv and installs riaktq-py)"
	@echo "make test   run the whole test suite"
	@echo "make lint   mypy --strict and ruff on $(LINT_PATHS)"

.venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/riaktq demo

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/mypy --strict $(LINT_PATHS)
	$(BIN)/ruff check $(LINT_PATHS)
