"""The scale x layer connectivity graph (issue 4): nodes from the layer plan, checked against the
tensors the model produces; costs that add up to ``exit_costs``; edges that are the true dataflow;
the drawing and the files ``msdprof graph`` writes."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter

import networkx as nx
import pytest
import torch

from msdnet import PRESETS, OptionError, Options, build_model, build_plan, resolve
from msdprof import exit_costs, layout_graph
from msdprof.core.counting import CONVENTIONS
from msdprof.render.drawing import COLUMN, ROW, render, to_dot, to_json, write_graph
from msdprof.analysis.graph import boxes_at, default_depth, fold_graph, node_id
from msdprof.render.interactive import network_page
from cli_run import run

HAS_GRAPHVIZ = shutil.which("neato") is not None
needs_graphviz = pytest.mark.skipif(not HAS_GRAPHVIZ, reason="Graphviz is not installed")

#: Small networks a real CPU forward pass runs in milliseconds: both prune rules, transitions.
SMALL = {
    "prune-max": Options(nBlocks=3, step=2, base=2, nChannels=8, growthRate=4),
    "prune-min": Options(nBlocks=3, step=2, base=2, nChannels=8, growthRate=4, prune="min"),
    "lin-grow": Options(nBlocks=3, stepmode="lin_grow", step=1, base=2, nChannels=8, growthRate=4),
}
PRESETS_BOTH_PRUNES = [(name, prune) for name in PRESETS for prune in ("max", "min")]


@functools.lru_cache(maxsize=None)
def small_model(small: str):
    """The real CPU model of ``SMALL[small]`` in eval mode (a forward pass changes nothing)."""
    torch.manual_seed(0)
    return build_model(SMALL[small], device="cpu").eval()


@functools.lru_cache(maxsize=None)
def preset_graph(name: str, prune: str):
    """``layout_graph(name, prune=prune)``, built once for the tests that only read it."""
    return layout_graph(name, prune=prune)


def part_outputs(model, image) -> dict[str, torch.Tensor]:
    """What every named part of ``model`` outputs in one forward pass, by graph node id."""
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for name, part in model.named_parts():
            def keep(module, inputs, output, node=node_id(part)):
                outputs[node] = output
            handles.append(model.get_submodule(name).register_forward_hook(keep))
        logits = model(image)
    finally:
        for handle in handles:
            handle.remove()
    return outputs, logits


# --- nodes: the plan, and the model's tensors ----------------------------------------------------


@pytest.mark.parametrize("name, prune", PRESETS_BOTH_PRUNES)
def test_map_nodes_at_each_layer_are_the_scales_the_plan_keeps_alive(name, prune):
    plan = build_plan(resolve(name, prune=prune))
    graph = preset_graph(name, prune)
    maps = Counter(d["layer"] for _, d in graph.nodes(data=True) if d["kind"] == "map")
    assert maps == Counter({0: plan.nScales, **{layer.index: len(layer.out_scales) for layer in plan.layers}})
    for layer in plan.layers:
        for fmap in layer.outputs:
            d = graph.nodes[f"s{fmap.scale}/l{layer.index}"]
            assert (d["channels"], d["height"], d["width"]) == (fmap.channels, fmap.height, fmap.width)


@pytest.mark.parametrize("name, prune", PRESETS_BOTH_PRUNES)
def test_transition_and_classifier_nodes_are_the_plans(name, prune):
    plan = build_plan(resolve(name, prune=prune))
    graph = preset_graph(name, prune)
    transitions = {n for n, d in graph.nodes(data=True) if d["kind"] == "transition"}
    assert transitions == {f"t{t.after_layer}/s{s}" for t in plan.transitions for s in t.scales}
    exits = {d["exit"]: d["layer"] for _, d in graph.nodes(data=True) if d["kind"] == "classifier"}
    assert exits == {head.exit: head.layer for head in plan.heads}


def test_default_recipe_has_49_maps_3_transition_maps_and_10_exits():
    # cifar10-anytime, prune max: L = 22, interval = ceil(22/3) = 8 (SPEC §1), so layers 1-8 keep
    # 3 scales, 9-16 keep 2, 17-22 keep 1: 3 (stem) + 8*3 + 8*2 + 6*1 = 49 maps; transitions after
    # layer 9 (scales 1, 2) and layer 17 (scale 2); exits after layers 4, 6, ..., 22.
    kinds = Counter(d["kind"] for _, d in preset_graph("cifar10-anytime", "max").nodes(data=True))
    assert kinds == {"map": 49, "transition": 3, "classifier": 10}


@pytest.mark.parametrize("small", sorted(SMALL))
def test_every_node_has_the_shape_of_the_tensor_a_real_cpu_forward_produces(small):
    graph = layout_graph(SMALL[small])
    outputs, _ = part_outputs(small_model(small), torch.randn(2, 3, 32, 32))
    assert set(outputs) == set(graph.nodes)
    for node, tensor in outputs.items():
        d = graph.nodes[node]
        expected = (2, d["channels"]) if d["kind"] == "classifier" else (2, d["channels"], d["height"], d["width"])
        assert tuple(tensor.shape) == expected, node


@pytest.mark.parametrize("name, prune", PRESETS_BOTH_PRUNES)
def test_every_node_has_the_shape_of_the_tensor_the_preset_model_produces_on_meta(name, prune):
    model = build_model(resolve(name, prune=prune), device="meta")
    graph = preset_graph(name, prune)
    height, width = model.plan.input_size
    outputs, _ = part_outputs(model, torch.zeros(1, 3, height, width, device="meta"))
    assert set(outputs) == set(graph.nodes)
    for node, tensor in outputs.items():
        d = graph.nodes[node]
        expected = (1, d["channels"]) if d["kind"] == "classifier" else (1, d["channels"], d["height"], d["width"])
        assert tuple(tensor.shape) == expected, node


def test_named_parts_hold_every_module_with_parameters_exactly_once():
    model = build_model(PRESETS["imagenet-step4"], device="meta")
    prefixes = [name + "." for name, _ in model.named_parts()]
    for name, _ in model.named_parameters():
        assert sum(name.startswith(prefix) for prefix in prefixes) == 1, name


# --- costs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_node_costs_add_up_to_the_exit_costs_totals(name):
    graph, costs = preset_graph(name, PRESETS[name].prune), exit_costs(name)
    assert sum(d["macs"] for _, d in graph.nodes(data=True)) == costs.total_macs
    assert sum(d["params"] for _, d in graph.nodes(data=True)) == costs.total_params


@pytest.mark.parametrize("convention", ["macs", "flops"])
def test_node_costs_are_in_the_graphs_convention(convention):
    graph = layout_graph("cifar10-batch", convention=convention)
    assert graph.graph["convention"] == convention
    assert sum(d["macs"] for _, d in graph.nodes(data=True)) == exit_costs(
        "cifar10-batch", convention=convention).total_macs


@pytest.mark.parametrize("name", ["cifar10-anytime", "imagenet-step4"])
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_the_plan_gives_the_graph_counting_the_built_model_gives(name, convention):
    from msdnet.model import model_from
    from msdprof.analysis.graph import graph_from_model, graph_from_plan

    model = model_from(name)  # on meta: counted by the hooks, the oracle
    by_plan, by_count = graph_from_plan(model.plan, True, convention), graph_from_model(model, True, convention)
    assert list(by_plan.nodes(data=True)) == list(by_count.nodes(data=True))
    assert list(by_plan.edges(data=True)) == list(by_count.edges(data=True))


def test_an_exit_node_costs_its_head_alone():
    graph, costs = layout_graph("cifar100-anytime"), exit_costs("cifar100-anytime")
    assert [graph.nodes[f"exit{e.exit}"]["macs"] for e in costs] == [e.head_macs for e in costs]
    assert [graph.nodes[f"exit{e.exit}"]["params"] for e in costs] == [e.head_params for e in costs]


def test_a_real_cpu_model_and_the_meta_build_give_the_same_graph():
    built, planned = layout_graph(small_model("prune-min")), layout_graph(SMALL["prune-min"])
    assert dict(built.nodes(data=True)) == dict(planned.nodes(data=True))
    assert set(built.edges(data="kind")) == set(planned.edges(data="kind"))


# --- edges: the dataflow -------------------------------------------------------------------------


@pytest.mark.parametrize("small", sorted(SMALL))
def test_the_ancestors_of_an_exit_are_exactly_the_maps_its_logits_depend_on(small):
    # autograd is the ground truth: a part's output is needed by exit k iff the gradient of exit
    # k's logits reaches it.
    graph = layout_graph(SMALL[small])
    outputs, logits = part_outputs(small_model(small), torch.randn(1, 3, 32, 32))
    maps = [n for n in outputs if not n.startswith("exit")]
    for k, exit_logits in enumerate(logits, start=1):
        grads = torch.autograd.grad(exit_logits.sum(), [outputs[n] for n in maps],
                                    retain_graph=True, allow_unused=True)
        needed = {n for n, g in zip(maps, grads) if g is not None}
        assert nx.ancestors(graph, f"exit{k}") == needed, f"exit {k}"


def test_exit_1_of_the_default_recipe_does_not_need_the_fine_maps_of_its_last_layers():
    # exit 1 reads s2/l4 = f(s1/l3, s2/l3); s1/l3 = f(s0/l2, s1/l2); so s0/l3, s0/l4 and s1/l4
    # are computed in block 1 for the later exits only.
    needed = nx.ancestors(preset_graph("cifar10-anytime", "max"), "exit1")
    block_1 = {f"s{s}/l{layer}" for s in range(3) for layer in range(5)}
    assert block_1 - needed == {"s0/l3", "s0/l4", "s1/l4"}


def test_edges_of_the_default_recipe_have_the_kind_of_the_conv_they_stand_for():
    edges = {(a, b): kind for a, b, kind in preset_graph("cifar10-anytime", "max").edges(data="kind")}
    assert edges[("s0/l0", "s1/l0")] == "down"  # the stem's strided conv
    assert edges[("s0/l0", "s0/l1")] == "normal"
    assert edges[("s0/l0", "s1/l1")] == "down"
    assert edges[("s0/l8", "s1/l9")] == "down"  # layer 9 drops scale 0 (inScales 3 > outScales 2)
    assert edges[("s1/l9", "t9/s1")] == "transition"
    assert edges[("t9/s1", "s1/l10")] == "normal"
    assert edges[("t9/s1", "s2/l10")] == "down"
    assert edges[("s2/l4", "exit1")] == "classifier"
    assert set(edges.values()) == {"normal", "down", "transition", "classifier"}


@pytest.mark.parametrize("name, prune", PRESETS_BOTH_PRUNES)
def test_a_map_reads_what_its_conv_units_read(name, prune):
    plan = build_plan(resolve(name, prune=prune))
    graph = preset_graph(name, prune)
    for layer in plan.layers:
        for fmap, units in zip(layer.outputs, layer.units):
            node = f"s{fmap.scale}/l{layer.index}"
            reads = sorted((graph.nodes[a]["scale"], kind) for a, _, kind in graph.in_edges(node, data="kind"))
            assert reads == sorted((u.in_scale, u.kind) for u in units), node


def test_dense_edges_are_drawn_only_on_request():
    assert "dense" not in {kind for *_, kind in preset_graph("cifar10-anytime", "max").edges(data="kind")}
    assert "dense" in {kind for *_, kind in layout_graph(dense=True).edges(data="kind")}


def test_dense_edges_change_no_exits_ancestors():
    # a dense edge repeats what the chain of normal edges already carries
    sparse, dense = preset_graph("cifar10-anytime", "max"), layout_graph(dense=True)
    for k in range(1, 11):
        assert nx.ancestors(dense, f"exit{k}") == nx.ancestors(sparse, f"exit{k}")


def test_dense_edges_bring_every_earlier_same_scale_map_since_the_last_transition():
    graph = layout_graph(dense=True)

    def dense_into(node):
        return {a for a, _, kind in graph.in_edges(node, data="kind") if kind == "dense"}

    assert dense_into("s0/l3") == {"s0/l0", "s0/l1"}  # s0/l2 is the normal edge
    assert dense_into("s1/l10") == set()  # the transition after layer 9 restarts the concat
    assert dense_into("s1/l12") == {"t9/s1", "s1/l10"}


# --- the API -----------------------------------------------------------------------------------


def test_preset_name_options_and_keywords_give_the_same_graph():
    by_name, by_options = layout_graph("cifar10-batch"), layout_graph(PRESETS["cifar10-batch"])
    by_keywords = layout_graph(nBlocks=7, stepmode="lin_grow", step=1, base=1, nChannels=16)
    assert dict(by_name.nodes(data=True)) == dict(by_options.nodes(data=True)) == dict(by_keywords.nodes(data=True))
    assert set(by_name.edges) == set(by_options.edges) == set(by_keywords.edges)


def test_graph_attributes_name_the_options_input_size_and_convention():
    graph = layout_graph("imagenet-step4", input_size=192)
    assert graph.graph["options"] == PRESETS["imagenet-step4"].as_dict()
    assert graph.graph["input_size"] == (192, 192)
    assert graph.graph["convention"] == "msdnet"
    assert graph.graph["preset"] == "imagenet-step4"


def test_a_model_with_options_is_rejected():
    with pytest.raises(OptionError, match="drawn as built"):
        layout_graph(build_model(PRESETS["cifar10-batch"], device="meta"), nBlocks=3)


def test_an_unknown_convention_is_rejected():
    with pytest.raises(OptionError, match="did you mean 'macs'"):
        layout_graph(convention="mac")


# --- the drawing -------------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


def graph_node_titles(svg: bytes) -> list[str]:
    """The titles of the SVG groups Graphviz made for graph nodes (class exactly ``node``)."""
    root = ET.fromstring(svg)
    return [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "node"]


@needs_graphviz
@pytest.mark.parametrize("name", ["cifar10-anytime", "imagenet-step4"])
def test_svg_is_valid_xml_with_one_node_element_per_graph_node(name):
    graph = preset_graph(name, "max")
    titles = graph_node_titles(render(graph, "svg"))
    assert sorted(titles) == sorted(graph.nodes)


def svg_centres(graph, svg: bytes) -> dict[str, tuple[float, float]]:
    """Centre of each map's and transition's box in ``svg`` (SVG's y axis points down)."""
    centres = {}
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        if g.get("class") != "node":
            continue
        title = g.find(f"{SVG}title").text
        if title in graph and graph.nodes[title]["kind"] != "classifier":
            points = [tuple(map(float, p.split(","))) for p in g.find(f".//{SVG}polygon").get("points").split()]
            xs, ys = zip(*points)
            centres[title] = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)
    return centres


