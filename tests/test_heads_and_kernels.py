"""What the round-2 families showed about heads, kernels and defaults (issue 33, items 1-4).

Figures are counted by hand from the zoo models' shapes (tests/zoo/families.py, attention.py): a
Conv2d of cin -> cout with a k x k kernel on an H x W output does cin*cout*k*k*H*W multiply-adds;
a Linear of in -> out does in*out a row.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from msdprof import exit_costs
from msdprof.render.formatting import render_csv, render_json, render_table
from zoo import ENTRIES, eager_forward
from torch.utils.flop_counter import FlopCounterMode


def built(name: str):
    torch.manual_seed(0)
    return ENTRIES[name].build().eval()


def text(costs) -> str:
    return " ".join(render_table(costs, width=300).split())


# --- item 1: einsum is counted in macs and flops, listed with its amount in msdnet -----------------


def einsum_macs(model, inputs, k: int) -> int:
    """FlopCounterMode's multiply-adds of the einsums (bmm kernels) of the forward stopped at exit k."""
    with FlopCounterMode(display=False) as counter:
        eager_forward(model, inputs, k)
    return counter.get_flop_counts()["Global"].get(torch.ops.aten.bmm, 0) // 2


@pytest.mark.parametrize("convention", ["macs", "flops"])
def test_an_einsum_scan_is_counted_in_macs_and_flops_with_nothing_listed(convention):
    model, inputs = built("ssm-scan"), ENTRIES["ssm-scan"].inputs("cpu")
    costs = exit_costs(model, inputs=inputs, convention=convention)
    assert costs.unsupported == ()
    assert [e.uncounted_macs for e in costs] == [0, 0, 0]
    with FlopCounterMode(display=False) as counter:
        eager_forward(model, inputs, 1)
    assert costs[0].macs == counter.get_total_flops() // (2 if convention == "macs" else 1)


def test_in_msdnet_an_einsum_is_listed_with_the_multiply_adds_its_kernels_did():
    model, inputs = built("ssm-scan"), ENTRIES["ssm-scan"].inputs("cpu")
    costs = exit_costs(model, inputs=inputs, convention="msdnet")
    # 8 steps a block, two einsums a step: "bd,bn->bdn" is an outer product (ATen: an elementwise
    # mul, no multiply-add), "bdn,bn->bd" a bmm of (1 x 8 x 4) by (1 x 4 x 1): 32 multiply-adds
    per_exit = [einsum_macs(model, inputs, k) for k in (1, 2, 3)]
    assert per_exit == [8 * 8 * 4 * k for k in (1, 2, 3)]
    assert [dataclasses.astuple(u) for u in costs.unsupported] == [("einsum", 24, (1, 2, 3), per_exit[-1])]  # the 24 bmm ones
    assert [e.uncounted_macs for e in costs] == per_exit
    assert ("NOT COUNTED (work with no 'msdnet' rule, or that its rule missed, taken as 0, so the figures "
            "of the exits they feed are too low; 'uncounted' per exit in --format csv or json): einsum x24, "
            "768 multiply-adds by torch's formulas (feeds exits 1, 2, 3).") in text(costs)
    assert json.loads(render_json(costs))["unsupported"][0]["kernel_macs"] == per_exit[-1]
    rows = render_csv(costs).splitlines()
    column = rows[0].split(",").index("uncounted_macs")
    assert [int(row.split(",")[column]) for row in rows[1:]] == per_exit


# --- item 2: a head that ends in a functional op --------------------------------------------------


def test_a_head_of_a_1x1_conv_then_interpolate_is_both_and_direct_leaves_it_out():
    costs = exit_costs(built("unet-deep"), inputs=ENTRIES["unet-deep"].inputs("cpu"), convention="macs")
    # the 1x1 heads on the 4x4, 8x8 and 16x16 maps of a 16-pixel input, 2 classes
    assert [e.head_macs for e in costs] == [32 * 2 * 4 * 4, 16 * 2 * 8 * 8, 8 * 2 * 16 * 16]
    assert [e.head_params for e in costs] == [32 * 2 + 2, 16 * 2 + 2, 8 * 2 + 2]
    assert [e.direct_macs for e in costs] == [
        costs[0].macs, costs[1].macs - costs[0].head_macs, costs[2].macs - costs[0].head_macs - costs[1].head_macs]
    assert [e.block_macs + e.head_macs for e in costs] == [
        costs[0].macs, costs[1].macs - costs[0].macs, costs[2].macs - costs[1].macs]


