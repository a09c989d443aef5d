"""`msdprof --help` and `msdprof CMD --help` start fast: they import neither torch, networkx nor
matplotlib (each costs seconds on a small machine); the commands import them when they run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from msdprof.core import conventions, counting
from msdprof.cli import COMMANDS, build_parser

HEAVY = ("torch", "networkx", "matplotlib")

# The subcommands as the parser names them (other branches add commands: every one is checked).
SUBCOMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)


def modules_loaded_by(argv: list[str]) -> tuple[str, list[str]]:
    """(stdout, the HEAVY modules in sys.modules) after `msdprof ARGV` in a fresh interpreter."""
    code = (
        "import sys\n"
        "from msdprof.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout, eval(result.stderr.strip().splitlines()[-1])


def test_every_command_is_checked():
    assert len(SUBCOMMANDS) == len(COMMANDS) and {"count", "graph", "report", "budget", "sweep"} <= set(SUBCOMMANDS)


def test_top_level_help_imports_no_heavy_module():
    out, loaded = modules_loaded_by(["--help"])
    assert "usage: msdprof" in out
    assert loaded == []


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_command_help_imports_no_heavy_module(command):
    out, loaded = modules_loaded_by([command, "--help"])
    assert f"usage: msdprof {command}" in out
    assert loaded == []


def test_a_command_that_counts_does_import_torch():  # the check above can fail: it sees torch
    _, loaded = modules_loaded_by(["count", "--format", "json"])
    assert "torch" in loaded


@pytest.mark.parametrize("suffix", ["json", "dot"])
def test_an_msdnet_graph_as_data_is_written_without_torch(tmp_path, suffix):  # from the layer plan alone
    path = tmp_path / f"layout.{suffix}"
    _, loaded = modules_loaded_by(["graph", "--preset", "cifar10-anytime", "--dense", "-o", str(path)])
    assert path.stat().st_size > 0 and "torch" not in loaded


def test_importing_the_packages_imports_no_torch():
    code = "import sys, msdnet, msdprof; msdnet.PRESETS; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_lazy_package_names_resolve():
    import msdnet
    import msdprof

    assert msdprof.exit_costs.__module__ == "msdprof.core.exits"
    assert msdprof.layout_graph.__module__ == "msdprof.analysis.graph"
    assert msdnet.MSDNet.__module__ == "msdnet.model"
    with pytest.raises(AttributeError):
        msdprof.no_such_name


def test_the_torch_free_convention_help_matches_the_counting_module():
    assert conventions.CONVENTION_HELP == counting.CONVENTION_HELP
    assert list(conventions.CONVENTION_HELP) == list(counting.CONVENTIONS)
