"""What memory each exit needs (issue 25): parameter bytes and peak activation bytes, eager and
lazy, on small graphs whose peaks are computed by hand (every tensor below is float32, 4 bytes an
element; ``x`` is 1x1000, so a tensor the size of ``x`` is 4,000 bytes and a per-row sum 4 bytes),
the property lazy <= eager <= as written on random graphs and MSDNet presets, and the CPU
allocator as the oracle on a graph with no workspaces.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from msdprof.analysis.allocator import measured_peaks
from msdprof.core.memory import exit_memory
from msdnet.options import OptionError

FULL, SUM = 4000, 4  # bytes of a 1x1000 float32 tensor, of a 1x1 one


class Program(nn.Module):
    """A model whose forward is ``fn`` (a child module keeps it from being a counted leaf)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.unused = nn.Identity()

    def forward(self, x):
        return self.fn(x)


def memory(fn, side=1000, device="meta"):
    return exit_memory(Program(fn), inputs=torch.zeros(1, side, device=device))


def rowsum(t):
    return t.sum(1, keepdim=True)


def test_chain_peaks_where_an_op_reads_one_tensor_and_writes_the_next():
    # a = 2x (4000); b = a + 1: a and b alive (8000); then a is freed; sum(b): b + 4
    [e] = memory(lambda x: [rowsum((x * 2) + 1)])
    assert (e.peak_bytes, e.peak.op) == (2 * FULL, "add")
    assert sorted(a.op for a in e.peak.alive) == ["add", "mul"]


def test_skip_connection_keeps_its_source_alive_until_the_add():
    # a = 2x; b = 3a (a, b); c = b + a (a, b, c): 12000 at the add
    def fn(x):
        a = x * 2
        return [rowsum(a * 3 + a)]
    [e] = memory(fn)
    assert (e.peak_bytes, e.peak.op) == (3 * FULL, "add")


def test_concat_holds_its_inputs_and_its_result_at_once():
    # a = 2x, b = 3x, cat (8000): 16000 at the cat
    [e] = memory(lambda x: [rowsum(torch.cat([x * 2, x * 3], 1))])
    assert (e.peak_bytes, e.peak.op) == (4 * FULL, "cat")


def test_in_place_ops_reuse_their_inputs_storage():
    # a = 2x; a += 1; relu_(a): one 4000-byte storage, then the sum's 4 bytes
    def fn(x):
        a = x * 2
        a.add_(1)
        return [rowsum(a.relu_())]
    [e] = memory(fn)
    assert e.peak_bytes == FULL + SUM
    assert e.held_peak_bytes == FULL + SUM


def test_views_share_their_base_and_keep_it_alive():
    # v = (2x)[:, :10] is a view: it adds nothing but keeps 2x alive while b = 3x is made (8000),
    # then sums of v and of b (4 bytes each) and their add (4): 8000 + 4 at the first sum
    def fn(x):
        a = x * 2
        v = a[:, :10].view(2, 5)
        b = x * 3
        return [v.sum().view(1, 1) + rowsum(b)]
    [e] = memory(fn)
    assert (e.peak_bytes, e.peak.op) == (2 * FULL + SUM, "sum")


def test_a_branch_only_a_later_exit_reads_is_held_by_eager_and_skipped_by_lazy():
    # t = 2x; u = 3t (read only by exit 2); exit 1 = sum(t); exit 2 = sum(u)
    def fn(x):
        t = x * 2
        u = t * 3
        return [rowsum(t), rowsum(u)]
    first, second = memory(fn)
    assert first.peak_bytes == 2 * FULL + SUM  # t, u (held for exit 2) and exit 1's sum
    assert first.lazy_peak_bytes == FULL + SUM  # lazy never makes u
    assert second.peak_bytes == second.lazy_peak_bytes == 2 * FULL + SUM
    assert first.lazy_peak.op == "sum"


def test_exit_outputs_are_kept_to_the_end():
    # exit 1 = 2x (kept, 4000); then b = 3x, c = b + 1 (b, c): 12000 with exit 1 at the add
    def fn(x):
        b = x * 3
        return [x * 2, rowsum(b + 1)]
    _, second = memory(fn)
    assert second.lazy_peak_bytes == 3 * FULL


def test_held_peak_counts_what_the_models_code_still_references():
    # every step kept in a list: a, b, c all referenced at the third op (12000), though a is dead
    def fn(x):
        kept = [x * 2]
        kept.append(kept[-1] * 3)
        kept.append(kept[-1] * 4)
        return [rowsum(kept[-1])]
    [e] = memory(fn)
    assert e.peak_bytes == 2 * FULL  # b and c at the third op; a is dead after the second
    assert e.held_peak_bytes == 3 * FULL + SUM


class Linears(nn.Module):
    """exit 1 = head1(x); exit 2 = head2(trunk(x)): 10->20 linear layers."""

    def __init__(self, dtype=torch.float32):
        super().__init__()
        self.head1 = nn.Linear(10, 20, dtype=dtype)
        self.trunk = nn.Linear(10, 10, dtype=dtype)
        self.head2 = nn.Linear(10, 20, dtype=dtype)

    def forward(self, x):
        h = self.trunk(x)
        return [self.head1(x), self.head2(h)]


@pytest.mark.parametrize("dtype, size", [(torch.float32, 4), (torch.float16, 2), (torch.bfloat16, 2)])
def test_parameter_bytes_follow_the_dtype_eager_and_lazy(dtype, size):
    first, second = exit_memory(Linears(dtype).to("meta"), inputs=torch.zeros(1, 10, device="meta", dtype=dtype))
    head, trunk = 10 * 20 + 20, 10 * 10 + 10
    assert first.param_bytes == size * (trunk + head)  # the trunk ran before head 1
    assert first.lazy_param_bytes == size * head
    assert second.param_bytes == second.lazy_param_bytes == size * (trunk + 2 * head)