@needs_graphviz
def test_svg_wraps_the_grid_by_block_into_rows_of_equal_steps():
    graph = preset_graph("imagenet-step4", "max")  # 5 blocks, 24 columns: too long for one row
    centres = svg_centres(graph, render(graph, "svg"))
    rows: dict[int, list[str]] = {}  # by the y of the finest scale's row: top to bottom
    for block in range(1, 6):
        maps = [n for n in centres if graph.nodes[n]["block"] == block]
        scale_y = {graph.nodes[n]["scale"]: centres[n][1] for n in maps}
        assert all(centres[n][1] == scale_y[graph.nodes[n]["scale"]] for n in maps)  # one row a block
        rows.setdefault(round(scale_y[min(scale_y)] - ROW * min(scale_y)), []).extend(maps)
    assert len(rows) > 1
    blocks_by_row = [sorted({graph.nodes[n]["block"] for n in maps}) for _, maps in sorted(rows.items())]
    assert sum(blocks_by_row, []) == [1, 2, 3, 4, 5]  # rows follow each other in block order
    for maps in rows.values():
        ys = sorted({centres[n][1] for n in maps})
        assert {round(b - a, 2) for a, b in zip(ys, ys[1:])} <= {ROW}  # the scales ROW points apart
        xs = sorted({centres[n][0] for n in maps})
        assert {round(b - a, 2) for a, b in zip(xs, xs[1:])} == {COLUMN}  # the columns COLUMN points apart
        assert xs[0] == min(x for x, _ in centres.values())  # every row starts at the left


