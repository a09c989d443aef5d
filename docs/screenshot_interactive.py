"""Remake the interactive-page screenshots in docs/: for each network below, the page at 1280x800
in Chromium (driven by Playwright, as tests/test_interactive.py does) as it opens
(``docs/page-<name>.png``) and with one exit chosen by clicking its box, then its panel button,
which zooms to what it needs (``docs/page-<name>-exit<k>.png``).

    python docs/screenshot_interactive.py      # needs Graphviz, playwright and /usr/bin/chromium
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from early_exit_models import SDNResNet56  # noqa: E402
from transformer_models import ViT, Decoder  # noqa: E402

from msdprof.render.interactive import write_page  # noqa: E402

DOCS = Path(__file__).parent
#: The size on screen of the smallest node label, in CSS pixels (its font size times the view's scale).
LABEL_PX = """() => Math.min(...Array.from(document.querySelectorAll("#layout [data-node] text"),
    t => parseFloat(t.getAttribute("font-size") || getComputedStyle(t).fontSize) * t.getScreenCTM().a))"""


def pages() -> dict[str, tuple[dict, int]]:
    """name -> (write_page keywords, the exit to click)."""
    return {
        "cifar10-anytime": ({"preset_or_config": "cifar10-anytime"}, 4),
        "imagenet-step7": ({"preset_or_config": "imagenet-step7"}, 2),
        "sdn-resnet56": ({"preset_or_config": SDNResNet56().eval(), "input_size": 32, "name": "ResNet-56"}, 2),
        "vit12": ({"preset_or_config": ViT().eval(), "input_size": 32, "name": "12 blocks"}, 6),
        "decoder32": ({"preset_or_config": Decoder().eval(), "inputs": torch.zeros(1, 8, dtype=torch.long),
                       "name": "32 layers"}, 5),
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 800})
        for name, (keywords, exit) in pages().items():
            page_file = write_page(Path(tmp, f"{name}.html"), **keywords)
            tab.goto(page_file.as_uri())
            tab.screenshot(path=str(DOCS / f"page-{name}.png"))
            print(f"{name}: first view, node labels {tab.evaluate(LABEL_PX):.1f} px")
            tab.click(f'[data-node="exit{exit}"]')        # no panning: every exit is in the first view
            tab.click(f'#panel button[data-exit="{exit}"]')  # a button's choice zooms to what it needs
            tab.mouse.move(2, 790)                        # no hover card over the picture
            tab.screenshot(path=str(DOCS / f"page-{name}-exit{exit}.png"))
            print(f"wrote docs/page-{name}.png, docs/page-{name}-exit{exit}.png")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
