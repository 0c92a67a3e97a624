# `make run` and `make test` are all a newcomer needs; both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
PIP := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: install run test test-long fuzz screenshots faults constraints clean

# constraints.txt holds the versions the suite last passed with: a fresh clone gets those, not
# whatever was released since. `make run` needs only the service and the demo's CalDAV server
# (half the install time); the tests add the dev tools.
$(RUN_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[demo]'
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PIP) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The status page's browser test drives Debian's Chromium through its chromedriver.
CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMEDRIVER):
	$(SUDO) apt-get install -y --no-install-recommends chromium chromium-driver \
		|| ($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium chromium-driver)

run: $(RUN_STAMP)
	$(BIN)/calsync up

# The pipeline tests that prove delivery run on RabbitMQ as well as on Redis (the list is in
# tests/pipeline/conftest.py); `pytest tests/pipeline --broker rabbitmq` runs them all there.
test: install $(CHROMEDRIVER)
	$(BIN)/pytest

# The property tests with 5,000 examples each.
test-long: install
	HYPOTHESIS_PROFILE=long $(BIN)/pytest tests/sync

# The long fuzz: schemathesis over every operation and Hypothesis over the webhook receivers,
# 10,000 requests at least; each test prints what it sent, by status.
fuzz: install
	CALSYNC_FUZZ_EXAMPLES=300 CALSYNC_FUZZ_MIN_REQUESTS=10000 $(BIN)/pytest -q -s --timeout=1800 \
		tests/api/test_api_schema.py tests/api/test_fuzz_webhooks.py

# The status page's pictures in docs/screenshots, taken by the browser test on the demo.
screenshots: install $(CHROMEDRIVER)
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/pytest -q tests/foundation/test_status_page_in_a_browser.py

# The fault matrix (docs/reliability.md): private PostgreSQL and Redis, one fault per row.
faults: install
	$(BIN)/python -m bench.fault_matrix

# The newest releases pyproject.toml admits, written to constraints.txt; then `make test`, and
# commit the file once the suite passes with it.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	head -n 2 constraints.txt > constraints.new
	.venv-constraints/bin/pip freeze --exclude-editable --disable-pip-version-check >> constraints.new
	mv constraints.new constraints.txt
	rm -rf .venv-constraints

clean:
	rm -rf $(VENV) .calsync .mypy_cache .ruff_cache