@needs_graphviz
@pytest.mark.parametrize("name", ["cifar10-anytime", "imagenet-step7"])
def test_a_wrapped_picture_reads_at_the_shape_of_a_screen(name):
    svg = render(layout_graph(name), "svg")
    width, height = (float(v) for v in re.search(rb'viewBox="0.00 0.00 ([\d.]+) ([\d.]+)"', svg).groups())
    assert 0.8 < width / height < 2.2, (width, height)  # one row was 3,903 x 390 pt (issue 24)


@needs_graphviz
def test_an_edge_to_the_next_row_leaves_its_row_and_enters_the_next_in_two_pieces():
    graph = preset_graph("cifar10-anytime", "max")
    centres = svg_centres(graph, render(graph, "svg"))
    crossing = [(a, b) for a, b in graph.edges if a in centres and b in centres and centres[b][0] < centres[a][0]]
    assert crossing  # the grid wrapped: some edges run from a row's end to the next row's start
    for g in ET.fromstring(render(graph, "svg")).iter(f"{SVG}g"):
        title = g.find(f"{SVG}title")
        if g.get("class") == "edge" and title is not None and tuple(title.text.split("->")) in crossing:
            assert len(g.findall(f"{SVG}path")) == 2 and len(g.findall(f"{SVG}polygon")) == 1  # one arrow


