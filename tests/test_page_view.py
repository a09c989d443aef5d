"""What the interactive page brings into view and lets one find (issue 33, item 12), in Chromium
(Playwright; `make setup-test` installs both) at 1280x800 and 800x600, as a user does it: the exit
chosen in the panel always in view and never under the panel, whatever was chosen before; the panel
folding away; a compact exit chooser past 24 exits; the search saying when nothing matches, finding
an MSDNet box by the words the picture shows, stepping through its matches and keeping its outline
while an exit is chosen; an exit's hover card giving the exit's cost, as the panel does.

Oracles: the boxes' places on screen (getBoundingClientRect) against the viewport's and the panel's;
the graph's node attributes (layout_graph) for what a search must find; exit_costs for the figures.
"""

from __future__ import annotations

import shutil

import pytest

from msdprof import exit_costs, layout_graph
from msdprof.core.units import format_count
from msdprof.render import drawing
from msdprof.render.interactive import network_page
from test_graph_page import LABEL_PX

pytestmark = pytest.mark.skipif(shutil.which(drawing.GRAPHVIZ_PROGRAM) is None, reason="Graphviz is not installed")

SIZES = [pytest.param((1280, 800), id="1280x800"), pytest.param((800, 600), id="800x600")]
#: An MSDNet with 1,000 exits (one per block, one layer a block), counted from its plan.
THOUSAND = {"preset_or_config": "cifar10-batch", "nBlocks": 1000, "stepmode": "even", "step": 1, "base": 1,
            "name": "1000 exits"}


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict:
    """name -> the page file: imagenet-step7 (the issue's 1 -> 5 -> 2), the 1,000-exit MSDNet, the
    12-block ViT (a folded dataflow graph) and BranchyDict (an exit that is a 0-op output)."""
    from early_exit_models import BranchyDict
    from transformer_models import ViT

    folder = tmp_path_factory.mktemp("pages")
    made = {}
    for name, given in {"imagenet-step7": {"preset_or_config": "imagenet-step7"}, "thousand": THOUSAND,
                        "vit12": {"preset_or_config": ViT().eval(), "input_size": 32},
                        "branchy": {"preset_or_config": BranchyDict().eval(), "input_size": 16}}.items():
        made[name] = folder / f"{name}.html"
        made[name].write_text(network_page(**given), encoding="utf-8")
    return made


@pytest.fixture
def tab_at(open_tab, pages):
    """tab_at(name, size): a tab on page ``name`` in a window of ``size`` (width, height) px."""
    return lambda name, size: open_tab(pages[name], *size)


#: Where an element is on screen, and the viewport's and the panel's rectangles, in CSS px.
RECTS = """selector => {
    const rect = el => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
    const el = document.querySelector(selector);
    return {box: el ? rect(el) : null, viewport: rect(document.getElementById("viewport")),
            panel: rect(document.getElementById("panel"))};
}"""


def in_view(tab, selector: str) -> bool:
    """The element is wholly inside the picture's viewport, which the panel does not cover."""
    at = tab.evaluate(RECTS, selector)
    (left, top, right, bottom), view = at["box"], at["viewport"]
    assert view[2] <= at["panel"][0] + 0.5  # the viewport ends where the panel starts
    return view[0] <= left and right <= view[2] and view[1] <= top and bottom <= view[3]


def choose(tab, k: int) -> None:
    """Choose exit k in the panel: its button, or (a compact chooser) the number box."""
    if tab.locator(f'#panel button[data-exit="{k}"]').count():
        tab.click(f'#panel button[data-exit="{k}"]')
    else:
        tab.fill("#exit-number", str(k))
        tab.press("#exit-number", "Enter")
    assert tab.text_content("#panel h2") == f"exit {k}"


# --- the chosen exit in view -------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_an_exit_chosen_after_another_is_in_view_not_under_the_panel(tab_at, size):
    tab = tab_at("imagenet-step7", size)
    tab.click('#layout [data-node="exit1"]')
    for k in (5, 2, 1, 3, 4, 5):  # the 1 -> 5 -> 2 (exit 2 was left behind the panel), then the rest
        choose(tab, k)
        assert in_view(tab, f'#layout [data-node="exit{k}"]'), k
        assert tab.evaluate(LABEL_PX) >= 10  # and readable: the labels at 10 px or more


@pytest.mark.parametrize("size", SIZES)
def test_exits_500_and_1000_of_a_1000_exit_page_come_into_view_even_zoomed_in(tab_at, size):
    tab = tab_at("thousand", size)
    tab.click('#zoom [data-zoom="in"]')
    tab.click('#zoom [data-zoom="in"]')
    for k in (1000, 500):
        choose(tab, k)
        assert in_view(tab, f'#layout [data-node="exit{k}"]'), k
    tab.click('#chooser button[data-step="1"]')  # the next exit
    assert tab.text_content("#panel h2") == "exit 501" and in_view(tab, '#layout [data-node="exit501"]')


