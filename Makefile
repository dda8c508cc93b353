# Everything runs inside .venv, created on first use. PY can be overridden (e.g. PY=python3.11).
# `make train` needs only the core extras; `make test` adds dlib (built from source, ~7 min the
# first time, cached by pip afterwards) so the real-face landmark path is tested too.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv train test bench lint data clean

$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[$*]"
	touch $@

venv: $(VENV)/.installed-dev

train: $(VENV)/.installed-dev
	$(BIN)/python -m iid.train

test: $(VENV)/.installed-dev,dlib
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-dev
	for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: $(VENV)/.installed-dev
	$(BIN)/python -m ruff check src tests benchmarks

data: $(VENV)/.installed-dev
	$(BIN)/python -m iid.synth out=data/synthetic

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