@needs_graphviz
def test_svg_is_the_same_bytes_every_time():
    assert render(layout_graph(dense=True), "svg") == render(layout_graph(dense=True), "svg")


def test_dot_source_names_every_node_with_a_pinned_position():
    graph = preset_graph("cifar10-batch", "max")
    source = to_dot(graph)
    for node in graph.nodes:
        assert re.search(rf'^\t"?{re.escape(node)}"? \[.*pos="-?[\d.]+,-?[\d.]+!"', source, re.M), node


def test_dot_is_written_without_the_graphviz_binary(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    path = write_graph(preset_graph("cifar10-anytime", "max"), tmp_path / "layout.dot")
    assert path.read_text().startswith("digraph msdnet {")


def test_svg_without_the_graphviz_binary_is_refused_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(OptionError, match=r"apt-get install graphviz\), or write \.dot"):
        write_graph(preset_graph("cifar10-anytime", "max"), tmp_path / "layout.svg")
    assert list(tmp_path.iterdir()) == []


def test_json_is_networkx_node_link_data_of_the_graph(tmp_path):
    graph = layout_graph("cifar100-batch", dense=True)
    back = nx.node_link_graph(json.loads(write_graph(graph, tmp_path / "g.json").read_text()), edges="edges")
    assert dict(back.nodes(data=True)) == dict(graph.nodes(data=True))
    assert set(back.edges(data="kind")) == set(graph.edges(data="kind"))
    assert back.graph["options"] == graph.graph["options"]


def test_graphml_reads_back_to_the_same_nodes_and_edges(tmp_path):
    graph = layout_graph("cifar100-batch")
    back = nx.read_graphml(write_graph(graph, tmp_path / "g.graphml"))
    assert dict(back.nodes(data=True)) == dict(graph.nodes(data=True))
    assert set(back.edges(data="kind")) == set(graph.edges(data="kind"))
    assert json.loads(back.graph["options"]) == graph.graph["options"]


# --- the command -------------------------------------------------------------------------------


def test_graph_json_from_the_command_line_equals_the_api(capsys, tmp_path):
    code, out, err = run(capsys, "graph", "--preset", "cifar10-batch", "--dense", "-o", str(tmp_path / "g.json"))
    assert (code, out, err) == (0, "", f"msdprof graph: wrote {tmp_path / 'g.json'}\n")
    assert (tmp_path / "g.json").read_text() == to_json(layout_graph("cifar10-batch", dense=True))


@needs_graphviz
def test_graph_writes_an_svg_of_the_default_recipe(capsys, tmp_path):
    code, _, err = run(capsys, "graph", "-o", str(tmp_path / "layout.svg"))
    assert code == 0 and err == f"msdprof graph: wrote {tmp_path / 'layout.svg'}\n"
    titles = graph_node_titles((tmp_path / "layout.svg").read_bytes())
    assert sorted(titles) == sorted(preset_graph("cifar10-anytime", "max").nodes)


BAD_OUTPUTS = [
    # (file name, text the one line must contain)
    ("layout.gif", "unknown suffix '.gif'; the file name must end in one of .svg, .png, .pdf, .dot, .json, .graphml"),
    ("missing/layout.svg", "does not exist"),
    ("existing.svg", "already exists; pass --force to replace it"),
]


@pytest.mark.parametrize("name, message", BAD_OUTPUTS, ids=[n for n, _ in BAD_OUTPUTS])
def test_a_bad_output_exits_2_with_one_line_and_writes_nothing(capsys, tmp_path, name, message):
    (tmp_path / "existing.svg").write_text("precious")
    code, out, err = run(capsys, "graph", "-o", str(tmp_path / name))
    assert code == 2 and out == ""
    assert err.startswith(f"msdprof: error: --output {tmp_path / name}: ") and err.count("\n") == 1
    assert message in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["existing.svg"]
    assert (tmp_path / "existing.svg").read_text() == "precious"


def test_an_unwritable_directory_exits_2_naming_the_target(capsys):
    code, _, err = run(capsys, "graph", "-o", "/sys/layout.dot")  # /sys is read-only, even for root
    assert code == 2 and err.startswith("msdprof: error: --output /sys/layout.dot: ") and err.count("\n") == 1


def test_graph_requires_an_output(capsys):
    code, _, err = run(capsys, "graph")
    assert code == 2 and "the following arguments are required: -o/--output" in err


def test_without_graphviz_on_the_path_svg_exits_2_saying_how_to_install_it(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()  # a PATH with no Graphviz on it
    result = subprocess.run([sys.executable, "-m", "msdprof.cli", "graph", "-o", str(tmp_path / "a.svg")],
                            capture_output=True, text=True, env={"PATH": str(empty)})
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"msdprof: error: --output {tmp_path / 'a.svg'}: drawing .svg needs "
                                    "Graphviz's 'neato' program, which is not installed: install Graphviz "
                                    "(apt-get install graphviz), or write .dot, which needs no Graphviz")
    assert not (tmp_path / "a.svg").exists()


# --- any model's graph, folded by its module tree (issue 24) ------------------------------------------


@functools.lru_cache(maxsize=None)
def sdn_graph() -> nx.DiGraph:
    """The full dataflow graph of examples' SDNResNet (2 blocks a stage) on a 32 px image."""
    from early_exit_models import SDNResNet

    return layout_graph(SDNResNet().eval(), input_size=32)


def test_each_operation_lists_the_module_calls_holding_it_outermost_first():
    graph = sdn_graph()
    assert graph.nodes["stages.1.0.conv1"]["groups"] == ["stages.1", "stages.1.0"]
    assert graph.nodes["stages.1.0.shortcut.0"]["groups"] == ["stages.1", "stages.1.0", "stages.1.0.shortcut"]
    assert graph.nodes["fc"]["groups"] == [] and graph.nodes["exit3"]["groups"] == []
    assert graph.graph["group_types"]["stages.1.0"] == "BasicBlock" and graph.graph["max_depth"] == 3


def test_a_module_called_twice_is_two_groups():
    from transformer_models import Decoder

    graph = layout_graph(Decoder(layers=4, every=2).eval(), inputs=torch.zeros(1, 4, dtype=torch.long))
    heads = sorted({g[0] for _, g in graph.nodes(data="groups") if g and g[0].startswith("head")})
    assert heads == ["head", "head#2"]


def test_depth_1_folds_the_top_level_modules_and_keeps_every_exit():
    folded = fold_graph(sdn_graph(), 1)
    assert list(folded) == ["stem", "stages.0", "internal.0", "exit1", "stages.1", "internal.1", "exit2",
                            "stages.2", "pool", "fc", "exit3"]
    assert folded.nodes["stages.1"]["type"] == "Sequential" and folded.nodes["stages.1"]["kind"] == "group"


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_a_folded_box_costs_the_sum_of_its_operations(depth):
    graph, folded = sdn_graph(), fold_graph(sdn_graph(), depth)
    for box, d in folded.nodes(data=True):
        inside = [n for n, g in graph.nodes(data="groups") if box in g] or [box]
        assert (d["macs"], d["params"], d.get("members", 1)) == (
            sum(graph.nodes[n]["macs"] for n in inside), sum(graph.nodes[n]["params"] for n in inside), len(inside))


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_every_box_holding_an_operation_an_exit_needs_is_its_ancestor(depth):
    graph, folded = sdn_graph(), fold_graph(sdn_graph(), depth)
    for k in (1, 2, 3):
        needed = nx.ancestors(graph, f"exit{k}")
        holding = {next((g for g in graph.nodes[n]["groups"][depth - 1:depth]), n) for n in needed}
        assert holding == nx.ancestors(folded, f"exit{k}")


def test_past_the_deepest_nesting_every_operation_is_a_box():
    graph = sdn_graph()
    assert list(fold_graph(graph, 4)) == list(graph) and set(fold_graph(graph, 4).edges) == set(graph.edges)


def test_the_default_depth_is_the_deepest_showing_at_most_30_boxes():
    from early_exit_models import SDNResNet56

    # from depth 3 the 6 blocks' residual sums are boxes of their own (junctions, issue 33)
    assert [boxes_at(sdn_graph(), d) for d in (1, 2, 3, 4)] == [8, 17, 49, 51]
    assert default_depth(sdn_graph()) == 2
    assert default_depth(layout_graph(SDNResNet56(), input_size=32)) == 1  # depth 2 shows 38


def test_layout_graph_folds_a_model_to_the_depth_given():
    from early_exit_models import SDNResNet

    assert to_json(layout_graph(SDNResNet().eval(), input_size=32, depth=2)) == to_json(fold_graph(sdn_graph(), 2))


@pytest.mark.parametrize("depth", [0, -1, 1.5, True])
def test_a_depth_that_is_not_a_whole_number_from_1_is_refused(depth):
    with pytest.raises(OptionError, match=r"^depth .*: must be a whole number of at least 1"):
        fold_graph(sdn_graph(), depth)


def test_an_msdnet_refuses_a_depth():
    with pytest.raises(OptionError, match="scale x layer grid"):
        layout_graph("cifar10-batch", depth=2)


def test_graphml_of_a_folded_dataflow_graph_reads_back(tmp_path):
    folded = fold_graph(sdn_graph(), 2)
    write_graph(folded, tmp_path / "g.graphml")
    back = nx.read_graphml(tmp_path / "g.graphml")
    assert list(back) == list(folded) and set(back.edges) == set(folded.edges)
    assert json.loads(back.nodes["stages.1.0"]["groups"]) == ["stages.1"]


@needs_graphviz
def test_a_folded_svg_has_one_element_per_box_and_reads_at_a_screens_shape():
    svg = render(fold_graph(sdn_graph(), 2), "svg")
    assert sorted(graph_node_titles(svg)) == sorted(fold_graph(sdn_graph(), 2))
    width, height = (float(v) for v in re.search(rb'viewBox="0.00 0.00 ([\d.]+) ([\d.]+)"', svg).groups())
    assert 0.5 < width / height < 3  # wrapped rows, not a strip


def test_graph_depth_from_the_command_line_equals_the_api(capsys, model_folder):
    folder = model_folder("from early_exit_models import SDNResNet\n")
    code, _, err = run(capsys, "graph", "--model", "models.py:SDNResNet", "--input-size", "32", "--depth", "1",
                       "-o", "g.json")
    assert code == 0, err
    from early_exit_models import SDNResNet

    expected = fold_graph(layout_graph(SDNResNet().eval(), input_size=32), 1)
    assert [n["id"] for n in json.loads((folder / "g.json").read_text())["nodes"]] == list(expected)


def test_graph_depth_without_a_model_is_one_line_naming_it(capsys, tmp_path):
    code, _, err = run(capsys, "graph", "--depth", "2", "-o", str(tmp_path / "g.json"))
    assert code == 2 and err.count("\n") == 1 and err.startswith("msdprof: error: --depth 2: needs --model")
    assert list(tmp_path.iterdir()) == []


@needs_graphviz
def test_graph_exit_opens_the_page_with_that_exit_chosen(capsys, tmp_path):
    code, _, err = run(capsys, "graph", "--exit", "4", "-o", str(tmp_path / "p.html"))
    assert (code, err) == (0, f"msdprof graph: wrote {tmp_path / 'p.html'}\n")
    text = (tmp_path / "p.html").read_text()
    assert '"exit":4,' in text and text != network_page("cifar10-anytime")


@needs_graphviz
def test_graph_exit_out_of_range_for_the_page_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "graph", "--exit", "11", "-o", str(tmp_path / "p.html"))
    assert code == 2 and err.count("\n") == 1 and err.startswith("msdprof: error: --exit 11: must be one of")
    assert list(tmp_path.iterdir()) == []


@needs_graphviz
def test_a_long_map_label_is_set_smaller_so_graphviz_draws_it_without_a_warning(capfd):
    graph = layout_graph("imagenet-step7", nChannels=512)  # "1024×28×28": 10 characters
    assert "1024×28×28" in render(graph, "svg").decode()
    assert "size too small for label" not in capfd.readouterr().err
