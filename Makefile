# The two set-up commands of the README: `make run` and `make test`.
# Both work on a fresh machine: they create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DB ?= $(or $(CANDIST_DB),data/candist.db)
PORT ?= 8501
# serve-team: the address to bind (every interface by default) and whether to serve
# without sign-in anyway (ALLOW_OPEN=1: anyone who reaches the port can read and change
# every project).
TEAM_ADDRESS ?= 0.0.0.0
ALLOW_OPEN ?=
# SECRETS: the secrets file with the [auth] section (kept out of git; any path).
SECRETS ?= .streamlit/secrets.toml
SIGN_IN_CHECK := import sys, tomllib, pathlib; p = pathlib.Path("$(SECRETS)"); \
  sys.exit(0 if p.is_file() and "auth" in tomllib.loads(p.read_text()) else 1)

.PHONY: run serve-team test test-fast bench system-deps clean

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

# This machine only (127.0.0.1): one person, no sign-in.
run: $(VENV)/.runtime
	$(PY) -m candist_core demo --db $(DB) --if-missing
	CANDIST_DB=$(DB) $(PY) -m streamlit run app.py --server.port $(PORT) \
	  --server.address 127.0.0.1 --browser.gatherUsageStats false

# A team on the network: needs sign-in ([auth] in .streamlit/secrets.toml, README
# "Serving a team") unless ALLOW_OPEN=1.
serve-team: $(VENV)/.runtime
	@if $(PY) -c '$(SIGN_IN_CHECK)'; then :; \
	elif [ "$(ALLOW_OPEN)" = 1 ]; then \
	  echo "warning: serving $(TEAM_ADDRESS):$(PORT) WITHOUT sign-in (ALLOW_OPEN=1): anyone who can reach it can read and change every project" >&2; \
	else \
	  echo "error: no [auth] section in $(SECRETS): configure sign-in first (README, \"Serving a team\"), or run 'make serve-team ALLOW_OPEN=1' to serve it open anyway" >&2; \
	  exit 2; \
	fi
	$(PY) -m candist_core demo --db $(DB) --if-missing
	CANDIST_DB=$(DB) CANDIST_ALLOW_OPEN=$(if $(filter 1,$(ALLOW_OPEN)),1,) \
	  $(PY) -m streamlit run app.py --server.port $(PORT) \
	  --server.address $(TEAM_ADDRESS) --server.headless true --browser.gatherUsageStats false \
	  $(if $(wildcard $(SECRETS)),--secrets.files $(SECRETS),)

test: $(VENV)/.dev system-deps
	$(PY) -m pytest

test-fast: $(VENV)/.dev
	$(PY) -m pytest -m "not slow and not browser"

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