def test_an_msdnets_heads_are_its_classifiers_still():
    costs = exit_costs("cifar10-anytime")
    from msdnet import build_model, resolve
    from msdprof import count_modules

    model = build_model(resolve("cifar10-anytime"), device="meta")
    counts = count_modules(model, torch.zeros(1, 3, 32, 32, device="meta"))
    assert [e.head_macs for e in costs] == [counts.total("msdnet", f"classifiers.{k}.") for k in range(len(costs))]


# --- item 3: a head shared by every exit is in every exit's direct figure --------------------------


def test_a_head_shared_by_every_exit_is_in_each_direct_params():
    costs = exit_costs(built("llama-shared-head"), inputs=ENTRIES["llama-shared-head"].inputs("cpu"))
    head = 16 * 40  # the LM head: hidden 16 x vocabulary 40, no bias
    assert all(e.direct_params == e.params for e in costs)  # every parameter read is needed
    assert costs[0].head_params >= head  # charged where first read: the parts add up
    assert all(e.block_params + e.head_params == e.params - p.params for p, e in zip(costs, costs[1:]))


# --- item 4: the default convention fits the model --------------------------------------------------


def test_a_model_msdprof_did_not_build_is_counted_in_macs_by_default():
    model, inputs = built("bert"), ENTRIES["bert"].inputs("cpu")
    costs = exit_costs(model, inputs=inputs)
    assert costs.convention == "macs" and costs.unsupported == ()
    assert costs.exits == exit_costs(model, inputs=inputs, convention="macs").exits
    assert ("macs is the default for a model msdprof did not build; --convention msdnet gives the authors' "
            "counter's rules") in text(costs)


def test_an_msdnet_is_counted_by_the_authors_rules_by_default():
    assert exit_costs("cifar10-anytime").convention == "msdnet"


def test_zero_work_modules_without_an_msdnet_rule_are_never_called_too_low():
    costs = exit_costs(built("bert"), inputs=ENTRIES["bert"].inputs("cpu"), convention="msdnet")
    zero = [u for u in costs.unsupported if u.kernel_macs == 0]
    assert "Embedding" in {u.type for u in zero}
    note = text(costs)
    assert "No 'msdnet' rule, taken as 0 (their kernels did no multiply-adds; any other work the convention " \
           "charges is not in the figures): " in note
    assert "Embedding x" not in note.split("No 'msdnet' rule")[0]  # not among the "too low" ones


def test_uncounted_work_is_shown_on_its_box_in_the_picture_and_in_the_pages_panel():
    from msdprof import layout_graph
    from msdprof.render import drawing
    from msdprof.render.interactive import network_page

    model, inputs = built("ssm-scan"), ENTRIES["ssm-scan"].inputs("cpu")
    graph = layout_graph(model, inputs=inputs, convention="msdnet")
    boxes = [n for n, d in graph.nodes(data=True) if d.get("uncounted")]
    assert boxes and all(d["type"] == "einsum" for n, d in graph.nodes(data=True) if n in boxes)
    assert sum(graph.nodes[n]["uncounted"] for n in boxes) == 768  # the 24 contracting einsums' 32 each
    assert "+32 not counted" in drawing.dataflow_dot(graph)
    page = network_page(model, inputs=inputs)
    data = json.loads(page[page.index('id="msdprof-data">') + len('id="msdprof-data">'):page.index("</script>")])
    assert [e["uncounted"]["macs"] for e in data["exits"]] == ["", "", ""]  # counted in macs
    assert data["exits"][0]["uncounted"]["msdnet"].startswith("Not counted here: 256 ops. NOT COUNTED")
