"""What every ``msdprof`` command shares: the parser that reports a mistake in one line, the
network, model, convention, format and output options, and how a result is shown or written.

A user mistake is an :class:`~msdnet.options.OptionError` or a :class:`UsageError`, printed by
:func:`msdprof.cli.entry.main` as one line, exit code 2; nothing is written.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from msdnet import DEFAULT_PRESET, PRESETS, Options, resolve
from msdnet.options import OPTION_NAMES, OptionError

from ..core.conventions import CONVENTION_HELP
from ..core.units import INPUT_DTYPE_NAMES, INPUT_FORMS
from ..files.output import check_writable, write_atomic

# Everything that imports torch, networkx or matplotlib (the counting, the graph, the views) is
# imported by the command that uses it, inside its run() function: `msdprof --help` and
# `msdprof CMD --help` import none of them (tests/test_help.py), and start in a fraction of a second.

OPTION_HELP = {
    "nBlocks": "number of blocks = exits (authors' default 1)",
    "stepmode": "layers per block after the first: even | lin_grow (default even)",
    "step": "layers added per block after the first (default 1)",
    "base": "layers in the first block (default 4)",
    "nChannels": "stem channels at scale 0 (default 32; CIFAR recipes 16)",
    "growthRate": "channels each layer adds at scale 0 (default 6; ImageNet 16)",
    "grFactor": "per-scale channel multipliers, e.g. 1-2-4 (default); nScales = its length",
    "bnFactor": "per-scale bottleneck width factors (default 1-2-4)",
    "prune": "how scales are dropped in deep layers: max | min (default max)",
    "reduction": "transition compression, 0..1; 0 = no transitions (default 0.5)",
    "bottleneck": "1x1 bottleneck before each 3x3 conv: true | false (default true)",
    "data": "cifar10 | cifar100 | ImageNet: classes, stem, head, input size (default cifar10)",
}


class UsageError(Exception):
    """A command-line mistake argparse found; printed as one line, exit code 2."""


class CommandFailed(Exception):
    """A command that ran and found something wrong that is not the user's mistake (exit code 1)."""


