# Two entry points on a fresh machine (Python 3.11, root): `make demo` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore

.PHONY: setup setup-test graphviz chromium demo test reports digits bench

setup:
	$(PIP) torch==2.13.0
	$(PIP) -e .

setup-test: setup graphviz chromium
	$(PIP) -e '.[test]'

# Graphviz's `dot` renders the layout pictures; Debian's package, installed only when missing.
graphviz:
	@command -v dot >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; }

# Debian's Chromium, which Playwright drives in tests/test_interactive.py (Playwright's own browser
# download is not reachable from CI); installed only when missing.
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: setup
	msdprof count --preset cifar10-anytime

test: setup-test
	$(PYTHON) -m pytest

# Regenerates reports/ (every preset + README.md index); setup-test pins the matplotlib whose SVG
# bytes tests/test_report.py compares with the committed folder.
reports: setup-test
	msdprof report --all -o reports --force

# Trains a tiny MSDNet on scikit-learn's digits (about a minute on 2 CPU cores) and regenerates
# reports/digits/ from its outputs; setup-test pins the matplotlib whose SVG bytes
# tests/test_digits_example.py compares. Not part of `make test`: training is too slow for it.
digits: setup-test
	$(PIP) -e '.[examples]'
	$(PYTHON) examples/digits.py --out reports/digits

bench: setup
	$(PYTHON) benchmarks/bench_count.py
