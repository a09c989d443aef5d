"""Train a tiny MSDNet on scikit-learn's digits (60 epochs: 17 to 20 minutes on 2 CPU threads; the
committed run took 1,004 s), then run msdprof's budget analysis on its real per-exit outputs.

    python examples/digits.py [--out build/digits] [--epochs N] [--seed 0]     # or: make digits

``make digits`` writes into ``build/digits`` (ignored by git: the tree stays clean);
``make digits DIGITS_OUT=reports/digits`` rewrites the committed page and its files.

The data set is ``sklearn.datasets.load_digits`` (1797 grey 8x8 images of the digits 0-9, shipped
inside scikit-learn: nothing is downloaded).  Each image is upsampled bilinearly to the smallest
side the network takes (:func:`msdnet.plan.input_size_range`) and its grey channel repeated three
times.  A seeded split gives train / validation / test (60/20/20); every exit is trained jointly
(the sum of the exits' cross-entropies, as the authors do) with the authors' CIFAR optimiser and
schedule.  The softmax outputs of the validation and test images, ``[exits, samples, classes]``,
are saved with :func:`msdprof.files.saved_outputs.save_outputs`; msdprof then calibrates the authors'
geometric family of exit distributions on validation, evaluates it on test
(:func:`msdprof.analysis.budget.budgeted_batch`), draws accuracy against expected cost
(:func:`msdprof.render.budget_view.accuracy_plot`) and checks :meth:`msdnet.MSDNet.early_exit` on the
trained network against the calibration.

Writes into ``--out`` (replacing what an earlier run wrote there): ``digits-outputs.npz``,
``digits-budget.svg``, ``README.md`` (the page that shows the numbers), and the trained network's
state dict ``digits-weights.pt`` with the test images as network input ``digits-test-inputs.npz``
(array ``x``), so that what needs the network itself (``msdprof latency``) can run again without
training.  Progress goes to
standard output.  scikit-learn is needed only to load the images (``pip install -e '.[examples]'``).
"""

from __future__ import annotations

import argparse
import io
import platform
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from msdnet import MSDNet, Options, build_model
from msdnet.options import format_value
from msdnet.plan import input_size_range
from msdprof import exit_costs
from msdprof.analysis.budget import Calibration, budgeted_batch, geometric_family
from msdprof.render.budget_view import accuracy_plot
from msdprof.core.exits import ExitCosts
from msdprof.render.formatting import op_scale, scaled
from msdprof.files.output import write_atomic
from msdprof.files.saved_outputs import SavedOutputs, outputs_from, save_outputs

#: The tiny network: 5 exits, one layer per block, thin maps; CIFAR heads for the 10 classes.
OPTIONS = Options(nBlocks=5, stepmode="even", step=1, base=1, nChannels=8, growthRate=4,
                  data="cifar10")
#: The smallest input side this network takes (3 scales and CIFAR heads: 17 pixels).
SIDE = input_size_range(OPTIONS)[0]
#: Train, validation and test shares of the 1797 images.
SPLIT = (0.6, 0.2, 0.2)
#: The authors' CIFAR training: SGD, lr 0.1 divided by 10 at 50% and 75% of the epochs, momentum
#: 0.9, weight decay 1e-4; batch 64 (theirs) and 60 epochs, 17 to 20 minutes on 2 CPU threads
#: (ours).
LR, MOMENTUM, WEIGHT_DECAY, BATCH = 0.1, 0.9, 1e-4, 64
EPOCHS, SEED, THREADS = 60, 0, 2
#: The member of the geometric family whose thresholds are checked in detail on the trained
#: network (p = 20: the same share of images at every exit).
CHECK_P = 20
OUTPUTS, PLOT, PAGE = "digits-outputs.npz", "digits-budget.svg", "README.md"
#: The trained network's state dict and the test images as network input, for runs that need the
#: network itself (``msdprof latency --weights ... --inputs ...``) without training it again.
WEIGHTS, TEST_INPUTS = "digits-weights.pt", "digits-test-inputs.npz"
NAME = f"tiny MSDNet trained on scikit-learn digits ({SIDE}x{SIDE})"