def one_line(text: str) -> str:
    """``text`` with its control characters escaped (``a\\nb``): what msdprof echoes stays on one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """As argparse's, with the closest choice: ``invalid choice: 'cont' (choose from count,
        graph, ...); did you mean count?``."""
        if action.choices is not None and value not in action.choices:
            choices = [str(c) for c in action.choices]
            close = difflib.get_close_matches(str(value).lower(), choices, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise argparse.ArgumentError(action, f"invalid choice: {value!r} (choose from "
                                                 f"{', '.join(choices)}){hint}")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        """As argparse's, but an unknown option is an error here, where this (sub)command's options
        are known: ``unrecognized arguments: --nblocks 7; did you mean --nBlocks?``."""
        namespace, extras = super().parse_known_args(args, namespace)
        unknown = [arg for arg in extras if arg.startswith("-")]
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self.option_hint(unknown[0])}")
        return namespace, extras

    def option_hint(self, typed: str) -> str:
        """``; did you mean --nBlocks?`` for an option close to ``typed`` (any letter case), else ``""``."""
        by_lower = {s.lower(): s for action in self._actions for s in action.option_strings
                    if s.startswith("--")}
        close = difflib.get_close_matches(typed.split("=", 1)[0].lower(), by_lower, n=1, cutoff=0.7)
        return f"; did you mean {by_lower[close[0]]}?" if close else ""


def add_convention_option(parser: argparse.ArgumentParser, what: str, explain: bool = False) -> None:
    """``--convention NAME``: ``what`` says what it is the unit of; ``explain`` spells out each."""
    names = "; ".join(f"{k}: {v}" for k, v in CONVENTION_HELP.items()) if explain else ", ".join(CONVENTION_HELP)
    parser.add_argument("--convention", metavar="NAME",
                        help=f"{what}: {names} (default: msdnet for an MSDNet, macs for a --model "
                             "of any other kind)")


def add_format_option(parser: argparse.ArgumentParser, formats: Sequence[str], more: str = "") -> None:
    """``--format FMT`` among ``formats`` (the first, ``table``, is the default)."""
    parser.add_argument("--format", default="table", metavar="FMT",
                        help=" | ".join(formats) + " (default table: rich in a terminal, plain when "
                             "piped); json and csv hold exact integers" + more)


def add_network_options(parser: argparse.ArgumentParser) -> None:
    """``--preset``, every MSDNet option under the authors' name, and ``--input-size``."""
    group = parser.add_argument_group(
        "network",
        f"A preset, options, or both (options override the preset). With neither: the "
        f"'{DEFAULT_PRESET}' recipe; options without a preset start from the authors' defaults.",
    )
    group.add_argument("--preset", metavar="NAME", help="one of: " + ", ".join(PRESETS))
    for name in OPTION_NAMES:
        group.add_argument(f"--{name}", metavar="V", help=OPTION_HELP[name])
    group.add_argument(
        "--input-size", metavar="SIZE", action=OnceAction,
        help="input image side or HxW in pixels (default 32 for CIFAR, 224 for ImageNet); with "
             f"--model its inputs: {INPUT_FORMS}",
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--model-kwargs`` and ``--checkpoint``: any early-exit network of the user's."""
    group = parser.add_argument_group(
        "your own model",
        "Any nn.Module whose forward returns one output per exit (a list or tuple, exit 1 first, "
        "or a dict; --outputs picks them out of anything else). Counted as built, on zero inputs "
        "of --input-size or on the saved --inputs (one of them is needed).",
    )
    add_factory_options(group)
    add_model_io_options(group)


def add_factory_options(group: Any) -> None:
    """``--model``, ``--model-kwargs``, ``--checkpoint`` and ``--debug`` in ``group``."""
    group.add_argument("--model", metavar="FILE.py:FACTORY",
                       help="the factory returning the model: FILE.py:FACTORY or "
                            "package.module:FACTORY (called with no arguments unless --model-kwargs)")
    group.add_argument("--model-kwargs", metavar="JSON",
                       help="keyword arguments for the factory, a JSON object: '{\"width\": 8}'")
    group.add_argument("--checkpoint", metavar="FILE",
                       help="a state dict to load (torch.load weights_only=True; a 'state_dict' "
                            "key and 'module.' prefixes are understood); counts do not depend on it")
    group.add_argument("--debug", action="store_true",
                       help="when your model's code raises, also print its traceback")


def add_batch_option(parser: argparse.ArgumentParser, more: str = "") -> None:
    """``--batch N``: the batch ``--memory`` is for."""
    parser.add_argument("--batch", metavar="N",
                        help="with --memory: inputs per forward pass (default 1); with --model, "
                             "only the inputs that carry the batch are scaled: those whose first "
                             "dimension is the first input's (the table says which)" + more)


def memory_batch(args: argparse.Namespace) -> int:
    """The ``--batch`` of ``--memory`` (1 when not given); refuses ``--batch`` without ``--memory``."""
    if args.batch is None:
        return 1
    if args.memory in (None, False):
        raise UsageError("--batch is the batch of --memory; give --memory too")
    from ..core.memory import check_batch

    return check_batch(args.batch)


def given_options(args: argparse.Namespace) -> dict[str, str]:
    """The MSDNet options given on the command line, by name, as typed."""
    return {name: getattr(args, name) for name in OPTION_NAMES if getattr(args, name) is not None}


def user_model(args: argparse.Namespace) -> Any:
    """The model of ``--model`` (``None`` without it); refuses MSDNet options beside it."""
    if getattr(args, "model", None) is None:
        for option in ("model-kwargs", "checkpoint"):
            if getattr(args, option.replace("-", "_"), None) is not None:
                raise OptionError(option, getattr(args, option.replace("-", "_")), "needs --model")
        refuse_model_io(args)
        return None
    clash = ["preset"] * (args.preset is not None) + list(given_options(args))
    if clash:
        raise OptionError(clash[0], getattr(args, clash[0]),
                          "is an MSDNet option: --model counts your model as built; give one or the other")
    if args.input_size is None and args.inputs is None:
        raise OptionError("input-size", "missing", "--model needs its inputs: --input-size SIZE (e.g. "
                                                   "3x32x32 or 1x128:long) or --inputs FILE")
    from ..files.user_model import load_model

    return load_model(args.model, args.model_kwargs, args.checkpoint)


def refuse_meta(model: Any, option: str, value: Any, what: str, fix: str) -> None:
    """An :class:`OptionError` naming ``option`` (its ``value``) when a tensor of ``model`` is on
    the ``meta`` device, where it holds no values: a model built on meta (or only partly loaded)
    cannot be run.  ``what``: the model as the message names it; ``fix``: where to count it instead."""
    tensors = (*model.named_parameters(), *model.named_buffers())
    meta = next((name for name, t in tensors if t.is_meta), None)
    if meta is not None:
        raise OptionError(option, value, f"{what}has no weights to run: its {meta} is on the meta "
                                         f"device (no values); {fix}, or load its weights with "
                                         "--checkpoint FILE")


# --- your own model's inputs and outputs (--input-size, --input-dtype, --inputs, --outputs) --------
# One helper for every command taking --model (count, graph, report, budget, latency, compare):
# the command adds them with add_model_options and passes model_io(args) to the API.


class OnceAction(argparse.Action):
    """An option that may be given once: given twice, a one-line error saying how to give several
    values in one (``--input-size 1x128,1x128``) instead of argparse keeping the last."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: Any = None) -> None:
        if getattr(namespace, self.dest, None) is not None:
            raise UsageError(f"{option_string} is given twice: give several inputs in one, joined by "
                             f"commas ({option_string} {getattr(namespace, self.dest)},{values})")
        setattr(namespace, self.dest, values)


def add_model_io_options(group: Any) -> None:
    """``--input-dtype``, ``--inputs FILE`` and ``--outputs``, beside ``--input-size``."""
    group.add_argument("--input-dtype", metavar="DTYPE",
                       help="dtype of the --input-size inputs given without one: "
                            f"{', '.join(INPUT_DTYPE_NAMES)} (default: the model's floating-point "
                            "dtype); long for token ids: --input-size 1x128 --input-dtype long")
    group.add_argument("--inputs", metavar="FILE", nargs="+",
                       help="saved example inputs instead of --input-size, read without running code "
                            "(torch.load weights_only=True; .npz: numpy allow_pickle=False): a tensor, "
                            "a tuple or list (positional) or a dict (keyword inputs), of tensors or of "
                            "tuples, lists and dicts of them (a cache as (key, value) per layer; in an "
                            ".npz: arrays by name, but one array alone or arr_0, arr_1 ... positional); "
                            "latency times this batch (and takes an MSDNet's images [N, 3, H, W] too); "
                            "count takes several files, one sample each (see --sample-axis)")
    group.add_argument("--outputs", metavar="PATH|FILE.py:FUNCTION",
                       help="pick one tensor per exit: a key path taken of each exit's output (0 for "
                            "a model returning [(logits, features), ...]) or of what the model "
                            "returns (exit_logits for {'exit_logits': [...], 'past_key_values': ...}; "
                            "steps joined by dots: 0.logits), or a function given what the model "
                            "returns and returning one tensor per exit")


def model_io(args: argparse.Namespace) -> dict[str, Any]:
    """The API's ``input_size``, ``inputs`` and ``outputs`` for ``--model`` (see
    :func:`msdprof.exit_costs`): ``--input-size`` with ``--input-dtype``, the tensors of
    ``--inputs``, ``--outputs`` as an index, key or function."""
    from ..core.dataflow import parse_inputs
    from ..core.units import shapes_text
    from ..files.user_model import load_factory, read_inputs

    if args.input_dtype is not None and args.input_size is None:
        raise OptionError("input-dtype", args.input_dtype, "is the dtype of --input-size: give --input-size "
                                                           "(a saved --inputs file has its own dtypes)")
    outputs: Any = args.outputs
    if outputs is not None:
        text = outputs.strip()
        if text.lstrip("-").isdigit():
            outputs = int(text)
        elif ":" in text:
            outputs = load_factory(text, option="outputs")
        elif not all(step.isidentifier() or step.lstrip("-").isdigit() for step in text.split(".")):
            raise OptionError("outputs", outputs, "must be an index (0), a key (logits), a key path "
                                                  "(exit_logits, 0.logits) or FILE.py:FUNCTION")
        else:
            outputs = text
    sizes = args.input_size if args.input_dtype is None else parse_inputs(args.input_size, args.input_dtype)
    if args.inputs is None:
        return {"input_size": sizes, "inputs": None, "outputs": outputs}
    files, by_axis = [args.inputs] if isinstance(args.inputs, str) else args.inputs, getattr(args, "sample_axis", False)
    if (len(files) > 1 or by_axis) and not hasattr(args, "sample_axis"):
        raise OptionError("inputs", " ".join(files), "takes one file here: several samples are counted by "
                                                     "msdprof count")
    samples = [read_inputs(file) for file in files]
    if by_axis:
        samples = [sample for file, inputs in zip(files, samples) for sample in split_samples(inputs, file)]
    for file, inputs in zip(files * (len(samples) // len(files)), samples):
        if sizes is not None:  # both: the file must hold inputs of these sizes, in any batch
            want = parse_inputs(sizes)
            if [(s.name, s.shape[1:]) for s in want] != [(n, tuple(t.shape[1:])) for n, t in inputs.leaves]:
                raise OptionError("inputs", file, f"holds {shapes_text(inputs.shapes)}: not the inputs "
                                  f"--input-size {args.input_size} says ({shapes_text(s.shape for s in want)}, "
                                  "any batch); give one or the other")
    if len(samples) > 1:
        return {"input_size": None, "samples": samples, "outputs": outputs}
    return {"input_size": None, "inputs": samples[0], "outputs": outputs}


def split_samples(inputs: Any, file: str) -> list[Any]:
    """The samples of ``--sample-axis``: every tensor of ``inputs`` (read from ``file``) cut along its
    first axis, sample i holding item i of each (that axis gone)."""
    sizes = {int(t.shape[0]) if t.dim() else 0 for t in inputs.tensors}
    if len(sizes) != 1 or 0 in sizes:
        raise OptionError("inputs", file, "has no common first axis to take samples from (--sample-axis): "
                                          "its tensors' first dimensions are "
                                          + ", ".join(str(tuple(t.shape)[:1] or "scalar") for t in inputs.tensors))
    return [inputs.map(lambda t, i=i: t[i]) for i in range(sizes.pop())]


def typed_io(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """``--input-size``, ``--input-dtype``, ``--inputs`` and ``--outputs`` as typed (to show the
    command that remakes a result)."""
    def typed(value: Any) -> str:
        return " ".join(value) if isinstance(value, list) else value

    return tuple((option, typed(getattr(args, option.replace("-", "_")))) for option in
                 ("input-size", "input-dtype", "inputs", "outputs")
                 if getattr(args, option.replace("-", "_"), None) is not None)


def refuse_model_io(args: argparse.Namespace, why: str = "an MSDNet is run on one image of its plan") -> None:
    """Without ``--model``: ``--input-dtype``, ``--inputs`` and ``--outputs`` are refused, saying
    ``why``."""
    for option in ("input-dtype", "outputs") + ("inputs",) * (not getattr(args, "msdnet_inputs", False)):
        value = getattr(args, option.replace("-", "_"), None)
        if value is not None:
            raise OptionError(option, " ".join(value) if isinstance(value, list) else value,
                              f"needs --model ({why})")
    if getattr(args, "sample_axis", False):
        raise OptionError("sample-axis", "given", f"needs --model and --inputs ({why})")


def network_options(args: argparse.Namespace) -> tuple[Options, str | None]:
    """The options the command line names, and the preset name to show (if one was used)."""
    given = given_options(args)
    name = args.preset if args.preset is not None else (None if given else DEFAULT_PRESET)
    return resolve(args.preset, **given), name


def output_name(text: str) -> str:
    """An ``-o`` value: refuses ``''`` (which would otherwise mean standard output)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a file, not ''")
    return text


def add_output_options(parser: argparse.ArgumentParser, required: bool = False, quiet: str = "") -> None:
    """``-o FILE``, ``--force`` and ``--quiet`` (``quiet``: what else it silences)."""
    parser.add_argument("-o", "--output", metavar="FILE", required=required, type=output_name,
                        help="write to FILE" + ("" if required else " instead of standard output"))
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_quiet_option(parser, quiet)


def add_quiet_option(parser: argparse.ArgumentParser, more: str = "") -> None:
    parser.add_argument("--quiet", action="store_true",
                        help="no line on stderr saying what was written where" + more)


def results_stream(args: argparse.Namespace) -> Any:
    """Where results go: the standard output :func:`msdprof.cli.entry.main` set aside before running
    the command (``sys.stdout`` meanwhile goes to stderr, so that what the user's model prints does
    not mix with the results), else ``sys.stdout``."""
    return getattr(args, "stdout", None) or sys.stdout


def notice(args: argparse.Namespace, line: str) -> None:
    """``msdprof CMD: LINE`` on stderr, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(f"msdprof {args.command}: {line}", file=sys.stderr)


def file_list(paths: Sequence[Any], shown: int = 4) -> str:
    """``a.md, a-cost.svg`` or, past ``shown`` files, ``a.md, b.md, ... and 19 more files``."""
    names = [str(p) for p in paths]
    if len(names) <= shown:
        return ", ".join(names)
    return ", ".join(names[:shown - 1]) + f" and {len(names) - shown + 1} more files"


def emit(args: argparse.Namespace, text: str) -> None:
    """Print ``text``, or write it atomically to ``--output`` and say so on stderr."""
    if getattr(args, "output", None):
        write_atomic(args.output, text, force=args.force)
        notice(args, f"wrote {args.output}")
    else:
        results_stream(args).write(text)


def check_output_and_plot(args: argparse.Namespace) -> None:
    """Before any work: ``--output`` and ``--plot`` (an ``.svg``, not the ``-o`` file) can be
    written (existing files only with ``--force``)."""
    for option, path in (("output", args.output), ("plot", args.plot)):
        if path:
            check_writable(path, args.force, option)
    if args.plot is not None and not args.plot.lower().endswith(".svg"):
        raise OptionError("plot", args.plot, "must be an .svg file")
    if args.output and args.plot and os.path.abspath(args.output) == os.path.abspath(args.plot):
        raise OptionError("plot", args.plot, "is also the -o file; give two names")


@contextmanager
def progress(args: argparse.Namespace, what: str) -> Iterator[Callable[[int, int, str], None] | None]:
    """A rich progress bar on stderr while the block runs -- only when stderr is a terminal and
    not ``--quiet`` (else ``None``): yields ``tell(done, steps, step)`` for the API's ``progress=``
    argument.  The bar is removed when the block ends, leaving the terminal as it was."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"msdprof {args.command}: {what}", total=None)

        def tell(done: int, steps: int, step: str) -> None:
            bar.update(task, completed=done, total=steps,
                       description=f"msdprof {args.command}: {what}: {step}")

        yield tell


def show(args: argparse.Namespace, fmt: str, rich: Callable[[], Any], text: Callable[[], str]) -> None:
    """The ``table`` format in a terminal: the ``rich()`` renderable, in colour; anything else
    (another format, a pipe, ``--output``): ``text()`` through :func:`emit`."""
    out = results_stream(args)
    if fmt == "table" and not args.output and out.isatty():
        from rich.console import Console

        Console(file=out).print(rich())
    else:
        emit(args, text())
