# The quick start: `make demo` runs the main job, `make test` the tests.
# Each sets up its own virtual environment on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
# Grafana's dashboard schema, for the test that checks the generated dashboard.
SCHEMA := tests/observe/grafana_schema
SCHEMA_STAMP := $(SCHEMA)/node_modules/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(SCHEMA_STAMP): $(SCHEMA)/package-lock.json
	@if command -v npm >/dev/null; then \
		cd $(SCHEMA) && npm ci --silent --no-audit --no-fund && touch node_modules/.installed; \
	else \
		echo "npm not found: the Grafana schema test will be skipped"; \
	fi

demo: $(STAMP)
	$(VENV)/bin/migrate demo

test: $(STAMP) $(SCHEMA_STAMP)
	$(VENV)/bin/python -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check migrate monolith tests

clean:
	rm -rf $(VENV) var
