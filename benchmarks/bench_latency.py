"""What ``msdprof latency`` measures, as the docs show it: the commands of its section, each run
as a user runs it (a fresh process, imports included), their output printed whole.

    python benchmarks/bench_latency.py [--save]

1. ``msdprof latency --preset imagenet-step4 --format markdown``: an MSDNet msdprof builds, so the
   eager and lazy programs to each exit and the time to each output within one full forward, with
   ``--plot`` (ms and M ops per exit);
2. ``msdprof latency --model examples/early_exit_models.py:SDNResNet --input-size 32 --batch 8
   --format markdown``: a model msdprof did not build, the in-forward times alone;
3. the early exit of the tiny MSDNet trained on scikit-learn's digits (``reports/digits/``: its
   weights, test images and saved outputs are committed) with the thresholds calibrated for
   ``--p 20``, measured against the two predictions.

CPU, 1 torch thread (the command's default), one run each: no targets (a re-run here, or on another
machine, moves the figures by about what the IQRs show).  ``--save`` also writes what it prints to
``benchmarks/results/bench_latency.json`` and the first command's plot to ``docs/bench_latency.svg``
(the docs' latency page shows both); without it the plot is discarded.
Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from results import add_save_option, recorded

ROOT = Path(__file__).resolve().parents[1]
DIGITS = "reports/digits/digits"
PLOT = "bench_latency.svg"
COMMANDS = (
    "--preset imagenet-step4 --format markdown --plot {plot}",
    "--model examples/early_exit_models.py:SDNResNet --input-size 32 --batch 8 --format markdown",
    f"--nBlocks 5 --base 1 --nChannels 8 --growthRate 4 --input-size 17 --weights {DIGITS}-weights.pt "
    f"--inputs {DIGITS}-test-inputs.npz --logits {DIGITS}-outputs.npz --p 20 --format markdown",
)


def latency(arguments: str) -> str:
    """What ``msdprof latency ARGUMENTS`` prints, run in a fresh process from the repository root."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "msdprof.cli", "latency", *arguments.split()], cwd=ROOT,
                          env=env, check=True, capture_output=True, text=True).stdout


def main() -> int:
    args = add_save_option(argparse.ArgumentParser(description=__doc__.split("\n\n")[0])).parse_args()
    with tempfile.TemporaryDirectory() as tmp, recorded("bench_latency", args.save):
        plot = Path(tmp, PLOT)
        for arguments in COMMANDS:
            shown = arguments.replace(" --plot {plot}", f" --plot {PLOT}")
            print(f"$ msdprof latency {shown}\n")
            print(latency(arguments.format(plot=plot)).rstrip() + "\n")
        if args.save:
            (ROOT / "docs" / PLOT).write_bytes(plot.read_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
