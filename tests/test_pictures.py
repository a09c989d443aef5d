"""The pictures tell the truth and can be read (issue 33, items 7, 10, 11 and 13): read off the
laid-out positions Graphviz itself reports (``neato -n2 -Tjson``: each box's place and size, each
label's width as Graphviz measures it, each edge's Bezier pieces) and off the page in Chromium.

- 7: a successful drawing writes nothing to stderr, and every label fits its box;
- 10: every edge of the (folded) graph is drawn, at every depth, in the files and on the page; a
  residual sum or a concatenation is a junction box its inputs enter (no edge from every block
  to every later one);
- 11: no edge passes under a box it does not join; a wrapped MSDNet row says where it goes on;
- 13: an exit's box says what reaching it costs, cumulative and lazy where fewer, the figures of
  ``exit_costs``.

Networks: the zoo's SDN ResNet-56 and ViT (tests/zoo), examples' SDN ResNet-56, ViT and decoder,
a U-Net with deep supervision (below: its heads are a 1x1 conv then ``F.interpolate``, its decoder
concatenates the encoder's maps), and the MSDNet presets.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess

import networkx as nx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from msdprof import exit_costs, layout_graph
from msdprof.analysis.graph import fold_graph
from msdprof.core.units import format_count
from msdprof.render import drawing
from msdprof.render.glyphs import ADVANCE, text_width
from msdprof.render.interactive import network_page
from cli_run import run
from conftest import EXAMPLES
from zoo import ENTRIES

needs_graphviz = pytest.mark.skipif(shutil.which(drawing.GRAPHVIZ_PROGRAM) is None,
                                    reason="Graphviz is not installed")


class UNet(nn.Module):
    """A U-Net with deep supervision: three encoder levels, a bottom, three decoder levels each
    concatenating its encoder level's map (the skip); an exit after each decoder level, a 1x1 conv
    then ``F.interpolate`` to the input's size."""

    def __init__(self, width: int = 4, classes: int = 3):
        super().__init__()
        w = width

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU())

        self.down = nn.ModuleList([block(3, w), block(w, 2 * w), block(2 * w, 4 * w)])
        self.bottom = block(4 * w, 8 * w)
        self.up = nn.ModuleList([nn.ConvTranspose2d(c, c // 2, 2, 2) for c in (8 * w, 4 * w, 2 * w)])
        self.decode = nn.ModuleList([block(c, c // 2) for c in (8 * w, 4 * w, 2 * w)])
        self.heads = nn.ModuleList([nn.Conv2d(c, classes, 1) for c in (4 * w, 2 * w, w)])

    def forward(self, x):
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        outputs = []
        for up, decode, head, skip in zip(self.up, self.decode, self.heads, reversed(skips)):
            x = decode(torch.cat([up(x), skip], dim=1))
            outputs.append(F.interpolate(head(x), size=skips[0].shape[-2:]))
        return outputs


def _models() -> dict:
    from early_exit_models import SDNResNet56
    from transformer_models import Decoder, ViT

    made = {name: (lambda e=ENTRIES[name]: (e.subject(e.build()).eval(), {"inputs": e.inputs("cpu")}))
            for name in ("sdn-resnet56", "vit", "imta-msdnet")}
    made["unet"] = lambda: (UNet().eval(), {"input_size": 16})
    made["examples-sdn-resnet56"] = lambda: (SDNResNet56().eval(), {"input_size": 32})
    made["examples-vit12"] = lambda: (ViT().eval(), {"input_size": 32})
    made["examples-decoder32"] = lambda: (Decoder().eval(), {"inputs": torch.zeros(1, 8, dtype=torch.long)})
    return made


MODELS = _models()
#: Every depth of these is drawn in every test of a depth (the examples' are larger: their default).
SMALL = ["sdn-resnet56", "vit", "imta-msdnet", "unet"]


@functools.lru_cache(maxsize=None)
def model_graph(name: str, convention: str = "msdnet") -> nx.DiGraph:
    model, given = MODELS[name]()
    return layout_graph(model, convention=convention, **given)


def depths(names: list[str]) -> list[tuple[str, int]]:
    return [(name, depth) for name in names for depth in range(1, model_graph(name).graph["max_depth"] + 2)]


@functools.lru_cache(maxsize=None)
def laid_out(graph_key: tuple) -> dict:
    """What Graphviz reports of the picture of the graph ``graph_key`` names (see :func:`graph_of`)."""
    return json.loads(subprocess.run([drawing.GRAPHVIZ_PROGRAM, "-n2", "-Tjson"], check=True, capture_output=True,
                                     input=drawing.to_dot(graph_of(graph_key)).encode()).stdout)


def graph_of(key: tuple) -> nx.DiGraph:
    """``("model", name, convention, depth)`` or ``("msdnet", preset, convention, dense)``."""
    if key[0] == "model":
        _, name, convention, depth = key
        return fold_graph(model_graph(name, convention), depth)
    _, preset, convention, dense = key
    return layout_graph(preset, convention=convention, dense=dense)


def boxes(data: dict) -> dict[str, tuple[float, float, float, float]]:
    """Each graph node's box (left, bottom, right, top), in points (decorations left out)."""
    found = {}
    for o in data["objects"]:
        if o["name"].startswith("_") or "pos" not in o or o.get("shape") == "plaintext":
            continue
        x, y = map(float, o["pos"].split(","))
        w, h = float(o["width"]) * 36, float(o["height"]) * 36
        found[o["name"]] = (x - w, y - h, x + w, y + h)
    return found


def bezier_points(points: list, steps: int = 32) -> list[tuple[float, float]]:
    out = []
    for i in range(0, len(points) - 3, 3):
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = points[i:i + 4]
        for s in range(steps + 1):
            t = s / steps
            a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3
            out.append((a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3))
    return out


def drawn_edges(data: dict) -> list[tuple[str, str, list[tuple[float, float]]]]:
    """Each drawn edge of a graph node to another: (tail, head, the points of its line)."""
    names = {o["_gvid"]: o["name"] for o in data["objects"]}
    found = []
    for e in data.get("edges", []):
        tail, head = names[e["tail"]], names[e["head"]]
        if not tail.startswith("_"):
            line = [p for op in e["_draw_"] if op["op"] == "b" for p in bezier_points(op["points"])]
            found.append((tail, head, line))
    return found


def passing_under(data: dict, margin: float = 1.0) -> list[tuple[str, str, str]]:
    """(tail, head, box) for each edge that passes under a box it does not join (``margin`` points in)."""
    placed = boxes(data)
    found = []
    for tail, head, line in drawn_edges(data):
        for node, (x0, y0, x1, y1) in placed.items():
            if node not in (tail, head) and any(x0 + margin < x < x1 - margin and y0 + margin < y < y1 - margin
                                                for x, y in line):
                found.append((tail, head, node))
    return found


MSDNET_PICTURES = [("msdnet", preset, convention, dense) for preset in ("cifar10-anytime", "imagenet-step7")
                   for convention in ("msdnet", "macs", "flops") for dense in (False, True)]


def model_pictures(names: list[str], conventions=("msdnet", "macs", "flops")) -> list[tuple]:
    return [("model", name, convention, depth) for name, depth in depths(names) for convention in conventions]


# --- item 7: no warning, every label fits -------------------------------------------------------------


@needs_graphviz
def test_the_readmes_dataflow_picture_is_drawn_with_nothing_on_stderr(capfd, tmp_path, monkeypatch):
    monkeypatch.chdir(EXAMPLES.parent)  # Graphviz warned "node 'stages.1.0' ... size too small for label"
    code, out, err = run(capfd, "graph", "--model", "examples/early_exit_models.py:SDNResNet56", "--input-size",
                         "32", "--depth", "2", "-o", str(tmp_path / "sdn56.png"))
    assert (code, out, err) == (0, "", f"msdprof graph: wrote {tmp_path / 'sdn56.png'}\n")


@needs_graphviz
@pytest.mark.parametrize("key", MSDNET_PICTURES + model_pictures(SMALL), ids=str)
def test_every_label_fits_its_box_as_graphviz_measures_it(key):
    data = laid_out(key)
    placed = boxes(data)
    for o in data["objects"]:
        if o["name"] in placed:
            widest = max((op["width"] for op in o.get("_ldraw_", []) if op["op"] == "T"), default=0.0)
            left, _, right, _ = placed[o["name"]]
            # sized with a pad each side; Graphviz's widths are rounded up to its pixel grid
            assert widest <= right - left - drawing.FLOW_PAD, (o["name"], widest, right - left)


def test_a_long_type_name_is_drawn_whole_in_a_wider_box():
    class TransformerEncoderLayerWithExits(nn.Linear):  # 32 characters: it was cut at 21 ("...La…")
        pass

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = TransformerEncoderLayerWithExits(4, 4)

        def forward(self, x):
            return [self.layer(x)]

    source = drawing.to_dot(layout_graph(Model(), inputs=torch.zeros(1, 4)))
    assert "\\nTransformerEncoderLayerWithExits\\n" in source and "…" not in source
    width = text_width("TransformerEncoderLayerWithExits", drawing.FLOW_FONT) + 2 * drawing.FLOW_PAD
    assert f'width={drawing._num(width / 72)}' not in source  # sized from its text (rounded up), not cut
    assert drawing.flow_box_width([["TransformerEncoderLayerWithExits"]]) >= width


def test_a_label_past_the_widest_box_is_set_smaller_to_fit():
    name = "m" * 40  # 40 ems at 12 points: 470 points, past FLOW_WIDEST
    assert drawing.flow_box_width([[name]]) == drawing.FLOW_WIDEST
    size = drawing.fitting_size([name], drawing.FLOW_FONT, drawing.FLOW_WIDEST - 2 * drawing.FLOW_PAD)
    assert text_width(name, size) <= drawing.FLOW_WIDEST - 2 * drawing.FLOW_PAD < text_width(name, size + 0.01)


@pytest.mark.parametrize("font", ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                                  "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"])
def test_no_character_is_drawn_wider_than_the_width_table_says(font):
    tt = pytest.importorskip("fontTools.ttLib", reason="fontTools reads the fonts' advances")
    if not shutil.os.path.exists(font):
        pytest.skip(f"{font} is not installed")
    face = tt.TTFont(font)
    cmap, advances, em = face.getBestCmap(), face["hmtx"], face["head"].unitsPerEm
    for char, width in ADVANCE.items():
        if ord(char) in cmap:
            assert advances[cmap[ord(char)]][0] / em <= width, char


# --- item 10: every edge drawn --------------------------------------------------------------------------


@needs_graphviz
@pytest.mark.parametrize("key", model_pictures(SMALL, ("msdnet",)) + model_pictures(
    ["examples-sdn-resnet56", "examples-vit12"], ("msdnet",)), ids=str)
def test_every_edge_of_the_folded_graph_is_drawn_at_every_depth(key):
    drawn = sorted((tail, head) for tail, head, _ in drawn_edges(laid_out(key)))
    assert drawn == sorted(graph_of(key).edges)


def test_a_resnets_residual_sum_is_a_junction_its_skip_enters():
    graph = model_graph("examples-sdn-resnet56")  # out = F.relu(bn2(...) + shortcut(x))
    assert graph.nodes["stages.0.1/add"]["type"] == "add" and graph.nodes["stages.0.1/add"]["macs"] == 0
    assert set(graph.predecessors("stages.0.1/add")) == {"stages.0.1.bn2", "stages.0.0/add"}  # the skip
    assert set(graph.successors("stages.0.1/add")) == {"stages.0.2.conv1", "stages.0.2/add"}


def test_a_residual_stream_is_a_chain_of_junctions_not_an_edge_from_every_block():
    folded = fold_graph(model_graph("examples-decoder32"), 1)  # 688 edges between its 49 boxes before
    layers = [n for n in folded if n.startswith("layers.")]
    assert [list(folded.predecessors(n)) for n in layers[1:]] == [[n] for n in layers[:-1]]
    assert folded.number_of_edges() == folded.number_of_nodes() - 1  # a tree: embedding, layers, heads


def test_the_unets_three_skip_concatenations_are_junctions_the_encoder_enters():
    graph = model_graph("unet")
    cats = [n for n, d in graph.nodes(data=True) if d.get("type") == "cat"]
    assert [sorted(graph.predecessors(n)) for n in cats] == [
        ["down.2.1", "up.0"], ["down.1.1", "up.1"], ["down.0.1", "up.2"]]


@pytest.mark.parametrize("name", SMALL)
def test_junctions_change_no_exits_needs_and_cost_nothing(name):
    graph = model_graph(name)
    model, given = MODELS[name]()
    costs = exit_costs(model, convention="msdnet", **given)  # model_graph's convention
    for e in costs.exits:  # the lazy figure is the cost of the union of what exits 1..k read
        needed = set().union(*(nx.ancestors(graph, f"exit{k}") for k in range(1, e.exit + 1)))
        assert sum(graph.nodes[n]["macs"] for n in needed) == e.lazy_macs


# --- item 11: no edge under a box ------------------------------------------------------------------------


@needs_graphviz
@pytest.mark.parametrize("key", MSDNET_PICTURES + model_pictures(SMALL, ("msdnet",)) + model_pictures(
    ["examples-sdn-resnet56", "examples-vit12", "examples-decoder32"], ("msdnet",)), ids=str)
def test_no_edge_passes_under_a_box_it_does_not_join(key):
    assert passing_under(laid_out(key)) == []


@needs_graphviz
def test_the_check_finds_an_edge_drawn_under_a_box():
    # The check itself: an edge drawn straight from a tail to a head two boxes down its column.
    data = {"objects": [{"_gvid": i, "name": n, "pos": f"0,{-60 * i}", "width": "2", "height": "0.5"}
                        for i, n in enumerate(["a", "b", "c"])],
            "edges": [{"tail": 0, "head": 2, "_draw_": [{"op": "b", "points": [[0, 0], [0, -40], [0, -80], [0, -120]]}]}]}
    assert passing_under(data) == [("a", "c", "b")]


@needs_graphviz
def test_a_wrapped_msdnet_row_says_where_it_goes_on_and_the_next_where_it_comes_from():
    svg = drawing.render(layout_graph("cifar10-anytime"), "svg").decode()  # three rows
    assert svg.count(">continues</text>") == 2 and ">in row 2</text>" in svg and ">in row 3</text>" in svg
    assert ">from row 1</text>" in svg and ">from row 2</text>" in svg


# --- item 13: an exit's box says what it costs -----------------------------------------------------------


@pytest.mark.parametrize("convention", ["msdnet", "macs", "flops"])
def test_an_msdnet_graphs_exits_carry_the_cumulative_and_lazy_figures_of_exit_costs(convention):
    for preset in ("cifar10-anytime", "imagenet-step4"):
        graph, costs = layout_graph(preset, convention=convention), exit_costs(preset, convention=convention)
        assert [(graph.nodes[f"exit{e.exit}"]["cumulative_macs"], graph.nodes[f"exit{e.exit}"]["lazy_macs"])
                for e in costs.exits] == [(e.macs, e.lazy_macs) for e in costs.exits]


@pytest.mark.parametrize("name", SMALL)
def test_a_models_graph_exits_carry_the_cumulative_and_lazy_figures_of_exit_costs(name):
    model, given = MODELS[name]()
    for convention in ("msdnet", "flops"):
        graph, costs = model_graph(name, convention), exit_costs(model, convention=convention, **given)
        assert [(graph.nodes[f"exit{e.exit}"]["cumulative_macs"], graph.nodes[f"exit{e.exit}"]["lazy_macs"])
                for e in costs.exits] == [(e.macs, e.lazy_macs) for e in costs.exits]


def exit_texts(source: str, node: str) -> str:
    line = next(line for line in source.splitlines() if line.startswith(f"\t{node} [label="))
    return line.split('label="', 1)[1].split('"', 1)[0]


def test_an_msdnet_exit_box_says_its_cumulative_cost_and_its_lazy_one_where_fewer():
    source, costs = drawing.to_dot(layout_graph("cifar10-anytime")), exit_costs("cifar10-anytime")
    first, eighth = costs.exits[0], costs.exits[7]  # 15.13 M and 13.38 M lazy; 99.95 M both ways
    assert exit_texts(source, "exit1") == f"exit 1\\nΣ {format_count(first.macs)}\\nlazy {format_count(first.lazy_macs)}"
    assert exit_texts(source, "exit8") == f"exit 8\\nΣ {format_count(eighth.macs)}"
    assert "Σ the cumulative ops to reach it; lazy: only what exits 1..k read" in source  # the title says so


def test_a_models_exit_box_says_its_cumulative_cost_and_its_lazy_one_where_fewer():
    model, given = MODELS["imta-msdnet"]()  # every block before any head: lazy 59,428 of 208,420 at exit 1
    source = drawing.to_dot(fold_graph(model_graph("imta-msdnet"), 1))
    costs = exit_costs(model, convention="msdnet", **given)
    for e in costs.exits:
        lazy = f"\\nlazy {format_count(e.lazy_macs)} ops" if e.lazy_macs != e.macs else ""
        assert exit_texts(source, f"exit{e.exit}").endswith(f"\\nΣ {format_count(e.macs)} ops{lazy}")
    assert costs.exits[0].lazy_macs < costs.exits[0].macs and costs.exits[2].lazy_macs == costs.exits[2].macs


# --- the page ------------------------------------------------------------------------------------------------

PAGES = {
    "cifar10-anytime": lambda: ("cifar10-anytime", {}),
    "sdn-resnet56": lambda: MODELS["sdn-resnet56"](),
    "unet": lambda: MODELS["unet"](),
    "imta-msdnet": lambda: MODELS["imta-msdnet"](),  # exits whose lazy cost is less: three lines
    "examples-vit12": lambda: MODELS["examples-vit12"](),
}


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("pages")
    made = {}
    for name, make in PAGES.items():
        subject, given = make()
        (folder / f"{name}.html").write_text(network_page(subject, **given), encoding="utf-8")
        made[name] = folder / f"{name}.html"
    return made


def page_graph(name: str) -> nx.DiGraph:
    """The graph the page of ``name`` shows first: an MSDNet's grid, or the folded dataflow graph."""
    if name == "cifar10-anytime":
        return layout_graph(name)
    from msdprof.analysis.graph import default_depth

    graph = model_graph(name)
    return fold_graph(graph, default_depth(graph))


PAGE_EDGES = "els => els.map(e => [e.dataset.from, e.dataset.to])"
#: Each node's box and each edge's line on the page, in the picture's own coordinates.
PAGE_GEOMETRY = """() => {
  const shape = g => g.querySelector("rect, polygon, path, ellipse");
  const boxes = Array.from(document.querySelectorAll("#layout [data-node]"), g => {
    const b = shape(g).getBBox(); return [g.dataset.node, b.x, b.y, b.x + b.width, b.y + b.height]; });
  const edges = Array.from(document.querySelectorAll("#layout .edge[data-from]"), g => {
    const line = g.querySelector("path"), n = line.getTotalLength(), points = [];
    for (let i = 0; i <= 200; i++) { const p = line.getPointAtLength(n * i / 200); points.push([p.x, p.y]); }
    return [g.dataset.from, g.dataset.to, points]; });
  return [boxes, edges];
}"""


@needs_graphviz
@pytest.mark.parametrize("size", [(1280, 800), (800, 600)], ids=["1280x800", "800x600"])
@pytest.mark.parametrize("name", list(PAGES))
def test_the_page_draws_every_edge_of_the_graph_it_shows(open_tab, pages, name, size):
    tab = open_tab(pages[name], *size)
    drawn = tab.eval_on_selector_all("#layout .edge[data-from]", PAGE_EDGES)
    assert sorted(map(tuple, drawn)) == sorted(page_graph(name).edges)


@needs_graphviz
@pytest.mark.parametrize("size", [(1280, 800), (800, 600)], ids=["1280x800", "800x600"])
@pytest.mark.parametrize("name", list(PAGES))
def test_no_edge_on_the_page_passes_under_a_box_it_does_not_join(open_tab, pages, name, size):
    tab = open_tab(pages[name], *size)
    placed, edges = tab.evaluate(PAGE_GEOMETRY)
    under = [(tail, head, node) for tail, head, line in edges for node, x0, y0, x1, y1 in placed
             if node not in (tail, head) and any(x0 + 1 < x < x1 - 1 and y0 + 1 < y < y1 - 1 for x, y in line)]
    assert under == []


@needs_graphviz
def test_the_pages_exit_boxes_say_what_the_exits_cost(open_tab, pages):
    tab = open_tab(pages["examples-vit12"])
    model, given = MODELS["examples-vit12"]()
    last = exit_costs(model, convention="macs", **given).exits[-1]  # a model's page opens in macs
    assert tab.text_content('#layout [data-node="exit12"]') == f"exit 12 · 10Σ {format_count(last.macs)} MACs"


@needs_graphviz
@pytest.mark.parametrize("name", ["sdn-resnet56", "unet", "imta-msdnet", "examples-vit12"])
def test_the_page_lays_out_and_routes_a_graph_as_the_drawing_does(open_tab, pages, name):
    tab = open_tab(pages[name])
    graph = page_graph(name)
    box = tab.evaluate("() => JSON.parse(document.getElementById('msdprof-data').textContent).flow.box")
    exits = {n: True for n, d in graph.nodes(data=True) if d["kind"] == "exit"}
    js = tab.evaluate("""([boxes, edges, exits, B, view]) => {
        const places = flowLayout(boxes, edges, exits, B, view);
        return [places, flowRoutes(edges, exits, places, B)]; }""",
                      [list(graph), [list(e) for e in graph.edges], exits, box, list(drawing.FLOW_VIEW)])
    places = drawing.flow_places(graph, width=box[0], exit_height=box[3])
    routes = drawing.flow_routes(graph, places)
    assert {key: js[0][key] for key in ("x", "y", "row", "at", "band", "tops", "width", "height", "columns")} == {
        key: places[key] for key in ("x", "y", "row", "at", "band", "tops", "width", "height", "columns")}
    assert js[1] == [[[list(p) for p in points], list(tip)] for points, tip in routes.values()]  # to the last bit
