# `make run` and `make test` are all a newcomer needs; both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-long clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/calsync up

# The pipeline tests that prove delivery run on RabbitMQ as well as on Redis (the list is in
# tests/pipeline/conftest.py); `pytest tests/pipeline --broker rabbitmq` runs them all there.
test: install
	$(BIN)/pytest

# The property tests with 5,000 examples each.
test-long: install
	HYPOTHESIS_PROFILE=long $(BIN)/pytest tests/sync

clean:
	rm -rf $(VENV) .calsync .mypy_cache .ruff_cache
