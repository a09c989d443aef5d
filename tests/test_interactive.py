"""The interactive layout page (msdprof.render.interactive): what it holds, read from the file, and what it
does, in a real browser (Chromium driven by Playwright; `make setup-test` installs both).

Oracles: networkx.ancestors of msdprof.layout_graph for the marked maps, and exit_costs for every
figure the panel shows (its eager, lazy and direct fields; what lazy defers = eager - lazy).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import graphviz
import networkx as nx
import pytest

from msdnet import Options
from msdprof import exit_costs, layout_graph
from msdprof.render import drawing
from msdprof.core.counting import CONVENTIONS
from msdprof.core.units import format_count
from msdprof.core.exits import ExitCost, ExitCosts
from msdprof.render.interactive import network_page, page, page_data
from cli_run import picture, run

needs_graphviz = pytest.mark.skipif(shutil.which(drawing.GRAPHVIZ_PROGRAM) is None,
                                    reason="Graphviz is not installed")
PRESET = "imagenet-step4"  # the issue's example: 5 exits, 65 nodes
#: The page's style sheet and script in this checkout, read as files (not through the package).
PAGE_FILES = {name: (Path(__file__).parents[1] / "msdprof" / "render" / "page" / name).read_text(encoding="utf-8")
              for name in ("page.css", "page.js", "flow_layout.js")}


def svg_of(text: str) -> ET.Element:
    return ET.fromstring(text[text.index("<svg"):text.index("</svg>") + len("</svg>")])


def data_of(text: str) -> dict:
    start = text.index('<script type="application/json" id="msdprof-data">')
    body = text[text.index(">", start) + 1:text.index("</script>", start)]
    return json.loads(body.replace("<\\/", "</"))


@pytest.fixture(scope="module")
def step4() -> dict:
    """The page of imagenet-step4, its graph and its costs in every convention."""
    return {"page": network_page(PRESET), "graph": layout_graph(PRESET),
            "costs": {c: exit_costs(PRESET, convention=c) for c in CONVENTIONS}}


# --- the file ------------------------------------------------------------------------------------


@needs_graphviz
def test_every_graph_node_has_exactly_one_element_with_its_data_node(step4):
    marked = [g.get("data-node") for g in svg_of(step4["page"]).iter() if g.get("data-node")]
    assert sorted(marked) == sorted(step4["graph"].nodes)


@needs_graphviz
def test_every_graph_edge_has_an_element_naming_its_ends(step4):
    ends = [(g.get("data-from"), g.get("data-to")) for g in svg_of(step4["page"]).iter() if g.get("data-from")]
    assert sorted(ends) == sorted(step4["graph"].edges)


@needs_graphviz
def test_the_page_fetches_nothing(step4):
    text = step4["page"]
    assert not re.search(r"\b(src|href)\s*=", text)  # no script, style sheet, image or link to load
    assert "<link" not in text and "url(" not in text and "@import" not in text and "fetch(" not in text


@needs_graphviz
def test_the_page_carries_the_packages_style_sheet_and_script(step4):
    text = step4["page"]
    assert text[text.index("<style>") + len("<style>\n"):text.index("</style>")] == PAGE_FILES["page.css"]
    script = text.rindex("<script>") + len("<script>\n")
    assert text[script:text.index("</script>", script)] == PAGE_FILES["page.js"]
    layout = text.rindex("<script>", 0, script - len("<script>\n")) + len("<script>")
    assert text[layout:text.index("</script>", layout)] == PAGE_FILES["flow_layout.js"]



def test_the_built_wheel_carries_the_pages_files_and_the_installed_package_reads_them(tmp_path):
    """pip builds the wheel offline from a copy of the sources (setuptools, the build backend, from
    this environment); the package unpacked from it reads its own copies with importlib.resources."""
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools (the build backend)")
    root, source = Path(__file__).parents[1], tmp_path / "source"
    for name in ("msdnet", "msdprof"):
        shutil.copytree(root / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-index",
                            "--no-build-isolation", "--disable-pip-version-check", "-w", str(tmp_path / "dist")],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("msdprof-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "installed")
        carried = {name: archive.read(f"msdprof/render/page/{name}").decode("utf-8") for name in PAGE_FILES}
    assert carried == PAGE_FILES
    read = subprocess.run([sys.executable, "-c", "import json; from msdprof.render import interactive as i; "
                           "from msdprof.render import drawing as d; "
                           "print(json.dumps([i.__file__, *map(d.page_file, ('page.css', 'page.js', 'flow_layout.js'))]))"],
                          capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "installed")})
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout) == [str(tmp_path / "installed" / "msdprof" / "render" / "interactive.py"),
                                       *PAGE_FILES.values()]


@needs_graphviz
def test_the_same_network_gives_the_same_bytes(step4):
    assert network_page(PRESET) == step4["page"]


@needs_graphviz
def test_the_panel_data_holds_the_exit_costs_figures_in_every_convention(step4):
    data = data_of(step4["page"])
    for convention, costs in step4["costs"].items():
        for shown, e in zip(data["exits"], costs):
            figures = shown["figures"][convention]
            assert [(figures[n]["ops"], figures[n]["params"]) for n in ("eager", "lazy", "direct")] == [
                (e.macs, e.params), (e.lazy_macs, e.lazy_params), (e.direct_macs, e.direct_params)]


@pytest.mark.parametrize("name", ["cifar10-anytime", "imagenet-step7"])
def test_what_lazy_defers_is_the_eager_cost_less_the_lazy_cost(name):
    graphs = {c: layout_graph(name, convention=c) for c in CONVENTIONS}
    costs = {c: exit_costs(name, convention=c) for c in CONVENTIONS}
    exits = page_data(graphs, costs)["exits"]
    for convention in CONVENTIONS:
        for shown, e in zip(exits, costs[convention]):
            deferred = shown["deferred_cost"][convention]
            assert (deferred["ops"], deferred["params"]) == (e.macs - e.lazy_macs, e.params - e.lazy_params)


def test_exit_1_of_the_default_recipe_needs_all_but_the_three_maps_lazy_defers():
    graphs = {"msdnet": layout_graph("cifar10-anytime")}
    first = page_data(graphs, {"msdnet": exit_costs("cifar10-anytime")})["exits"][0]
    # The README: s0/l3, s0/l4 and s1/l4 only feed later exits (block 1 computes 15 maps).
    assert (first["maps_needed"], first["maps_computed"], first["deferred_maps"]) == (12, 15, 3)
    assert first["maps_needed"] == len(nx.ancestors(graphs["msdnet"], "exit1"))


def test_an_msdnet_nodes_place_is_given_in_the_pictures_words():
    """The search finds a box by these: the column's header (``layer N``, ``stem`` for layer 0,
    ``transition``), the row's ``scale N`` label and the band's ``block N`` (drawing.graph_source)."""
    nodes = page_data({"msdnet": layout_graph(PRESET)}, {"msdnet": exit_costs(PRESET)})["nodes"]
    assert {n: nodes[n]["where"] for n in ("s1/l4", "s0/l0", "t6/s1", "exit1")} == {
        "s1/l4": "layer 4 · scale 1 · block 1", "s0/l0": "stem · scale 0 · block 1",
        "t6/s1": "transition · scale 1 · block 2", "exit1": "exit 1 · block 1"}


def test_a_dataflow_graphs_nodes_have_no_place_words():
    from early_exit_models import BranchyDict

    assert all("where" not in d for d in data_of(network_page(BranchyDict().eval(), input_size=16))["nodes"].values())


@needs_graphviz
def test_imagenet_step7_page_is_under_2_mb():
    assert len(network_page("imagenet-step7").encode("utf-8")) < 2 * 1024 * 1024


def test_costs_of_another_network_are_refused():
    with pytest.raises(ValueError, match=r"the graph's exits \[1, 2, 3, 4, 5\] are not those of"):
        page_data({"msdnet": layout_graph(PRESET)}, {"msdnet": exit_costs("cifar10-batch")})


# --- any early-exit graph: ids that are not s/l ids -------------------------------------------------

# A trunk with two branches, drawn left to right by `dot`: ids are module names, shapes are tuples.
TOY_NODES = {  # id: (kind, macs, params, shape, exit)
    "stem.conv": ("module", 1000, 10, (8, 16, 16), None),
    "trunk.0": ("module", 2000, 20, (8, 16, 16), None),
    "side.0 'odd' <id>": ("module", 300, 3, (4, 16, 16), None),
    "head_a": ("classifier", 50, 5, (10,), 1),
    "trunk.1": ("module", 4000, 40, (16, 8, 8), None),
    "head_b": ("classifier", 60, 6, (10,), 2),
}
TOY_EDGES = [("stem.conv", "trunk.0"), ("trunk.0", "head_a"), ("stem.conv", "side.0 'odd' <id>"),
             ("trunk.0", "trunk.1"), ("trunk.1", "head_b")]


def toy_page() -> tuple[str, nx.DiGraph]:
    graph = nx.DiGraph()
    for node, (kind, macs, params, shape, exit) in TOY_NODES.items():
        graph.add_node(node, kind=kind, macs=macs, params=params, shape=shape,
                       **({"exit": exit} if exit else {}))
    graph.add_edges_from(TOY_EDGES)
    dot = graphviz.Digraph(graph_attr={"rankdir": "LR"})
    for node in graph:
        dot.node(node)
    for tail, head in graph.edges:
        dot.edge(tail, head)
    svg = graphviz.Source(dot.source, engine="dot").pipe(format="svg")
    # Eager = everything run so far; lazy = what the exits read (side.0 feeds no exit); by hand:
    eager = [(1000 + 2000 + 300 + 50, 38), (1000 + 2000 + 300 + 50 + 4000 + 60, 84)]
    lazy = [(1000 + 2000 + 50, 35), (1000 + 2000 + 50 + 4000 + 60, 81)]
    direct = [(3050, 35), (7060, 76)]
    exits = tuple(ExitCost(k, k, *eager[k - 1], 0, 0, 0, 0, *direct[k - 1], *lazy[k - 1]) for k in (1, 2))
    costs = ExitCosts(Options(), "macs", (16, 16), exits)
    return page({"macs": graph}, {"macs": costs}, title="toy", svg=svg), graph


@needs_graphviz
def test_a_graph_with_other_ids_gets_the_same_page():
    text, graph = toy_page()
    assert sorted(g.get("data-node") for g in svg_of(text).iter() if g.get("data-node")) == sorted(graph)
    second = data_of(text)["exits"][1]
    assert second["node"] == "head_b" and second["deferred_maps"] == 1
    assert (second["maps_needed"], second["maps_computed"]) == (3, 4)
    assert second["deferred_cost"]["macs"]["ops"] == 300 == second["figures"]["macs"]["eager"]["ops"] - \
        second["figures"]["macs"]["lazy"]["ops"]
    assert data_of(text)["nodes"]["trunk.1"]["what"] == "module 16×8×8"


# --- the command line and the report ---------------------------------------------------------------


@needs_graphviz
def test_graph_writes_the_page_for_an_html_output(capsys, tmp_path, step4):
    code, out, err = run(capsys, "graph", "--preset", PRESET, "-o", str(tmp_path / "layout.html"))
    assert (code, out, err) == (0, "", f"msdprof graph: wrote {tmp_path / 'layout.html'}\n")
    text = (tmp_path / "layout.html").read_text()
    assert text == step4["page"]
    assert "<title>MSDNet imagenet-step4: what each exit needs and costs</title>" in text


def test_a_models_page_is_headed_by_its_factory_with_the_whole_spec_as_tooltip(capsys, tmp_path):
    # issue 33 item 8: the heading carried the whole path and pushed the header onto 2-3 lines
    spec = "examples/early_exit_models.py:SDNResNet56"
    code, _, err = run(capsys, "graph", "--model", spec, "--input-size", "32", "-o", str(tmp_path / "p.html"))
    assert code == 0, err
    text = (tmp_path / "p.html").read_text()
    assert "<title>SDNResNet56 (SDNResNet): what each exit needs and costs</title>" in text
    assert f'<h1 title="{spec}">SDNResNet56 (SDNResNet): what each exit needs and costs</h1>' in text


@needs_graphviz
def test_graph_convention_picks_the_convention_shown_first(capsys, tmp_path):
    code, _, err = run(capsys, "graph", "--convention", "flops", "-o", str(tmp_path / "layout.html"))
    assert code == 0, err
    assert data_of((tmp_path / "layout.html").read_text())["initial"] == "flops"


def test_an_html_page_without_graphviz_is_refused_before_writing(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(drawing.shutil, "which", lambda program: None)
    code, _, err = run(capsys, "graph", "-o", str(tmp_path / "layout.html"))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"msdprof: error: --output {tmp_path / 'layout.html'}: drawing .html needs "
                          "Graphviz's 'neato' program")
    assert list(tmp_path.iterdir()) == []


def test_write_graph_sends_html_to_the_page_writer(tmp_path):
    with pytest.raises(ValueError, match="use msdprof.render.interactive.write_page"):
        drawing.write_graph(layout_graph(), tmp_path / "layout.html")


@needs_graphviz
def test_an_html_report_shows_the_interactive_layout_in_place(capsys, tmp_path):
    code, _, err = run(capsys, "report", "--preset", "cifar100-batch", "-o", str(tmp_path / "r.html"))
    assert code == 0, err
    files = [picture(tmp_path, n) for n in ("r-cost.svg", "r-layout.html", "r-layout.svg")]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*(p.name for p in files), "r.html"])
    report = (tmp_path / "r.html").read_text()
    layout = report[report.index(">Layout</h2>"):report.index(">Exact counts</h2>")]
    assert f'<iframe src="{files[1].name}" title="interactive layout of cifar100-batch"' in layout
    assert files[1].read_text() == network_page("cifar100-batch")


# --- in a browser ----------------------------------------------------------------------------------


@pytest.fixture
def opened(open_tab, tmp_path):
    """open(text): a browser tab on ``text`` written to a file, the whole graph in view."""
    count = iter(range(1000))

    def open_page(text: str):
        path = tmp_path / f"page{next(count)}.html"
        path.write_text(text, encoding="utf-8")
        tab = open_tab(path, 1400, 800)
        tab.click('#zoom [data-zoom="fit"]')  # every node in view
        return tab

    return open_page


def marked(tab, mark: str) -> set[str]:
    return set(tab.eval_on_selector_all(f"svg .{mark}[data-node]", "els => els.map(e => e.dataset.node)"))


def panel_values(tab) -> dict[str, tuple[int, str]]:
    return {field: (int(value), text) for field, value, text in tab.eval_on_selector_all(
        "#panel [data-field][data-value]",
        "els => els.map(e => [e.dataset.field, e.dataset.value, e.textContent])")}


@needs_graphviz
def test_clicking_an_exit_marks_exactly_its_ancestors_and_selects_it(opened, step4):
    tab = opened(step4["page"])
    graph = step4["graph"]
    for k in range(1, 6):
        tab.click(f'[data-node="exit{k}"]')
        assert marked(tab, "selected") == {f"exit{k}"}
        assert marked(tab, "ancestor") == nx.ancestors(graph, f"exit{k}")


@needs_graphviz
def test_the_panel_shows_exit_costs_figures_in_each_convention(opened, step4):
    tab = opened(step4["page"])
    for convention, costs in step4["costs"].items():
        tab.check(f'#conventions input[value="{convention}"]')
        for e in costs:
            tab.click(f'[data-node="exit{e.exit}"]')
            shown = panel_values(tab)
            expected = {"eager-ops": e.macs, "eager-params": e.params, "lazy-ops": e.lazy_macs,
                        "lazy-params": e.lazy_params, "direct-ops": e.direct_macs,
                        "direct-params": e.direct_params, "deferred-ops": e.macs - e.lazy_macs,
                        "deferred-params": e.params - e.lazy_params}
            assert {f: shown[f][0] for f in expected} == expected
            unit = {"msdnet": "ops", "macs": "MACs", "flops": "FLOPs"}[convention]
            assert shown["lazy-ops"][1] == f"{format_count(e.lazy_macs)} {unit}"
            assert shown["eager-params"][1] == f"{format_count(e.params)} params"
            # what it needs, of the maps computed so far: its non-exit ancestors
            graph = step4["graph"]
            needed = {n for n in nx.ancestors(graph, f"exit{e.exit}") if graph.nodes[n]["kind"] != "classifier"}
            assert shown["maps-needed"][0] == len(needed)


@needs_graphviz
def test_the_issues_example_reads_lazy_against_eager(opened, step4):
    tab = opened(step4["page"])
    tab.click('[data-node="exit2"]')
    second = step4["costs"]["msdnet"][1]
    assert tab.text_content('[data-field="headline"]').startswith(
        f"{format_count(second.lazy_macs)} ops lazy vs {format_count(second.macs)} ops eager")


@needs_graphviz
def test_hovering_a_map_shows_its_shape_operations_and_parameters(opened, step4):
    tab = opened(step4["page"])
    tab.check('#conventions input[value="macs"]')
    tab.hover('[data-node="s1/l4"]')
    d = layout_graph(PRESET, convention="macs").nodes["s1/l4"]
    assert tab.is_visible("#tooltip")
    assert tab.inner_text("#tooltip").split("\n") == [
        "s1/l4", f"map {d['channels']}×{d['height']}×{d['width']}",
        f"{format_count(d['macs'])} MACs, {format_count(d['params'])} params"]


@needs_graphviz
def test_clicking_the_background_clears_the_marks(opened, step4):
    tab = opened(step4["page"])
    tab.click('[data-node="exit3"]')
    box = tab.locator("#viewport").bounding_box()
    tab.mouse.click(box["x"] + 5, box["y"] + box["height"] - 5)  # a corner: no node there
    assert marked(tab, "selected") == marked(tab, "ancestor") == set()
    assert tab.text_content("#panel h2") == "Click an exit"


@needs_graphviz
def test_the_wheel_zooms_and_a_drag_pans_without_selecting(opened, step4):
    tab = opened(step4["page"])

    def view():
        return [float(v) for v in tab.get_attribute("#layout", "viewBox").split()]

    box = tab.locator("#viewport").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = view()
    tab.mouse.move(x, y)
    tab.mouse.wheel(0, -400)
    zoomed = view()
    assert zoomed[2] < before[2] / 1.5 and zoomed[3] < before[3] / 1.5
    tab.mouse.down()
    tab.mouse.move(x + 200, y, steps=4)
    tab.mouse.up()
    panned = view()
    assert panned[0] < zoomed[0] and panned[2:] == zoomed[2:]
    assert marked(tab, "selected") == set()


@needs_graphviz
def test_a_graph_with_other_ids_behaves_the_same_in_the_browser(opened):
    text, graph = toy_page()
    tab = opened(text)
    tab.click('[data-node="head_b"]')
    assert marked(tab, "ancestor") == nx.ancestors(graph, "head_b")
    assert marked(tab, "deferred") == {"side.0 'odd' <id>"}
    assert panel_values(tab)["lazy-ops"] == (7110, "7.11 K MACs")


#: The lines the text of an element wraps onto in the page.
TEXT_LINES = """selector => { const range = document.createRange();
    range.selectNodeContents(document.querySelector(selector));
    return new Set(Array.from(range.getClientRects(), r => Math.round(r.top))).size; }"""


def test_a_models_heading_keeps_to_one_line_at_800_px_whatever_its_path(open_tab, tmp_path):
    # issue 33 item 8: a --model path in the heading wrapped it onto 2-3 lines
    from early_exit_models import SDNResNet56

    spec = "/home/researcher/projects/early-exit-networks/examples/early_exit_models.py:SDNResNet56"
    path = tmp_path / "p.html"
    path.write_text(network_page(SDNResNet56().eval(), input_size=32, name=spec), encoding="utf-8")
    tab = open_tab(path, 800, 600)
    assert tab.evaluate(TEXT_LINES, "header h1") == 1
    assert tab.get_attribute("header h1", "title") == spec  # the whole spec, as a tooltip


def test_the_page_of_any_early_exit_model_holds_its_dataflow_graph():
    from early_exit_models import BranchyDict

    from msdprof.render.interactive import network_page

    model = BranchyDict().eval()
    html_text = network_page(model, input_size=16, name="models.py:branchy")
    graph = layout_graph(model, input_size=16)
    data = data_of(html_text)
    assert data["order"] == list(graph) and sorted(map(tuple, data["edges"])) == sorted(
        (data["order"].index(a), data["order"].index(b)) for a, b in graph.edges)
    # issue 33 item 8: the heading is the factory's name (and the class it built), the spec its tooltip
    assert '<h1 title="models.py:branchy">branchy (BranchyDict): what each exit needs and costs</h1>' in html_text
