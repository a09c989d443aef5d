"""The API on one model object from several threads (issue 26 item 3): a service answering
requests for one loaded model.  Every entry that records a forward pass gives the figures one
thread alone gives, and leaves every submodule's train/eval mode as it was."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import networkx as nx
import torch
from torch import nn

import msdprof
from msdnet import build_model, preset, resolve
from msdprof.core import dataflow

THREADS, ROUNDS = 4, 5


class TwoExits(nn.Module):
    """A small early-exit network whose outputs depend on the mode (batch norm, dropout)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.head1 = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(4, 3))
        self.block = nn.Conv2d(4, 4, 3, padding=1)
        self.head2 = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def forward(self, x):
        x = self.stem(x)
        first = self.head1(x)
        return [first, self.head2(self.block(x))]


def _graph(graph: nx.DiGraph):
    return sorted(map(repr, graph.nodes(data=True))), sorted(map(repr, graph.edges(data=True)))


def _modes(model):
    return [(name, m.training) for name, m in model.named_modules()]


def _same_from_threads(model, calls, rounds=ROUNDS):
    """Run every call of ``calls`` (name -> function of the model) ``rounds`` times in each of THREADS
    threads at once; assert each result equals the one a single thread got first, and that the
    model's modes are those it had."""
    modes = _modes(model)
    alone = {name: call(model) for name, call in calls.items()}
    assert _modes(model) == modes
    start = threading.Barrier(THREADS)

    def worker(_):
        start.wait()
        return [{name: call(model) for name, call in calls.items()} for _ in range(rounds)]

    with ThreadPoolExecutor(THREADS) as pool:
        results = [r for each in pool.map(worker, range(THREADS)) for r in each]
    assert len(results) == THREADS * rounds
    for result in results:
        assert result == alone
    assert _modes(model) == modes


def test_an_msdnet_counted_from_four_threads_gives_one_threads_figures_and_keeps_its_modes():
    model = build_model(resolve(preset("cifar10-batch"), nBlocks=2, step=1, base=1), device="meta")
    model.classifiers[0].eval()  # mixed modes: the model trains, one head evaluates
    _same_from_threads(model, {
        "exit_costs": lambda m: msdprof.exit_costs(m),
        "layout_graph": lambda m: _graph(msdprof.layout_graph(m)),
    })


def test_any_model_counted_and_drawn_from_four_threads_gives_one_threads_figures_and_keeps_its_modes():
    torch.manual_seed(0)
    model = TwoExits()
    model.head2.eval()
    image = torch.zeros(1, 3, 8, 8)
    _same_from_threads(model, {
        "exit_costs": lambda m: msdprof.exit_costs(m, input_size=8),
        "count_modules": lambda m: msdprof.count_modules(m, image),
        "layout_graph": lambda m: _graph(msdprof.layout_graph(m, input_size=8)),
    })


def test_any_model_timed_from_four_threads_gives_one_threads_costs_and_keeps_its_modes():
    model = TwoExits()
    model.head2.eval()
    image = torch.zeros(1, 3, 8, 8)
    _same_from_threads(model, {
        "measure_latency": lambda m: msdprof.measure_latency(m, image, min_time=0.001).costs,
    }, rounds=1)  # a timing holds the model for its whole length: one round is enough


def test_a_forward_of_another_thread_during_a_record_is_not_recorded():
    model = TwoExits().eval()
    image = torch.zeros(1, 3, 8, 8)
    alone = dataflow.record(model, lambda: model(image), outputs=None)
    inside, go = threading.Event(), threading.Event()

    def other_thread():  # the user's own forward, outside msdprof
        inside.wait()
        model(image)
        go.set()

    def run():
        first = model.stem(image)
        inside.set()
        go.wait(timeout=30)
        return [model.head1(first), model.head2(model.block(first))]

    thread = threading.Thread(target=other_thread)
    thread.start()
    flow = dataflow.record(model, run, outputs=None)
    thread.join()
    assert [(op.name, op.count) for op in flow.ops] == [(op.name, op.count) for op in alone.ops]


def test_the_garbage_collector_is_as_it_was_after_counts_from_four_threads():
    import gc

    model = build_model(resolve(preset("cifar10-batch"), nBlocks=2, step=1, base=1), device="meta")
    thresholds = gc.get_threshold()
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            _same_from_threads(model, {"exit_costs": lambda m: msdprof.exit_costs(m)}, rounds=2)
            assert gc.isenabled() is enabled and gc.get_threshold() == thresholds
        finally:
            gc.enable()


def test_the_first_count_in_a_process_holds_the_bytes_every_later_one_holds():
    import subprocess
    import sys

    code = ("from msdprof.core.exits import record_exits; from msdnet.model import model_from; "
            "m = model_from('cifar10-anytime', None, 'meta', use='counted'); "
            "print([record_exits(m).held_peak() for _ in range(2)])")
    first, later = eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert first == later  # a cold kernel cache runs torch's Python code, which leaves cycles
