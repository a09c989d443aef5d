"""Shared fixtures: the authors' reference figures (a copy of shared/reference, checked against the
original where the checkout has it beside it)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

#: examples/ holds the early-exit test networks (examples/early_exit_models.py) the tests import
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

DATA = Path(__file__).parent / "data"
REFERENCE_FILE = DATA / "msdnet_reference_counts.json"
SHARED_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / REFERENCE_FILE.name


def load_reference() -> dict:
    """Recipes of the reference file (``about`` left out), by name."""
    data = json.loads(REFERENCE_FILE.read_text())
    return {k: v for k, v in data.items() if k != "about"}


REFERENCE = load_reference()


@pytest.fixture(autouse=True)
def _plain_width(monkeypatch):
    """Plain tables take ``COLUMNS`` when it is set (msdprof.render.formatting.text_width): the
    tests compare them at the default width whatever the terminal that runs them exports."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def model_folder(tmp_path, monkeypatch):
    """``model_folder(FACTORIES)``: the test's folder, made the working directory, holding
    ``models.py`` (the factories' source, for ``--model models.py:NAME``) beside a copy of
    ``examples/early_exit_models.py`` (which they may import)."""

    def make(factories: str) -> Path:
        shutil.copy(EXAMPLES / "early_exit_models.py", tmp_path)
        (tmp_path / "models.py").write_text(factories)
        monkeypatch.chdir(tmp_path)
        return tmp_path

    return make


@pytest.fixture(params=sorted(REFERENCE), ids=sorted(REFERENCE))
def reference(request):
    """One reference recipe: ``options``, ``input``, per-exit ``ops`` and ``params``."""
    return REFERENCE[request.param]


#: Debian's Chromium, which the browser tests drive through Playwright (`make setup-test` installs both).
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    """One Chromium for a test module (skipped without playwright or Chromium)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                   "(make setup-test installs it)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make setup-test installs Debian's chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def open_tab(browser):
    """``open_tab(path, width=1280, height=800)``: a Chromium tab on the file ``path``; a script
    error on any tab fails the test."""
    tabs, errors = [], []

    def open_page(path: Path, width: int = 1280, height: int = 800):
        tab = browser.new_page(viewport={"width": width, "height": height})
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.goto(path.as_uri())
        tabs.append(tab)
        return tab

    yield open_page
    for tab in tabs:
        tab.close()
    assert errors == []
