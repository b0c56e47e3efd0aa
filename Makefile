# LGSP: `make run` starts the platform on its embedded defaults; `make test` runs every test.
# Both set themselves up first: a bare machine needs only python3 (and npm for buf).

VENV    := .venv
PY      := $(VENV)/bin/python
UV      := $(VENV)/bin/uv
STAMP   := $(VENV)/.installed
BUF     := node_modules/.bin/buf
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup run test proto proto-check lint bench clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv==0.13.8
	$(UV) pip sync -q --python $(PY) requirements.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	touch $(STAMP)

run: setup
	$(VENV)/bin/lgsp up

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache
