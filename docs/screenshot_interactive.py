"""Remake docs/layout-imagenet-step4-exit2.png: the interactive layout page of imagenet-step4 in
Chromium (driven by Playwright, as tests/test_interactive.py does), after clicking exit 2.

    python docs/screenshot_interactive.py      # needs Graphviz, playwright and /usr/bin/chromium
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from msdprof.render.interactive import write_page

OUT = Path(__file__).with_name("layout-imagenet-step4-exit2.png")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        page_file = write_page(Path(tmp, "layout.html"), "imagenet-step4")
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1600, "height": 820})
        tab.goto(page_file.as_uri())
        tab.click('#zoom [data-zoom="out"]')          # the whole cone of exit 2 in view
        tab.click('#panel button[data-exit="2"]')     # brings exit 2 into view
        tab.click('[data-node="exit2"]')              # what a reader does: click the exit itself
        tab.hover('[data-node="s1/l7"]')              # one deferred map's hover card
        tab.screenshot(path=str(OUT))
        browser.close()
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
