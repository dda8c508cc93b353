# Everything runs inside .venv, created on first use. PY can be overridden (e.g. PY=python3.11).
# `make train` trains the paper's model at the mini scale: ImageNet-initialised EfficientNet-Lite0 (weights
# from a core dependency, no network), 200 steps on the embedded benchmark, generated on first use.
# The core install includes the dlib landmark backend (prebuilt dlib-bin wheels, seconds), so `make train`
# followed by `python -m iid.predict` on a video works. Where dlib-bin has no wheel the install fails; it
# then installs the core dependencies but dlib-bin (listed from pyproject.toml) and the dlib-src extra,
# which builds dlib from source (~7 min the first time, cached by pip afterwards), and iid without deps.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

# the requirements of `pip install -e .[EXTRAS]` with dlib-bin replaced by the dlib-src extra
define NO_DLIB_BIN
import sys, tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = [e for e in sys.argv[1].split(",") if e] + ["dlib-src"]
reqs = [d for d in p["dependencies"] if not d.startswith("dlib-bin")]
print("\n".join(reqs + [d for e in extras for d in p["optional-dependencies"].get(e, [])]))
endef
export NO_DLIB_BIN

.PHONY: venv train test bench lint data clean

# Bytecode is compiled on every core (compileall -j 0) instead of by pip, one file at a time: on 2 cores
# install + compile took 80 s against pip's 92 s. As with pip, a file that does not compile on this
# Python (torch ships a few for 3.12) stays source, hence `|| true`. src/ too: where Python may not write
# bytecode (PYTHONDONTWRITEBYTECODE), every interpreter would compile iid's modules again.
$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --no-compile -e ".[$*]" || { \
	  echo "no prebuilt dlib-bin wheel for this platform: building dlib from source (~7 min)"; \
	  $(BIN)/python -c "$$NO_DLIB_BIN" "$*" > $(VENV)/requirements-src.txt && \
	  $(BIN)/pip install -q --no-compile -r $(VENV)/requirements-src.txt && $(BIN)/pip install -q --no-deps -e .; }
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib src > /dev/null || true
	touch $@

venv: $(VENV)/.installed-dev

train: $(VENV)/.installed-dev
	$(BIN)/python -m iid.train scale=mini

# one pytest-xdist worker per core (TEST_WORKERS=0: in this process, for a debugger); an idle worker takes
# queued tests from a busy one (worksteal). Measured on 2 cores from a fresh clone: 4m00s of tests, in
# collection order but the sub-second config tests last (tests/conftest.py), CLI tests forked from a warm
# interpreter (tests/python_cli.py); putting the slow end-to-end tests first was slower (12m40s against
# 9m24s, before the warm interpreter), and so were 3 workers (336 s against 322 s on the working tree)
TEST_WORKERS ?= auto
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

bench: $(VENV)/.installed-dev
	for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: $(VENV)/.installed-dev
	$(BIN)/python -m ruff check src tests benchmarks

data: $(VENV)/.installed-dev
	$(BIN)/python -m iid.synth out=data/synthetic_mini size=mini  # the benchmark `make train` (scale=mini) reads

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