@pytest.mark.parametrize("size", SIZES)
def test_the_chosen_exit_stays_in_view_when_the_panel_folds_and_comes_back(tab_at, size):
    tab = tab_at("imagenet-step7", size)
    choose(tab, 2)
    tab.click("#panel-toggle")
    assert in_view(tab, '#layout [data-node="exit2"]')
    tab.click("#panel-toggle")
    assert in_view(tab, '#layout [data-node="exit2"]')


# --- the panel ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_the_panel_folds_to_a_strip_giving_the_picture_the_width_and_larger_labels(tab_at, size):
    tab = tab_at("imagenet-step7", size)
    width = lambda selector: tab.evaluate(f'() => document.querySelector("{selector}").getBoundingClientRect().width')
    panel, before = width("#panel"), tab.evaluate(LABEL_PX)
    assert panel <= 0.33 * size[0]  # at 800 px 260 px (32.5%), not 360 (45%)
    tab.click("#panel-toggle")
    assert width("#panel") < 30 and width("#viewport") == pytest.approx(size[0] - width("#panel"))
    assert tab.get_attribute("#panel-toggle", "aria-expanded") == "false"
    # the whole picture, fitted to the wider view: larger where its width bounds it (800x600; at
    # 1280x800 imagenet-step7's wrapped rows are bound by the height), never smaller
    assert tab.evaluate(LABEL_PX) > before * (1.05 if size == (800, 600) else 0.999)
    tab.click("#panel-toggle")
    assert width("#panel") == panel and tab.is_visible("#panel h2")


@pytest.mark.parametrize("size", SIZES)
def test_1000_exits_are_chosen_in_a_compact_chooser_not_a_column_of_buttons(tab_at, size):
    tab = tab_at("thousand", size)
    assert tab.locator("#panel button[data-exit]").count() == 0
    assert tab.evaluate('() => document.getElementById("chooser").offsetHeight') < 100  # was 7,871 px of buttons
    assert tab.evaluate('() => { const c = document.getElementById("panel-content"); '
                        'return c.scrollHeight <= c.clientHeight; }')  # nothing to scroll to
    tab.fill("#exit-slider", "999")  # the slider's last place: exit 1000
    assert tab.text_content("#panel h2") == "exit 1000" and tab.input_value("#exit-number") == "1000"
    tab.fill("#exit-number", "1001")
    tab.press("#exit-number", "Enter")
    assert tab.text_content("#exit-wrong") == "no exit 1001: 1 to 1000"
    assert tab.text_content("#panel h2") == "exit 1000"


@pytest.mark.parametrize("size", SIZES)
def test_a_few_exits_keep_a_button_each(tab_at, size):
    tab = tab_at("imagenet-step7", size)
    assert tab.eval_on_selector_all("#panel button[data-exit]", "bs => bs.map(b => b.textContent)") == [
        f"exit {k}" for k in range(1, 6)]


# --- search -------------------------------------------------------------------------------------------


def found(tab) -> tuple[list[str], str | None, str]:
    """The outlined matches (in picture order), the one shown, and what the search says."""
    return (tab.eval_on_selector_all("#layout .found[data-node]", "els => els.map(e => e.dataset.node)"),
            tab.evaluate('() => { const h = document.querySelector("#layout .found.here"); return h && h.dataset.node; }'),
            tab.text_content("#hits"))


def find(tab, text: str) -> None:
    tab.fill("#search", text)
    tab.press("#search", "Enter")


@pytest.mark.parametrize("size", SIZES)
def test_a_search_that_matches_nothing_says_so(tab_at, size):
    tab = tab_at("imagenet-step7", size)
    find(tab, "layer 99")
    assert found(tab) == ([], None, "no box matches “layer 99”")
    assert tab.is_visible("#hits")


@pytest.mark.parametrize("size", SIZES)
def test_an_msdnet_box_is_found_by_what_the_picture_shows(tab_at, size):
    tab = tab_at("imagenet-step7", size)
    graph = layout_graph("imagenet-step7")
    # the column's header, the row's scale label: one map
    [node] = [n for n, d in graph.nodes(data=True) if d["kind"] == "map" and (d["layer"], d["scale"]) == (9, 1)]
    for asked in ("layer 9 scale 1", "scale 1 layer 9", "Layer 9, Scale 1"):
        find(tab, asked)
        assert found(tab) == ([node], node, "1 of 1")
        assert in_view(tab, f'#layout [data-node="{node}"]')
    find(tab, "exit 3")
    assert found(tab) == (["exit3"], "exit3", "1 of 1")
    d = graph.nodes[node]
    find(tab, f"{d['channels']}x{d['height']}x{d['width']} scale 1")  # its label, typed with an x
    assert node in found(tab)[0]
    find(tab, node)  # its id still finds it alone
    assert found(tab) == ([node], node, "1 of 1")


