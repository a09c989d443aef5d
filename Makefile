# Two entry points on a fresh machine (Python 3.11, root): `make demo` and `make test`.
# Outside a virtual environment they create one in .venv (in this clone) and install into it, so
# that they work on Python installations whose pip refuses system-wide installs (Debian's python3,
# PEP 668 "externally managed"); inside an active one they install into it. BASE_PYTHON makes the
# .venv; PYTHON=... skips it and installs with that interpreter.
BASE_PYTHON ?= python3
ifndef PYTHON
ifeq ($(shell $(BASE_PYTHON) -c 'import sys; print(sys.prefix != sys.base_prefix)'),True)
PYTHON := $(BASE_PYTHON)
else
VENV := .venv/bin/python
PYTHON := $(VENV)
endif
endif
# Console scripts (msdprof) live beside the interpreter in a .venv; elsewhere they are on PATH.
BIN := $(if $(VENV),.venv/bin/,)
PIP := $(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore

.PHONY: setup setup-test graphviz chromium demo test docs-check docs reports digits bench bench-docs

# Debian's python3 makes a venv only with its python3-venv package: installed when missing.
.venv/bin/python:
	$(BASE_PYTHON) -m venv .venv 2>/dev/null || { rm -rf .venv; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && $(BASE_PYTHON) -m venv .venv; }

setup: $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e .

# The test extra, and the docs extra: `make test` builds the docs site strictly (tests/test_docs_examples.py).
setup-test: setup graphviz chromium
	$(PIP) -e '.[test,docs]'

# Graphviz's `dot` renders the layout pictures; Debian's package, installed only when missing.
graphviz:
	@command -v dot >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; }

# Debian's Chromium, which Playwright drives in tests/test_interactive.py (Playwright's own browser
# download is not reachable from CI); installed only when missing.
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Graphviz too: `msdprof graph -o layout.svg`, which the README leads with, needs its `dot`.
demo: setup graphviz
	$(BIN)msdprof count --preset cifar10-anytime

test: setup-test
	$(PYTHON) -m pytest

# The examples of README.md and docs/ that take long (each marked <!-- docs-check: WHY --> before its
# block: a fresh clone's `make demo`, the whole benchmark run ...), each run in a fresh clone of
# this repository's committed state; `make test` runs every other example.
docs-check: setup-test
	$(PYTHON) -m pytest tests/test_docs_examples.py -m docs_check

# The docs site (MkDocs, Material theme; the API reference from the docstrings by mkdocstrings),
# served at http://127.0.0.1:8000 and rebuilt on every edit.
docs: setup-test
	$(PYTHON) -m mkdocs serve

# Regenerates reports/ (every preset + README.md index); setup-test pins the matplotlib whose SVG
# bytes tests/test_report.py compares with the committed folder.
reports: setup-test
	$(BIN)msdprof report --all -o reports --force

# Trains a tiny MSDNet on scikit-learn's digits (60 epochs: about 17 minutes on 2 CPU cores; the
# committed run took 1,004 s) and writes the page and its files to DIGITS_OUT: build/digits
# (ignored by git) unless asked, `make digits DIGITS_OUT=reports/digits` to rewrite the committed
# ones; setup-test pins the matplotlib whose SVG bytes tests/test_digits_example.py compares. Not
# part of `make test`: training is too slow for it.
DIGITS_OUT ?= build/digits
digits: setup-test
	$(PIP) -e '.[examples]'
	$(PYTHON) examples/digits.py --out $(DIGITS_OUT)

bench: setup
	$(PYTHON) benchmarks/bench_count.py
	$(PYTHON) benchmarks/bench_any_model.py

# The docs' measured figures, re-measured on this machine: every benchmarks/bench_*.py with
# --save (benchmarks/results/NAME.json: what it printed, with the commit, machine, date and load
# average), then the docs' <!-- bench:NAME --> blocks rewritten from them (benchmarks/results.py;
# tests/test_benchmark_results.py checks the two agree). Run it from a committed checkout (an
# uncommitted change is named "+ changes" in every block) on a machine with nothing else running:
# half an hour or more on 2 CPU cores, most of it bench_count and bench_sweep_cluster. A benchmark
# that FAILs a target still saves its results (its FAIL line is in its block); one that fails or
# stops without finishing keeps its previous results file, and this target then ends with exit
# code 1, naming it.
bench-docs: setup-test
	@failed=""; for script in benchmarks/bench_*.py; do \
		echo "== $$script --save"; $(PYTHON) $$script --save || failed="$$failed $$script"; \
	done; \
	$(PYTHON) benchmarks/results.py; \
	if [ -n "$$failed" ]; then echo "exit code not 0 (a FAIL line, or results not saved):$$failed"; exit 1; fi
