# Everything runs inside .venv, created on first use. PY can be overridden (e.g. PY=python3.11).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= dev,dlib

.PHONY: venv train test bench lint data clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

train: $(STAMP)
	$(BIN)/python -m iid.train

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks --benchmark-enable -p no:cacheprovider
	for f in benchmarks/run_*.py; do [ -e "$$f" ] && $(BIN)/python $$f || true; done

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests benchmarks

data: $(STAMP)
	$(BIN)/python -m iid.synth out=data/synthetic

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
