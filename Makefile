# Two entry points: `make run` (set up, start the app) and `make test` (set up, run the suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup system-deps

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first and pinned: an unpinned torch pulls GBs of CUDA wheels.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The shell-integration tests drive real bash and zsh in tmux.
system-deps:
	@command -v zsh >/dev/null && command -v tmux >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get install -y -q zsh tmux >/dev/null 2>&1 || \
	    echo "note: zsh/tmux missing and not installable; shell tests will be skipped"; }

run: setup
	$(BIN)/tinyllm

test: setup system-deps
	$(BIN)/python -m pytest
