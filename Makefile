# LGSP: `make run` starts the platform on its embedded defaults; `make test` runs every test.
# Both set themselves up first: a bare machine needs only python3 (and npm for buf).

VENV    := .venv
PY      := $(VENV)/bin/python
UV      := $(VENV)/bin/uv
STAMP   := $(VENV)/.installed
BUF     := node_modules/.bin/buf
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup run test test-serial proto proto-check lint bench clean

setup: $(STAMP) $(BUF) debian

# Debian packages the tests drive as real clients and servers: chromium (Playwright, the
# dossiers' lookup page), swaks (an independent SMTP client) and postfix (the mail service's
# scale-out relay). Installed when setup runs as root (CI does); elsewhere the tests that need
# them skip saying so (and fail under CI=true).
DEBIAN_PACKAGES := chromium swaks postfix
.PHONY: debian
debian:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) \
	    >/dev/null || echo "apt-get could not install:$$missing"; \
	else echo "not installed (needs root and apt-get):$$missing; the tests using them skip"; fi

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv==0.13.8
	$(UV) pip sync -q --python $(PY) requirements.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	touch $(STAMP)

# buf comes from npm, pinned in package-lock.json. Without npm, setup still succeeds: the buf
# lint test then skips locally (and fails in CI, where buf is required).
$(BUF): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --no-audit --no-fund --loglevel=error && touch $(BUF); \
	else echo "npm not found: buf not installed; install Node.js/npm and rerun make setup"; fi

run: setup
	LGSP_IDENTITY_DEMO_SEED=true LGSP_GATEWAY_DEMO_SEED=true $(VENV)/bin/lgsp up

# Every core, one test file per worker at a time (module fixtures start their servers once).
test: setup
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadfile

test-serial: setup
	$(PY) -m pytest -q

proto: setup
	$(PY) tools/protogen.py

proto-check: setup
	$(PY) tools/protogen.py --check

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(BUF) lint
	$(PY) tools/buf_breaking.py

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache
