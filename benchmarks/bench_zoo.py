"""Per-exit counting of the test zoo, msdprof against FlopCounterMode's best per-exit method (issue 23).

Run: ``python benchmarks/bench_zoo.py`` (from the repository root).  Prints, measured in this run,
the median seconds of each method over several runs and their ratio; gc is disabled while timing
and torch uses the threads said.  Before timing, the two methods' per-exit figures are checked equal.

- The zoo (``tests/zoo``, 26 tiny early-exit networks, CPU, one thread): msdprof counts every exit
  (eager, lazy, direct, head, block; ``flops``) from one recorded forward; FlopCounterMode has no
  notion of exits, so its best per-exit method is one forward stopped at each exit k (the zoo's
  hand-written ``exits=k``), under the MATH attention backend and with grad enabled (under
  ``no_grad`` an ``nn.MultiheadAttention`` in eval mode runs a fused kernel it counts 0 for).  Models with an ``nn.LSTM`` are
  left out of the FlopCounterMode column's check on CPU (it counts 0 there: ``mkldnn_rnn_layer``)
  and timed all the same.
- A Llama-7B-shaped early-exit decoder (32 layers, hidden 4096, 32 heads, MLP 11008, vocabulary
  32000, one LM head shared by every 4th layer: 8 exits) built on ``meta``, nothing allocated,
  128 tokens, two threads: msdprof's per-exit count, and FlopCounterMode's 8 stopped forwards.
"""

from __future__ import annotations

import sys
from pathlib import Path
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from bench_any_model import median_seconds  # noqa: E402  (the same timing: warm-up, gc off)
from msdprof import exit_costs  # noqa: E402
from zoo import ENTRIES, eager_forward  # noqa: E402
from zoo.attention import LlamaSharedHead  # noqa: E402

RUNS = 3


def flop_counter_per_exit(model, inputs, exits: int) -> list[int]:
    """FlopCounterMode's best per-exit method: one forward stopped at each exit."""
    totals = []
    for k in range(1, exits + 1):
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
            eager_forward(model, inputs, k)
        totals.append(counter.get_total_flops())
    return totals


def zoo_rows() -> list[tuple[str, float, float]]:
    rows = []
    for name, entry in sorted(ENTRIES.items()):
        torch.manual_seed(0)
        model = entry.build().eval()
        inputs = entry.inputs("cpu")
        subject = entry.subject(model)

        def ours() -> list[int]:
            return [e.macs for e in exit_costs(subject, inputs=inputs, convention="flops")]

        exits = len(ours())

        def theirs() -> list[int]:
            return flop_counter_per_exit(model, inputs, exits)

        if not entry.lstm_on_cpu:
            assert ours() == theirs(), f"{name}: the two methods disagree"
        rows.append((name, median_seconds(ours, RUNS), median_seconds(theirs, RUNS)))
    return rows


def llama_rows() -> tuple[float, float]:
    with torch.device("meta"):
        model = LlamaSharedHead(hidden=4096, layers=32, heads=32, intermediate=11008, vocab=32000).eval()
    ids = torch.zeros(1, 128, dtype=torch.long, device="meta")

    def ours() -> list[int]:
        return [e.macs for e in exit_costs(model, inputs=ids, convention="flops")]

    def theirs() -> list[int]:
        return flop_counter_per_exit(model, (ids,), 8)

    assert ours() == theirs(), "the two methods disagree on the Llama-7B shape"
    return median_seconds(ours, RUNS), median_seconds(theirs, RUNS)


def main() -> int:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, gc off while timing, median of {RUNS} runs\n")
    rows = zoo_rows()
    print("### Per-exit counting of the zoo (26 tiny models, CPU, 1 thread)\n")
    print("| model | msdprof s | FlopCounterMode, one forward per exit, s | msdprof faster by |")
    print("|---|---:|---:|---:|")
    for name, ours, theirs in rows:
        print(f"| {name} | {ours:.4f} | {theirs:.4f} | {theirs / ours:.1f}x |")
    ours_all, theirs_all = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"| **all** | {ours_all:.3f} | {theirs_all:.3f} | {theirs_all / ours_all:.1f}x |\n")
    torch.set_num_threads(2)
    ours, theirs = llama_rows()
    print("### Llama-7B-shaped early-exit decoder on meta (32 layers, hidden 4096, 8 exits, 128 tokens, "
          "2 threads)\n")
    print("| method | median s | msdprof faster by |\n|---|---:|---:|")
    print(f"| msdprof exit_costs (every exit, one forward, nothing allocated) | {ours:.3f} | 1.0x |")
    print(f"| FlopCounterMode, one forward per exit | {theirs:.3f} | {theirs / ours:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