def test_int8_parameters_count_one_byte_each():
    class Quantized(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = nn.Parameter(torch.zeros(100, dtype=torch.int8, device="meta"), requires_grad=False)
            self.unused = nn.Identity()

        def forward(self, x):
            return [rowsum(x + self.q.float())]
    [e] = exit_memory(Quantized(), inputs=torch.zeros(1, 100, device="meta"))
    assert e.param_bytes == 100
    assert e.peak_bytes == 2 * 400  # the float copy of q and the add (x is 1x100 float32)


def test_totals_add_parameters_inputs_and_the_peak():
    first, _ = exit_memory(Linears().to("meta"), inputs=torch.zeros(3, 10, device="meta"))
    assert first.total_bytes == first.param_bytes + 3 * 10 * 4 + first.held_peak_bytes
    assert first.lazy_total_bytes == first.lazy_param_bytes + 3 * 10 * 4 + first.lazy_peak_bytes


def test_batch_scales_the_activations_of_a_generic_model():
    from early_exit_models import SDNResNet

    one = exit_memory(SDNResNet().to("meta"), input_size=32)
    eight = exit_memory(SDNResNet().to("meta"), input_size=32, batch=8)
    assert eight.batch == 8 and eight.input_bytes == 8 * 3 * 32 * 32 * 4
    assert [e.peak_bytes for e in eight] == [8 * e.peak_bytes for e in one]
    assert [e.param_bytes for e in eight] == [e.param_bytes for e in one]


@pytest.mark.parametrize("batch", [0, -1, "two", 1.5])
def test_a_bad_batch_is_refused_naming_the_option(batch):
    with pytest.raises(OptionError, match="batch"):
        exit_memory("cifar10-anytime", batch=batch)


@pytest.mark.parametrize("preset", ["cifar10-anytime", "cifar100-batch", "imagenet-step4"])
def test_msdnet_lazy_never_exceeds_eager_and_eager_never_exceeds_as_written(preset):
    for e in exit_memory(preset):
        assert e.lazy_peak_bytes <= e.peak_bytes <= e.held_peak_bytes
        assert e.lazy_param_bytes <= e.param_bytes


def test_msdnet_parameter_bytes_are_four_per_counted_parameter():
    from msdprof import exit_costs

    costs, memories = exit_costs("cifar10-anytime"), exit_memory("cifar10-anytime")
    assert [m.param_bytes for m in memories] == [4 * c.params for c in costs]
    assert [m.lazy_param_bytes for m in memories] == [4 * c.lazy_params for c in costs]


def test_the_cpu_allocator_reaches_the_predicted_peak_exactly_where_no_op_needs_a_workspace():
    # oracle: torch.profiler's allocator events on a real run; neg, exp, cat and a slice allocate
    # exactly their outputs (no scalar operand, no workspace)
    def fn(x):
        a = x.neg()
        b = a.exp()
        c = torch.cat([a, b], 1)
        d = c[:, :500].exp()
        return [d, c.neg()]
    model = Program(fn)
    predicted = [e.held_peak_bytes for e in exit_memory(model, inputs=torch.zeros(1, 1000))]
    assert list(measured_peaks(model, torch.zeros(1, 1000))) == predicted == [
        FULL + FULL + 2 * FULL + FULL // 2,  # a, b, c (8000) and d (2000) when exit 1 is made
        FULL + FULL + 2 * FULL + FULL // 2 + 2 * FULL,  # and exit 2, c.neg() (8000)
    ]


# --- lazy <= eager on random graphs ---------------------------------------------------------------

STEPS = st.lists(
    st.tuples(st.sampled_from(["neg", "relu_", "view", "slice", "add", "cat", "exit"]),
              st.integers(0, 1000), st.integers(0, 1000)),
    min_size=1, max_size=14,
)


def program(steps):
    """A forward running ``steps`` over a list of 4x64 tensors (``x`` first); ``exit`` steps
    return a per-row sum of a value as the next exit (the last value is the last exit)."""
    def fn(x):
        values, exits = [x], []
        for kind, i, j in steps:
            a, b = values[i % len(values)], values[j % len(values)]
            if kind == "exit":
                exits.append(a.sum(1))
                continue
            values.append({
                "neg": lambda: a.neg(), "relu_": lambda: (a if a is not x else a.neg()).relu_(),
                "view": lambda: a.view(4, 64), "slice": lambda: a[:, :],
                "add": lambda: a + b, "cat": lambda: torch.cat([a, b])[:4],
            }[kind]())
        return [*exits, values[-1].sum(1) if len(values) > 1 else x.neg()]
    return Program(fn)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS)
def test_lazy_peak_never_exceeds_eager_peak_on_random_graphs(steps):
    for e in exit_memory(program(steps), inputs=torch.zeros(4, 64, device="meta")):
        assert e.lazy_peak_bytes <= e.peak_bytes <= e.held_peak_bytes


def test_with_inputs_given_the_batch_is_theirs():
    memories = exit_memory(Linears().to("meta"), inputs=torch.zeros(3, 10, device="meta"))
    assert memories.batch == 3
    with pytest.raises(OptionError, match="batch"):
        exit_memory(Linears().to("meta"), inputs=torch.zeros(3, 10, device="meta"), batch=3)
