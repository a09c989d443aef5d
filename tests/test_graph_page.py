"""The page of a graph at real-model size, in Chromium (Playwright; `make setup-test` installs both):
at 1280x800 every exit is clicked as the page opens (no panning), the lit boxes are checked against
networkx.ancestors of the folded graph (msdprof.analysis.graph.fold_graph at the depth the page
shows, the oracle), a box is expanded and folded again, the convention switch relabels the boxes.

Networks (issue 24): cifar10-anytime and imagenet-step7 (the MSDNet grid), an SDN ResNet-56, a
12-block ViT and a 32-layer Llama-shaped decoder with 8 exits (examples/transformer_models.py).
One browser for the module (tests/conftest.py); each page is written once.
"""

from __future__ import annotations

import shutil

import networkx as nx
import pytest
import torch

from msdprof import layout_graph
from msdprof.analysis.graph import default_depth, fold_graph
from msdprof.render import drawing
from msdprof.render.interactive import network_page

pytestmark = pytest.mark.skipif(shutil.which(drawing.GRAPHVIZ_PROGRAM) is None, reason="Graphviz is not installed")


def _models() -> dict:
    from early_exit_models import SDNResNet56
    from transformer_models import Decoder, ViT

    return {
        "sdn-resnet56": (SDNResNet56().eval(), {"input_size": 32}),
        "vit12": (ViT().eval(), {"input_size": 32}),
        "decoder32": (Decoder().eval(), {"inputs": torch.zeros(1, 8, dtype=torch.long)}),
    }


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict:
    """name -> (page file, the graph the page shows first: MSDNet's grid, or the folded dataflow graph)."""
    folder = tmp_path_factory.mktemp("pages")
    made = {}
    for preset in ("cifar10-anytime", "imagenet-step4", "imagenet-step7"):
        path = folder / f"{preset}.html"
        path.write_text(network_page(preset), encoding="utf-8")
        made[preset] = (path, layout_graph(preset))
    for name, (model, given) in _models().items():
        path = folder / f"{name}.html"
        path.write_text(network_page(model, **given), encoding="utf-8")
        graph = layout_graph(model, **given)
        made[name] = (path, fold_graph(graph, default_depth(graph)))
    return made


def marked(tab, *marks: str) -> set[str]:
    found = set()
    for mark in marks:
        found |= set(tab.eval_on_selector_all(f"#layout .{mark}[data-node]", "els => els.map(e => e.dataset.node)"))
    return found


def drawn(tab) -> set[str]:
    return set(tab.eval_on_selector_all("#layout [data-node]", "els => els.map(e => e.dataset.node)"))


NAMES = ["cifar10-anytime", "imagenet-step7", "sdn-resnet56", "vit12", "decoder32"]


@pytest.mark.parametrize("name", NAMES)
def test_every_exit_is_clicked_as_the_page_opens_and_lights_its_ancestors(open_tab, pages, name):
    path, graph = pages[name]
    tab = open_tab(path)
    assert drawn(tab) == set(graph)
    exits = sorted(d["exit"] for _, d in graph.nodes(data=True) if d.get("exit") is not None)
    for k in exits:
        tab.click(f'#layout [data-node="exit{k}"]', timeout=2000)  # in view: no scrolling, no panning
        assert marked(tab, "selected") == {f"exit{k}"}
        assert marked(tab, "ancestor") == nx.ancestors(graph, f"exit{k}")


@pytest.mark.parametrize("name", ["sdn-resnet56", "vit12"])
def test_a_box_expands_on_click_and_folds_back_from_the_panel(open_tab, pages, name):
    path, graph = pages[name]
    tab = open_tab(path)
    box = next(n for n, d in graph.nodes(data=True) if d["kind"] == "group")
    tab.click(f'#layout [data-node="{box}"]')
    inside = {n for n in drawn(tab) if n.startswith(box + ".") or n.startswith(box + "/")}
    assert box not in drawn(tab) and inside
    tab.click(f'#panel button[data-fold="{box}"]')
    assert drawn(tab) == set(graph)


def test_an_expanded_box_lights_what_exit_needs_inside_it(open_tab, pages):
    path, graph = pages["sdn-resnet56"]
    tab = open_tab(path)
    tab.click('#layout [data-node="stages.1"]')
    tab.click('#layout [data-node="exit2"]')
    model, given = _models()["sdn-resnet56"]
    full = layout_graph(model, **given)
    opened_graph = fold_graph(full, 2)  # stages.1 open: its blocks are boxes of depth 2
    shown = drawn(tab)
    assert {n for n in marked(tab, "ancestor") if n.startswith("stages.1.")} == {
        n for n in nx.ancestors(opened_graph, "exit2") if n.startswith("stages.1.")} & shown


def test_the_convention_switch_relabels_the_boxes(open_tab, pages):
    path, _ = pages["vit12"]
    tab = open_tab(path)
    label = '#layout [data-node="blocks.0"] text:nth-of-type(3)'
    assert tab.text_content(label).endswith(" MACs")  # a model msdprof did not build opens in macs
    tab.check('#conventions input[value="flops"]')
    assert tab.text_content(label).endswith(" FLOPs")


def test_the_search_box_expands_and_finds_a_module(open_tab, pages):
    path, _ = pages["vit12"]
    tab = open_tab(path)
    tab.fill("#search", "blocks.3.mlp.0")
    tab.press("#search", "Enter")
    assert marked(tab, "found") == {"blocks.3.mlp.0"}


def test_the_page_opens_with_the_exit_given(open_tab, tmp_path):
    path = tmp_path / "p.html"
    path.write_text(network_page("cifar10-anytime", exit=4), encoding="utf-8")
    tab = open_tab(path)
    assert tab.text_content("#panel h2") == "exit 4"
    assert marked(tab, "ancestor") == nx.ancestors(layout_graph("cifar10-anytime"), "exit4")


#: The size on screen of the smallest box label, in CSS pixels (its font size times the view's scale),
#: measured in the page as docs/screenshot_interactive.py measures it.
LABEL_PX = """() => Math.min(...Array.from(document.querySelectorAll("#layout [data-node] text"),
    t => parseFloat(t.getAttribute("font-size") || getComputedStyle(t).fontSize) * t.getScreenCTM().a))"""


@pytest.mark.parametrize("name", ["cifar10-anytime", "imagenet-step4", "sdn-resnet56", "vit12", "decoder32"])
def test_the_first_view_labels_are_at_least_10_px_and_no_note_is_shown(open_tab, pages, name):
    tab = open_tab(pages[name][0])
    assert tab.evaluate(LABEL_PX) >= 10  # decoder32's, the smallest: 10.05 px
    assert tab.is_hidden("#small")


def test_a_picture_too_long_for_10_px_labels_says_their_size_and_how_to_read_them(open_tab, pages):
    tab = open_tab(pages["imagenet-step7"][0])  # 39 columns x 4 scales: 7.2 px when all of it shows
    px = tab.evaluate(LABEL_PX)
    assert px < 10
    assert tab.text_content("#small") == (f" · the labels are {px:.1f} px at this size: zoom in (+ or the "
                                          "wheel), or choose an exit in the panel to zoom to what it needs")
    tab.click('#zoom button[data-zoom="in"]')
    tab.click('#zoom button[data-zoom="in"]')  # 1.4 x 1.4: past 10 px
    assert tab.evaluate(LABEL_PX) >= 10 and tab.is_hidden("#small")
