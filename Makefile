# Everything runs inside .venv, created on first use. PY can be overridden (e.g. PY=python3.11).
# `make train` trains the paper's model at the mini scale: ImageNet-initialised EfficientNet-Lite0 (weights
# from a core dependency, no network), 200 steps on the embedded benchmark, generated on first use.
# `make train` needs only the core extras; `make test` adds dlib (prebuilt dlib-bin wheels, seconds) so
# the real-face landmark path is tested too. Where dlib-bin has no wheel, the install falls back to the
# dlib-src extra, which builds dlib from source (~7 min the first time, cached by pip afterwards).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv train test bench lint data clean

$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[$*]" || { case "$*" in *dlib*) \
	  echo "no prebuilt dlib-bin wheel for this platform: building dlib from source (~7 min)"; \
	  $(BIN)/pip install -q -e ".[$(subst dlib,dlib-src,$*)]";; *) exit 1;; esac; }
	touch $@

venv: $(VENV)/.installed-dev

train: $(VENV)/.installed-dev
	$(BIN)/python -m iid.train scale=mini

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