# --- data -----------------------------------------------------------------------------------------


def to_input(images: np.ndarray | torch.Tensor, side: int = SIDE) -> torch.Tensor:
    """Digits images ``[N, 8, 8]`` (grey levels 0..16) as network input ``[N, 3, side, side]``:
    scaled to [-1, 1], upsampled bilinearly, the grey channel repeated 3 times."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)[:, None] / 16 * 2 - 1
    x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    return x.repeat(1, 3, 1, 1).contiguous()


def load_images(side: int = SIDE) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as input ``[N, 3, side, side]`` and targets ``[N]`` (needs scikit-learn)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return to_input(digits.images, side), torch.as_tensor(digits.target, dtype=torch.int64)


def split_indices(n: int, seed: int = SEED,
                  shares: Sequence[float] = SPLIT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint train, validation and test indices covering ``range(n)``, the same for the same
    ``seed`` (numpy's PCG64); validation and test take ``round(n * share)`` each, train the rest."""
    order = np.random.default_rng(seed).permutation(n)
    n_val, n_test = round(n * shares[1]), round(n * shares[2])
    n_train = n - n_val - n_test
    return order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]


# --- training and outputs ---------------------------------------------------------------------


def learning_rate(epoch: int, epochs: int) -> float:
    """The authors' CIFAR schedule: ``LR``, divided by 10 at half and at three quarters."""
    return LR * 0.1 ** (epoch >= epochs * 0.5) * 0.1 ** (epoch >= epochs * 0.75)


