"""The meta-device shortcuts of the counter (`msdprof.core.meta_shapes`): while counting, batch
norm, conv2d, linear, 2-d pooling, `torch.cat` and the recurrent layers' functions of meta tensors
return the empty result directly
instead of running torch's slow Python meta kernels.  The shapes they give must be torch's own:
each call below is made with and without the shortcuts and the results compared; calls torch
rejects stay rejected."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from msdprof.core.meta_shapes import MetaShapes


def meta(*shape, dtype=torch.float32):
    return torch.empty(*shape, device="meta", dtype=dtype)


CALLS = {
    "conv 3x3 pad 1": lambda: F.conv2d(meta(2, 8, 15, 17), meta(6, 8, 3, 3), None, 1, 1),
    "conv stride 2": lambda: F.conv2d(meta(1, 8, 15, 16), meta(6, 8, 3, 3), meta(6), 2, 1),
    "conv 7x7 stride 2 bias": lambda: F.conv2d(meta(1, 3, 224, 224), meta(32, 3, 7, 7), meta(32), 2, 3),
    "conv tuples dilation groups": lambda: F.conv2d(meta(1, 8, 20, 21), meta(4, 4, 3, 1), None,
                                                    (2, 1), (1, 0), (2, 1), 2),
    "conv keywords": lambda: F.conv2d(input=meta(1, 4, 9, 9), weight=meta(4, 4, 1, 1), stride=3),
    "conv padding same": lambda: F.conv2d(meta(1, 4, 9, 9), meta(4, 4, 3, 3), padding="same"),
    "conv unbatched": lambda: F.conv2d(meta(4, 9, 9), meta(4, 4, 3, 3)),
    "batch norm eval": lambda: F.batch_norm(meta(2, 6, 5, 5), meta(6), meta(6), meta(6), meta(6)),
    "batch norm no affine": lambda: F.batch_norm(meta(2, 6, 5, 5), meta(6), meta(6)),
    "batch norm training": lambda: F.batch_norm(meta(2, 6, 5, 5), meta(6), meta(6), training=True),
    "linear bias": lambda: F.linear(meta(3, 7), meta(10, 7), meta(10)),
    "linear no bias 3-d": lambda: F.linear(meta(2, 3, 7), meta(10, 7)),
    "max pool 3/2/1": lambda: F.max_pool2d(meta(1, 8, 112, 112), 3, 2, 1),
    "max pool indices": lambda: F.max_pool2d(meta(1, 8, 9, 9), 2, return_indices=True),
    "max pool ceil": lambda: F.max_pool2d(meta(1, 8, 9, 9), 2, ceil_mode=True),
    "avg pool 2": lambda: F.avg_pool2d(meta(1, 8, 3, 3), 2),
    "avg pool tuple stride": lambda: F.avg_pool2d(meta(1, 8, 9, 10), (3, 2), (2, 3), (1, 0)),
    "cat channels": lambda: torch.cat([meta(1, 3, 4, 4), meta(1, 5, 4, 4)], dim=1),
    "cat negative dim": lambda: torch.cat((meta(2, 3), meta(2, 4)), -1),
    "cat one": lambda: torch.cat([meta(2, 3)]),
    "cat half": lambda: torch.cat([meta(1, 2, dtype=torch.half), meta(1, 2, dtype=torch.half)]),
    "lstm bidirectional batch first": lambda: torch.nn.LSTM(4, 8, 2, bidirectional=True, batch_first=True,
                                                            device="meta")(meta(2, 5, 4)),
    "lstm projected": lambda: torch.nn.LSTM(4, 8, proj_size=3, device="meta")(meta(5, 2, 4)),
    "gru": lambda: torch.nn.GRU(4, 6, device="meta")(meta(5, 2, 4)),
    "rnn relu unbatched": lambda: torch.nn.RNN(4, 6, nonlinearity="relu", device="meta")(meta(5, 4)),
}


def described(result):
    if isinstance(result, tuple):
        return tuple(described(r) for r in result)
    return tuple(result.shape), result.dtype, result.device


@pytest.mark.parametrize("call", list(CALLS.values()), ids=list(CALLS))
def test_results_under_the_shortcuts_have_the_shape_torch_gives(call):
    expected = described(call())
    with MetaShapes():
        assert described(call()) == expected


REJECTED = {
    "conv channels": lambda: F.conv2d(meta(1, 5, 9, 9), meta(4, 4, 3, 3)),
    "conv kernel larger than input": lambda: F.conv2d(meta(1, 4, 2, 2), meta(4, 4, 3, 3)),
    "batch norm channels": lambda: F.batch_norm(meta(2, 6, 5, 5), meta(4), meta(4)),
    "linear features": lambda: F.linear(meta(3, 7), meta(10, 8)),
    "pool padding over half the kernel": lambda: F.max_pool2d(meta(1, 2, 9, 9), 2, 2, 2),
    "cat shapes": lambda: torch.cat([meta(1, 3, 4, 4), meta(1, 3, 5, 4)], dim=1),
}


@pytest.mark.parametrize("call", list(REJECTED.values()), ids=list(REJECTED))
def test_calls_torch_rejects_stay_rejected(call):
    with pytest.raises((RuntimeError, ValueError)):
        call()
    with MetaShapes(), pytest.raises((RuntimeError, ValueError)):
        call()


def test_real_tensors_are_computed_by_torch():
    x, w = torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3)
    with MetaShapes():
        assert F.conv2d(x, w).item() == 9.0


# --- the kernel cache (issue 30): an ATen op's meta results, by the metadata it read ----------------

from msdprof.core import meta_shapes  # noqa: E402

aten = torch.ops.aten

KERNEL_CALLS = {
    "add broadcast": (aten.add.Tensor, lambda: (meta(2, 1, 5), meta(3, 1)), {}),
    "mul scalar half": (aten.mul.Tensor, lambda: (meta(4, 6, dtype=torch.half), 0.5), {}),
    "addmm": (aten.addmm.default, lambda: (meta(7), meta(3, 5), meta(5, 7)), {}),
    "layer norm": (aten.native_layer_norm.default, lambda: (meta(2, 3, 8), [8], meta(8), meta(8), 1e-5), {}),
    "softmax": (aten._softmax.default, lambda: (meta(2, 9), -1, False), {}),
    "transposed input": (aten.gelu.default, lambda: (meta(4, 6).t(),), {}),
    "max with indices": (aten.max.dim, lambda: (meta(4, 6), 1, True), {}),
    "factory on meta": (aten.zeros.default, lambda: ([2, 3],), {"dtype": torch.float16, "device": "meta"}),
}


def metadata(result):
    results = result if isinstance(result, tuple) else (result,)
    return tuple((tuple(r.shape), r.stride(), r.dtype, r.device.type) for r in results)


@pytest.mark.parametrize("call", list(KERNEL_CALLS.values()), ids=list(KERNEL_CALLS))
def test_a_kernel_answered_from_the_cache_gives_what_torch_gives(call):
    func, args, kwargs = call
    expected = metadata(func(*args(), **kwargs))
    meta_shapes._KERNELS.clear()
    first = meta_shapes.kernel(func, args(), kwargs)
    second = meta_shapes.kernel(func, args(), kwargs)  # from the cache: no kernel runs
    assert metadata(first) == metadata(second) == expected
    assert any(key[0] is func for key in meta_shapes._KERNELS)


def test_an_in_place_kernel_from_the_cache_returns_its_own_argument():
    x = meta(3, 4)
    meta_shapes.kernel(aten.add_.Tensor, (meta(3, 4), meta(4)), {})
    assert meta_shapes.kernel(aten.add_.Tensor, (x, meta(4)), {}) is x


def test_a_view_is_never_answered_from_the_cache():
    x = meta(3, 4)
    meta_shapes.kernel(aten.t.default, (x,), {})
    assert meta_shapes.kernel(aten.t.default, (x,), {})._base is x
    assert not any(key[0] is aten.t.default for key in meta_shapes._KERNELS)


def test_a_factory_on_cpu_makes_real_tensors_however_often_it_is_called():
    for _ in range(3):
        made = meta_shapes.kernel(aten.zeros.default, ([2, 3],), {"device": torch.device("cpu")})
        assert made.device.type == "cpu" and made.sum().item() == 0


def test_real_tensors_are_never_answered_from_the_cache():
    a, b = torch.ones(2, 2), torch.full((2, 2), 3.0)
    for _ in range(2):
        assert meta_shapes.kernel(aten.add.Tensor, (a, b), {}).tolist() == [[4.0, 4.0], [4.0, 4.0]]


@pytest.mark.parametrize("func, reads", [
    (aten.nonzero.default, True), (aten._local_scalar_dense.default, True), (aten.masked_select.default, True),
    (aten.index.Tensor, False), (aten.add.Tensor, False), (aten.one_hot.default, False),
])
def test_value_dependent_kernels_are_those_whose_shapes_or_results_come_from_values(func, reads):
    assert meta_shapes.value_dependent(func) is reads


def test_result_bytes_of_a_kernel_on_real_tensors_are_its_results_sizes():
    a, b = torch.ones(64, 32), torch.ones(32, 16, dtype=torch.float32)
    assert meta_shapes.result_bytes(aten.mm.default, (a, b), {}) == 64 * 16 * 4
    assert meta_shapes.result_bytes(aten.t.default, (a,), {}) == 0  # a view: nothing new
    assert meta_shapes.result_bytes(aten.add_.Tensor, (a, a), {}) == 0  # in place
