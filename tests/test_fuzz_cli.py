"""Fuzz the command line (issue 17): any mix of options and odd values gives exit code 0 or 2, never a
traceback, and writes nothing when it fails.  Hypothesis draws short argument lists from the real
option names and a pool of good, bad and absurd values; each runs in-process in an empty folder.
Values that only cost time (huge but valid sizes) are in the error tables, not here, to keep the
run bounded."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msdprof.cli import main

OPTIONS = ["--nBlocks", "--step", "--base", "--stepmode", "--nChannels", "--growthRate", "--grFactor",
           "--bnFactor", "--prune", "--reduction", "--bottleneck", "--data", "--input-size", "--preset",
           "--convention", "--format", "-o", "--anytime", "--fractions", "--max-macs", "--sort", "--top",
           "--exit", "--model", "--nblocks", "--compare", "--all", "--html", "--"]
VALUES = ["0", "1", "2", "3", "-1", "1.5", "1e3", "nan", "inf", "", " ", "x", "true", "maybe", "1-2",
          "1-2-4", "2:3", "3:2", "1:2:0", "even", "lin_grow", "min", "ImageNet", "cifar100", "16x16",
          "0x0", "cifar10-batch", "imagenet", "json", "csv", "yaml", "out.txt", "out.svg", "m.py:f",
          "300M", "0.5,0.5", "-", "☃", "1" * 30, "out.md", "r.html"]


@pytest.mark.parametrize("command", ["count", "graph", "budget", "sweep", "report"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.lists(st.sampled_from(OPTIONS + VALUES), max_size=5))
def test_any_arguments_exit_0_or_2_and_a_failure_writes_nothing(command, args, tmp_path, capsys):
    home = os.getcwd()
    os.chdir(tmp_path)
    try:
        before = set(os.listdir(tmp_path))
        code = main([command, *args])
    finally:
        os.chdir(home)
    _, err = capsys.readouterr()
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("msdprof: error: ") and err.count("\n") == 1, err
        assert set(os.listdir(tmp_path)) == before
    for name in set(os.listdir(tmp_path)) - before:
        os.remove(tmp_path / name)