def train(model: MSDNet, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int,
          log=print) -> None:
    """Train every exit jointly: loss = the sum of the exits' cross-entropies."""
    optimiser = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM,
                                weight_decay=WEIGHT_DECAY)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(epochs):
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(epoch, epochs)
        total = 0.0
        for batch in torch.randperm(len(y), generator=order).split(BATCH):
            loss = sum(F.cross_entropy(logits, y[batch]) for logits in model(x[batch]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        if epoch == 0 or (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            log(f"epoch {epoch + 1:3d}/{epochs}: summed loss {total / len(y):.4f}")


def softmax_outputs(model: MSDNet, x: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities of every exit, ``[exits, samples, classes]``, in eval mode."""
    model.eval()
    with torch.no_grad():
        return torch.stack([torch.softmax(logits, dim=1) for logits in model(x)])


def saved_outputs(model: MSDNet, x: torch.Tensor, y: torch.Tensor, val: np.ndarray,
                  test: np.ndarray) -> SavedOutputs:
    """The validation and test outputs, in the authors' four-part form (checked by msdprof)."""
    val_i, test_i = torch.as_tensor(val), torch.as_tensor(test)
    return outputs_from({"val_pred": softmax_outputs(model, x[val_i]), "val_target": y[val_i],
                         "test_pred": softmax_outputs(model, x[test_i]), "test_target": y[test_i]},
                        OUTPUTS, OPTIONS.nBlocks)


def exit_accuracies(pred: torch.Tensor, target: torch.Tensor) -> list[float]:
    """Top-1 accuracy (%) of each exit when every image is classified there."""
    return [float((p.argmax(dim=1) == target).sum()) * 100.0 / len(target) for p in pred]


def digits_costs() -> ExitCosts:
    return exit_costs(OPTIONS, input_size=SIDE)


def analyse(outputs: SavedOutputs) -> tuple[ExitCosts, tuple[Calibration, ...]]:
    """The per-exit costs and the geometric family calibrated on ``outputs``."""
    costs = digits_costs()
    return costs, budgeted_batch(costs, outputs, geometric_family(len(costs)))


@dataclass(frozen=True)
class ExitCheck:
    """What :meth:`MSDNet.early_exit` did with one calibration's thresholds on the test images."""

    p: int
    lazy: bool
    images_per_exit: tuple[int, ...]
    correct: int

    def agrees(self, row: Calibration) -> bool:
        return self.images_per_exit == row.test.exit_counts and self.correct == row.test.correct


def early_exit_checks(model: MSDNet, x_test: torch.Tensor, y_test: torch.Tensor,
                      rows: Sequence[Calibration]) -> list[ExitCheck]:
    """Run the trained network's early exit (eager and lazy) with every calibration's thresholds."""
    model.eval()
    checks = []
    for row in rows:
        for lazy in (False, True):
            result = model.early_exit(x_test, row.thresholds, lazy=lazy)
            correct = int((result.prediction == y_test).sum())
            checks.append(ExitCheck(row.distribution.p, lazy, result.images_per_exit, correct))
    return checks


def state_bytes(model: MSDNet) -> bytes:
    """``torch.save(model.state_dict())`` as bytes (float32 weights and BatchNorm statistics)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def inputs_bytes(x: torch.Tensor) -> bytes:
    """Network input ``[N, 3, side, side]`` as a compressed ``.npz`` holding the array ``x``."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=x.numpy())
    return buffer.getvalue()


# --- the page ---------------------------------------------------------------------------------


def _m(value: int | Fraction, divisor: float) -> str:
    return scaled(round(value), divisor)


def exit_table(costs: ExitCosts, outputs: SavedOutputs) -> str:
    """Markdown: per exit, the cumulative cost (eager and lazy, exact) and the test accuracy when
    every test image is classified there."""
    accuracy = exit_accuracies(outputs.test_pred, outputs.test_target)
    lines = ["| exit | layer | eager ops | lazy ops | lazy saves % | params (eager) | test acc % |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for e, acc in zip(costs, accuracy):
        saves = 100 * (e.macs - e.lazy_macs) / e.macs
        lines.append(f"| {e.exit} | {e.layer} | {e.macs:,} | {e.lazy_macs:,} | {saves:.1f} | "
                     f"{e.params:,} | {acc:.2f} |")
    return "\n".join(lines) + "\n"


def calibration_table(costs: ExitCosts, rows: Sequence[Calibration]) -> str:
    """Markdown: per member of the geometric family, accuracy and expected cost per test image
    (the figures `msdprof budget --logits` prints, in the same units)."""
    divisor, prefix = op_scale(costs.total_macs)
    exits = " ".join(str(k) for k in range(1, len(costs) + 1))
    lines = [f"| p | val acc % | test acc % | test % leaving at exit {exits} | "
             f"expected eager {prefix} ops | expected lazy {prefix} ops |",
             "|---:|---:|---:|:---|---:|---:|"]
    for r in rows:
        leaving = " ".join(f"{100 * float(f):.1f}" for f in r.test.exit_fractions)
        lines.append(f"| {r.distribution.p} | {r.val.accuracy:.2f} | {r.test.accuracy:.2f} | "
                     f"{leaving} | {_m(r.macs, divisor)} | {_m(r.lazy_macs, divisor)} |")
    return "\n".join(lines) + "\n"


def check_section(rows: Sequence[Calibration], checks: Sequence[ExitCheck]) -> str:
    """Markdown: the detailed check at :data:`CHECK_P` and the count over the whole family."""
    by_p = {r.distribution.p: r for r in rows}
    row = by_p[CHECK_P]
    thresholds = ", ".join("1e8" if t >= 1e8 else "-1e8" if t <= -1e8 else f"{t:.6g}"
                           for t in row.thresholds)
    lines = [f"Thresholds calibrated for p = {CHECK_P}: {thresholds}.", "",
             "| on the 360 test images | images leaving at exit 1..5 | correct | test acc % |"
             .replace("360", str(row.test.samples)),
             "|:---|:---|---:|---:|",
             f"| calibration (`budgeted_batch`, saved outputs) | "
             f"{' '.join(map(str, row.test.exit_counts))} | {row.test.correct} | "
             f"{row.test.accuracy:.2f} |"]
    for c in checks:
        if c.p == CHECK_P:
            how = "lazy=True" if c.lazy else "lazy=False"
            lines.append(f"| `MSDNet.early_exit(x, thresholds, {how})` on the trained network | "
                         f"{' '.join(map(str, c.images_per_exit))} | {c.correct} | "
                         f"{c.correct * 100.0 / row.test.samples:.2f} |")
    lines.append("")
    for lazy in (False, True):
        mine = [c for c in checks if c.lazy == lazy]
        agree = sum(c.agrees(by_p[c.p]) for c in mine)
        differ = [c.p for c in mine if not c.agrees(by_p[c.p])]
        lines.append(f"- `lazy={lazy}`: the early exit takes exactly the exits and gets exactly the "
                     f"correct count the calibration predicts for {agree} of the {len(mine)} "
                     f"members of the family" + (f" (differs at p = {differ})." if differ else "."))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Run:
    """How the outputs were made: the command's arguments and what the run measured."""

    out: str
    epochs: int
    seed: int
    train_seconds: float
    sizes: tuple[int, int, int]
    params: int


def cli_options() -> str:
    """The options of :data:`OPTIONS` that differ from the authors' defaults, as `msdprof` takes
    them (options without a preset start from those defaults)."""
    default = Options().as_dict()
    return " ".join(f"--{k} {format_value(v)}" for k, v in OPTIONS.as_dict().items() if v != default[k])


def latency_command(run: Run) -> str:
    """``msdprof latency`` on the trained network and its test images, with the thresholds
    calibrated on the saved validation outputs for p = :data:`CHECK_P`."""
    return (f"msdprof latency {cli_options()} --input-size {SIDE} --weights {run.out}/{WEIGHTS} "
            f"--inputs {run.out}/{TEST_INPUTS} --logits {run.out}/{OUTPUTS} --p {CHECK_P}")


def command(run: Run) -> str:
    return f"python examples/digits.py --out {run.out} --epochs {run.epochs} --seed {run.seed}"


def page(run: Run, costs: ExitCosts, outputs: SavedOutputs, rows: Sequence[Calibration],
         checks: Sequence[ExitCheck]) -> str:
    accuracy = exit_accuracies(outputs.test_pred, outputs.test_target)
    best = max(rows, key=lambda r: (r.test.accuracy, -r.macs))
    divisor, prefix = op_scale(costs.total_macs)
    n_train, n_val, n_test = run.sizes
    right = [round(a * n_test / 100) for a in accuracy]
    spread = max(right) - min(right)
    cli = f"msdprof budget {cli_options()} --input-size {SIDE} --logits {run.out}/{OUTPUTS}"
    return f"""# A tiny MSDNet trained on scikit-learn's digits: what a budget buys

> **These numbers come from one training run** (seed {run.seed}, {run.epochs} epochs) on this
> project's CPU machine ({platform.machine()}, {THREADS} torch threads) with torch
> {torch.__version__.split('+')[0]}; on another machine or version they may differ slightly.
> The costs (operation counts) do not depend on the run. Regenerate everything with
> `make digits DIGITS_OUT={run.out}`, i.e. `{command(run)}`.

## What was trained

- **Data**: `sklearn.datasets.load_digits`, {sum(run.sizes)} grey 8×8 images of the digits 0–9
  (shipped with scikit-learn). Each is scaled to [-1, 1], upsampled bilinearly to {SIDE}×{SIDE}
  (the smallest side this network takes: `msdnet.config.input_size_range`) and its grey channel
  repeated 3 times. Split with seed {run.seed}: {n_train} train, {n_val} validation, {n_test} test
  images, disjoint.
- **Network** (`msdnet.build_model`, {run.params:,} parameters, {OPTIONS.nBlocks} exits):
  {OPTIONS.describe()}; input 3×{SIDE}×{SIDE}.
- **Training**: every exit jointly, loss = the sum of the exits' cross-entropies (as the authors
  do); SGD, lr {LR} divided by 10 at 50% and 75% of the epochs, momentum {MOMENTUM}, weight decay
  {WEIGHT_DECAY}, batch {BATCH}, {run.epochs} epochs: **{run.train_seconds:.0f} s** of training
  on {THREADS} CPU threads.
- **Outputs**: the softmax of every exit for the validation and test images,
  `[exits, samples, classes]`, saved with `msdprof.saved_outputs.save_outputs` as
  [{OUTPUTS}]({OUTPUTS}).
- **The network itself**: its state dict, [{WEIGHTS}]({WEIGHTS}), and the {n_test} test images as
  network input, [{TEST_INPUTS}]({TEST_INPUTS}) (array `x`, `[{n_test}, 3, {SIDE}, {SIDE}]`), so
  that its real early exit can be timed without training again:
  `{latency_command(run)}` (measured times: the main README, section "Measured time").

## Per exit: cost and test accuracy

Cost of one 3×{SIDE}×{SIDE} image in msdprof's `msdnet` convention (`msdprof.exit_costs`):
eager = blocks 1..k + heads 1..k, as the authors count; lazy = heads 1..k and only the feature
maps they read. Test accuracy: every test image classified at that exit.

{exit_table(costs, outputs)}
On this easy data set the exits differ by {max(accuracy) - min(accuracy):.2f} points of test
accuracy at most ({spread} of the {n_test} test images), so the curve below is nearly flat: here a
larger budget buys little accuracy, and the cheap exits are where the savings are.

## Budgeted batch: calibrated on validation, evaluated on test

For each of the authors' 39 exit distributions (fractions ∝ q^k, q = p/20), the confidence
thresholds are calibrated on the {n_val} validation images and applied to the {n_test} test
images (`msdprof.budgeted_batch`, exactly as the authors' `adaptive_inference.py`). The
highest test accuracy in the table, {best.test.accuracy:.2f}%, is reached most cheaply at
p = {best.distribution.p}, for an expected {_m(best.macs, divisor)} {prefix} ops per image eager
({_m(best.lazy_macs, divisor)} lazy); the last exit alone costs
{scaled(costs.total_macs, divisor)} {prefix} ops and gets {accuracy[-1]:.2f}%.

![Test accuracy vs expected cost of the tiny MSDNet on digits]({PLOT})

{calibration_table(costs, rows)}
The same table from the saved outputs alone, without training:
`{cli}`.

## Check: the trained network's early exit agrees with the calibration

`MSDNet.early_exit` really stops: each block runs only on the images no earlier exit took. Run on
the trained network with the thresholds calibrated above, it should send exactly as many test
images out of each exit, and get exactly as many right, as the calibration predicts from the saved
outputs.

{check_section(rows, checks)}"""


# --- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="build/digits", help="folder to write (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=SEED, help="default: %(default)s")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    torch.set_num_threads(THREADS)
    torch.manual_seed(args.seed)
    x, y = load_images()
    train_i, val_i, test_i = split_indices(len(y), args.seed)
    model = build_model(OPTIONS, SIDE)
    params = sum(p.numel() for p in model.parameters())
    print(f"{len(train_i)} train / {len(val_i)} val / {len(test_i)} test images, 3x{SIDE}x{SIDE}; "
          f"{OPTIONS.describe()}; {params:,} parameters")
    start = time.perf_counter()
    train(model, x[torch.as_tensor(train_i)], y[torch.as_tensor(train_i)], args.epochs, args.seed)
    seconds = time.perf_counter() - start
    print(f"trained in {seconds:.1f} s")

    outputs = saved_outputs(model, x, y, val_i, test_i)
    costs, rows = analyse(outputs)
    x_test, y_test = x[torch.as_tensor(test_i)], y[torch.as_tensor(test_i)]
    checks = early_exit_checks(model, x_test, y_test, rows)
    run = Run(args.out, args.epochs, args.seed, seconds, (len(train_i), len(val_i), len(test_i)), params)

    save_outputs(out / OUTPUTS, outputs, force=True)
    write_atomic(out / WEIGHTS, state_bytes(model), force=True)
    write_atomic(out / TEST_INPUTS, inputs_bytes(x_test), force=True)
    write_atomic(out / PLOT, accuracy_plot(costs, outputs, rows, NAME), force=True)
    write_atomic(out / PAGE, page(run, costs, outputs, rows, checks), force=True)

    print("test accuracy per exit (%):",
          " ".join(f"{a:.2f}" for a in exit_accuracies(outputs.test_pred, outputs.test_target)))
    print(f"early exit agrees with the calibration: "
          f"{sum(c.agrees(rows[c.p - 1]) for c in checks)} of {len(checks)} (39 p, eager and lazy)")
    print(f"wrote {out / PAGE}, {out / PLOT}, {out / OUTPUTS}, {out / WEIGHTS}, {out / TEST_INPUTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
