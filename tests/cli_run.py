"""``run(capsys, *argv)``: the ``msdprof`` command run in-process, as the CLI tests call it."""

from __future__ import annotations

from msdprof.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``msdprof ARGV`` in-process: its exit code, standard output and standard error."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def picture(directory, name: str):
    """The one file ``report -o`` wrote for ``name`` (``r-cost.svg``) in ``directory``:
    ``r-cost-XXXXXXXX.svg``, named with 8 hex digits of its content's SHA-256."""
    import re
    from pathlib import Path

    from msdprof.files.output import stamped_name

    stem, suffix = name.rsplit(".", 1)
    found = [p for p in Path(directory).iterdir()
             if re.fullmatch(rf"{re.escape(stem)}-[0-9a-f]{{8}}\.{suffix}", p.name)]
    assert len(found) == 1, found
    assert found[0].name == stamped_name(name, found[0].read_bytes())
    return found[0]
