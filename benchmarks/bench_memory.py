"""Predicted vs measured memory per exit (issue 25), and how fast the prediction is.

Run: ``python benchmarks/bench_memory.py [--quick] [--save]`` (from the repository root;
``--quick`` skips batch 64; ``--save`` also writes what it prints to
``benchmarks/results/bench_memory.json``).
Prints, measured in this run:

1. a Markdown table, per model, batch and exit: the peak activation bytes msdprof predicts from one
   pass on ``meta`` -- each tensor freed after its last reader (``peak``) and as the model's code
   holds its tensors (``as written``) -- beside the peak the CPU allocator really reached
   (``torch.profiler`` memory events, :func:`msdprof.measured_peaks`) running the real model on
   CPU until output k was allocated, the gap (measured - as written, in MB and in % of measured),
   the aten operator running at the measured peak and its workspace there (bytes it allocated and
   frees before returning, alive at the peak);
2. the seconds of ``exit_memory`` on a Llama-7B-shaped model on ``meta`` (32 layers, hidden 4096,
   8 exits, 512 tokens): the issue asks for under 3 s.

Models: the MSDNet presets cifar10-anytime, cifar100-batch and imagenet-step4, the SDN-style
ResNet of ``examples/early_exit_models.py`` and the small vision transformer with two exits below,
at batch 1 and 64.  torch uses one thread (the machine's cores are shared).
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

from early_exit_models import SDNResNet  # noqa: E402
from msdnet.model import model_from  # noqa: E402
from msdprof import exit_memory  # noqa: E402
from msdprof.analysis.allocator import measured_run, peaks_of  # noqa: E402
from results import add_save_option, recorded  # noqa: E402


class Block(nn.Module):
    """A pre-norm transformer block: attention written out (q k^T, softmax, times v) and a GELU MLP."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.up, self.act, self.down = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attention = (q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)).softmax(-1)
        x = x + self.proj((attention @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.down(self.act(self.up(self.norm2(x))))


class ExitViT(nn.Module):
    """A small vision transformer (4x4 patches of a 32 px image, 64 tokens of 64) with an exit
    (LayerNorm, mean over tokens, Linear) after blocks 2 and 4."""

    def __init__(self, dim: int = 64, depth: int = 4, classes: int = 10):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 4, stride=4)
        self.blocks = nn.ModuleList(Block(dim, 4, 4 * dim) for _ in range(depth))
        self.heads = nn.ModuleList(nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, classes))
                                   for _ in range(depth // 2))

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i % 2 == 1:
                outputs.append(self.heads[i // 2][0](x).mean(1) @ self.heads[i // 2][1].weight.T)
        return outputs


class LlamaLayer(nn.Module):
    """A Llama-shaped decoder layer (RMS norms, attention with SDPA, SwiGLU MLP); no rotary
    embedding (it changes no shape)."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim, bias=False) for _ in range(4))
        self.gate, self.up = nn.Linear(dim, hidden, bias=False), nn.Linear(dim, hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)
        self.norm1, self.norm2 = nn.RMSNorm(dim), nn.RMSNorm(dim)

    def forward(self, x):
        b, n, d = x.shape
        h = self.norm1(x)
        q, k, v = (p(h).view(b, n, self.heads, d // self.heads).transpose(1, 2) for p in (self.q, self.k, self.v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(a.transpose(1, 2).reshape(b, n, d))
        h = self.norm2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class LlamaExits(nn.Module):
    """Llama-7B's shape (32 layers, hidden 4096, 32 heads, MLP 11008, vocabulary 32000) with an
    exit (norm and the shared LM head) after every 4th layer: 8 exits."""

    def __init__(self, layers: int = 32, dim: int = 4096, exits: int = 8):
        super().__init__()
        self.embed = nn.Embedding(32000, dim)
        self.layers = nn.ModuleList(LlamaLayer(dim, 32, 11008) for _ in range(layers))
        self.norm, self.head = nn.RMSNorm(dim), nn.Linear(dim, 32000, bias=False)
        self.every = layers // exits

    def forward(self, tokens):
        x, outputs = self.embed(tokens), []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if (i + 1) % self.every == 0:
                outputs.append(self.head(self.norm(x[:, -1])))
        return outputs


SUMMARY = {"rows": 0, "within 10%": 0, "gap <= workspace": 0, "measured >= as written": 0}


def mb(n: int) -> str:
    return f"{n / 1e6:,.2f}"


def compare(label: str, model: nn.Module, image: tuple[int, ...], batch: int) -> list[str]:
    """Table rows: predicted (meta) and measured (CPU allocator) per exit."""
    torch.manual_seed(0)
    model = model.eval()
    predicted = exit_memory(copy.deepcopy(model).to("meta"), batch=batch,
                            input_size="x".join(map(str, image)))
    run = measured_run(model, torch.randn(batch, *image))
    peaks, places = peaks_of(run)
    rows = []
    for e, got, place in zip(predicted, peaks, places):
        gap = 100 * (got - e.held_peak_bytes) / got if got else 0.0
        SUMMARY["rows"] += 1
        SUMMARY["within 10%"] += abs(gap) <= 10
        SUMMARY["gap <= workspace"] += got - e.held_peak_bytes <= run.temporaries_at(place)
        SUMMARY["measured >= as written"] += got >= e.held_peak_bytes
        rows.append(f"| {label} | {batch} | {e.exit} | {mb(e.peak_bytes)} | {mb(e.lazy_peak_bytes)} | "
                    f"{mb(e.held_peak_bytes)} | {mb(got)} | {mb(got - e.held_peak_bytes)} | {gap:+.1f} | "
                    f"`{run.op_at(place)}` | {mb(run.temporaries_at(place))} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 1 only")
    args = add_save_option(parser).parse_args()
    with recorded("bench_memory", args.save):
        run(args.quick)
    return 0


def run(quick: bool) -> None:
    torch.set_num_threads(1)
    batches = (1,) if quick else (1, 64)
    print("| model | batch | exit | peak MB | lazy peak MB | as written MB | measured MB | gap MB | "
          "gap % | running at the measured peak | its workspace MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for batch in batches:
        for preset in ("cifar10-anytime", "cifar100-batch", "imagenet-step4"):
            model = model_from(preset, None, "cpu", use="counted")
            h, w = model.plan.input_size
            for row in compare(preset, model, (3, h, w), batch):
                print(row, flush=True)
        for label, model in (("SDNResNet", SDNResNet()), ("ExitViT", ExitViT())):
            for row in compare(label, model, (3, 32, 32), batch):
                print(row, flush=True)
    print("\nOf " + ", ".join(f"{v} {k}" if k == "rows" else f"{v} {k}" for k, v in SUMMARY.items()))
    with torch.device("meta"):
        llama = LlamaExits()
    tokens = torch.zeros(1, 512, dtype=torch.long, device="meta")
    seconds = []
    for _ in range(3):  # the first call of a process also imports what torch's meta kernels need
        start = time.perf_counter()
        memories = exit_memory(llama, inputs=tokens)
        seconds.append(time.perf_counter() - start)
    last = memories[-1]
    print(f"\nLlama-7B-shaped on meta (32 layers, hidden 4096, 8 exits, 512 tokens): exit_memory in "
          f"{seconds[0]:.2f} s (first call of the process), then {min(seconds[1:]):.2f} s; exit 8: "
          f"parameters {mb(last.param_bytes)} MB, peak {mb(last.peak_bytes)} MB, "
          f"as written {mb(last.held_peak_bytes)} MB")


if __name__ == "__main__":
    sys.exit(main())
