"""``run(capsys, *argv)``: the ``msdprof`` command run in-process, as the CLI tests call it."""

from __future__ import annotations

from msdprof.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``msdprof ARGV`` in-process: its exit code, standard output and standard error."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
