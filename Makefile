# The two set-up commands of the README: `make run` and `make test`.
# Both work on a fresh machine: they create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DB ?= data/candist.db
PORT ?= 8501

.PHONY: run test test-fast bench system-deps clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Debian's chromium for the browser tests (never a browser download of playwright's own).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

run: $(VENV)/.runtime
	$(PY) -m candist_core demo --db $(DB) --if-missing
	CANDIST_DB=$(DB) $(PY) -m streamlit run app.py --server.port $(PORT) \
	  --browser.gatherUsageStats false

test: $(VENV)/.dev system-deps
	$(PY) -m pytest

test-fast: $(VENV)/.dev
	$(PY) -m pytest -m "not slow and not browser"

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