@pytest.mark.parametrize("size", SIZES)
def test_the_search_steps_through_its_matches_each_brought_into_view(tab_at, size):
    tab = tab_at("imagenet-step7", size)
    block3 = [n for n, d in layout_graph("imagenet-step7").nodes(data=True) if d["block"] == 3]  # graph order
    find(tab, "block 3")
    outlined, here, said = found(tab)
    assert sorted(outlined) == sorted(block3) and (here, said) == (block3[0], f"1 of {len(block3)}")
    tab.press("#search", "Enter")
    assert found(tab)[1:] == (block3[1], f"2 of {len(block3)}")
    tab.press("#search", "Shift+Enter")
    tab.click('#find button[data-hit="-1"]')  # previous from the first: the last
    assert found(tab)[1:] == (block3[-1], f"{len(block3)} of {len(block3)}")
    for i in range(len(block3)):
        tab.click('#find button[data-hit="1"]')
        assert found(tab)[1:] == (block3[i], f"{i + 1} of {len(block3)}")
        assert in_view(tab, f'#layout [data-node="{block3[i]}"]')


@pytest.mark.parametrize("size", SIZES)
def test_the_search_steps_into_folded_boxes_of_a_dataflow_graph(tab_at, size):
    from transformer_models import ViT

    tab = tab_at("vit12", size)
    norms = [n for n, d in layout_graph(ViT().eval(), input_size=32).nodes(data=True) if d.get("type") == "LayerNorm"]
    find(tab, "layernorm")  # a module's type, as its box shows it
    assert found(tab)[1:] == (norms[0], f"1 of {len(norms)}")
    for i in range(1, len(norms)):
        tab.press("#search", "Enter")
        assert found(tab)[1:] == (norms[i], f"{i + 1} of {len(norms)}")  # its folded box expanded
        assert in_view(tab, f'#layout [data-node="{norms[i]}"]')


GREEN = "rgb(10, 125, 50)"  # the outline of a match (page.css)


@pytest.mark.parametrize("size", SIZES)
def test_a_matchs_outline_stays_while_an_exit_is_chosen(tab_at, size):
    tab = tab_at("imagenet-step7", size)
    graph = layout_graph("imagenet-step7")
    [inside, outside] = [next(n for n, d in graph.nodes(data=True) if d["kind"] == "map" and d["block"] == b)
                         for b in (1, 4)]  # one exit 2 needs, one that fades while exit 2 is chosen
    # its opacity (after the .15 s fade) and its outline's colour
    shows = ('n => { const el = document.querySelector(`#layout [data-node="${n}"]`); return getComputedStyle(el)'
             f'.opacity === "1" && getComputedStyle(el.querySelector("polygon, path")).stroke === "{GREEN}"; }}')
    find(tab, inside)
    choose(tab, 2)  # an exit chosen after the search
    assert found(tab)[0] == [inside]
    tab.wait_for_function(shows, arg=inside, timeout=2000)
    find(tab, outside)  # a search while the exit is chosen, of a box that fades
    assert tab.text_content("#panel h2") == "exit 2" and found(tab)[0] == [outside]
    tab.wait_for_function(shows, arg=outside, timeout=2000)


# --- the hover card ----------------------------------------------------------------------------------


def card(tab, selector: str) -> list[str]:
    tab.hover(selector)
    return tab.inner_text("#tooltip").split("\n")


@pytest.mark.parametrize("size", SIZES)
def test_an_msdnet_exits_card_shows_the_exits_cost_as_the_panel_does(tab_at, size):
    tab = tab_at("imagenet-step7", size)
    graph = layout_graph("imagenet-step7")
    for e in exit_costs("imagenet-step7"):
        shown = card(tab, f'#layout [data-node="exit{e.exit}"]')
        head = graph.nodes[f"exit{e.exit}"]
        assert shown[2:5] == [f"{format_count(e.lazy_macs)} ops lazy vs {format_count(e.macs)} ops eager",
                              f"{format_count(e.lazy_params)} params lazy, {format_count(e.params)} params eager",
                              f"its head alone: {format_count(head['macs'])} ops, {format_count(head['params'])} params"]
        tab.click(f'#layout [data-node="exit{e.exit}"]')
        assert tab.text_content('[data-field="headline"]').startswith(shown[2])


@pytest.mark.parametrize("size", SIZES)
def test_an_any_model_exits_card_shows_the_exits_cost_not_0_ops(tab_at, size):
    from early_exit_models import BranchyDict

    tab = tab_at("branchy", size)
    for e in exit_costs(BranchyDict().eval(), input_size=16):
        shown = card(tab, f'#layout [data-node="exit{e.exit}"]')
        assert shown[2:4] == [f"{format_count(e.lazy_macs)} MACs lazy vs {format_count(e.macs)} MACs eager",
                              f"{format_count(e.lazy_params)} params lazy, {format_count(e.params)} params eager"]
        assert not any(line.startswith(("0 ops", "0 MACs")) for line in shown)
