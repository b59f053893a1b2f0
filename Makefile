# Every target works on a fresh machine with Python 3.11+ and npm.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: install demo test test-reliability lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Azurite (the Blob Storage emulator) for the blob state backend's tests, in the project's own node_modules.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

# The main job: a full deploy on the embedded ARM emulator, with its progress visible.
demo: install
	$(PY) -m aks_lockdown deploy config/eastus.toml --emulator --yes

# pytest exits 5 when it collects nothing: that is a failure here, not a pass.
test: install $(NODE_STAMP)
	$(PY) -m pytest -n 2 -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

# The fault, crash, concurrency and bad-input suite alone (make test runs it too).
test-reliability: install
	$(PY) -m pytest -n 2 -q -m reliability tests/reliability

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) .aks-lockdown node_modules .pytest_cache
