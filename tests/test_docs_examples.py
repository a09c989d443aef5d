"""Every shell and Python block of README.md and docs/*.md runs, and every output they show is what
the command prints (issue 32).  What each kind of block means: tests/doc_blocks.py.  Blocks marked
``<!-- docs-check: WHY -->`` take long: `make docs-check` runs them (marker ``docs_check``, left out
of `make test` by the ``-m "not docs_check"`` of pyproject.toml, and counted as deselected)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import pytest

from doc_blocks import ROOT, RUN, SHOWN, all_blocks, commands, pages, printed, run_command, run_script, workspace

BLOCKS = all_blocks()


def _param(block):
    marks = [pytest.mark.docs_check] if block.long else []
    return pytest.param(block, id=block.id, marks=marks)


RUNNABLE = [_param(b) for b in BLOCKS if b.lang in RUN]


def _clone(tmp_path):
    """A fresh clone of the repository (its committed state), where a long block runs."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(tmp_path / "clone")], check=True)
    return tmp_path / "clone"


@pytest.mark.parametrize("block", RUNNABLE)
def test_the_block_runs_and_prints_what_it_shows(block, tmp_path):
    where = _clone(tmp_path) if block.long else workspace(tmp_path)
    if block.lang == "console":
        for command in commands(block.body):
            status, out = run_command(command, where, clone=bool(block.long))
            assert status == command.status, f"`{command.text}` exited {status}:\n{out}"
            if command.shown:
                assert out == command.shown, (f"`{command.text}` printed other than {block.id} shows "
                                              "(python tests/doc_blocks.py --write rewrites it)")
    else:
        result = run_script(block, where)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr


def test_every_block_is_run_or_is_a_file_shown():
    """A fence without a language, or of another one, would escape the run unnoticed."""
    odd = [f"{b.id} ({b.lang or 'no language'})" for b in BLOCKS if b.lang not in RUN + SHOWN]
    assert not odd, "give each block console, sh, python (run) or text, json, csv (shown): " + ", ".join(odd)


def test_no_text_block_shows_what_a_command_prints():
    """A command's output is shown under its ``$`` line in a console block, where it is compared;
    a text block right after a shell block would show output nothing checks."""
    for page in pages():
        found = re.findall(r"^```(?:sh|console)\n.*?^```\n+(?:[^\n`][^\n]*\n)?\n?```text\n", page.read_text(), re.S | re.M)
        assert not found, f"{page.name}: a text block follows a shell block"


def test_the_pages_hold_examples_of_every_kind():
    kinds = {b.lang for b in BLOCKS}
    assert {"console", "python"} <= kinds
    assert sum(len(commands(b.body)) for b in BLOCKS if b.lang == "console") >= 40


def test_a_long_block_says_why_and_make_docs_check_runs_it():
    longs = [b for b in BLOCKS if b.long]
    assert longs and all(len(b.long.split()) >= 3 for b in longs)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^docs-check:.*\n\t.*-m docs_check", makefile, re.M)


def test_the_readme_is_a_front_door_of_at_most_300_lines():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    for command in ("msdprof count --nBlocks 7 --stepmode lin_grow", "msdprof graph -o layout.svg",
                    "from msdprof import exit_costs", "msdprof generate", "--model examples/"):
        assert command in readme


def test_every_page_of_the_docs_is_in_the_site_navigation():
    config = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert page.name in config, f"docs/{page.name} is in no nav entry of mkdocs.yml"


def test_the_readme_says_where_its_examples_paths_run_from_before_the_first():
    """Issue 33 item 8: ``--model examples/...`` works only from the repository's root; the
    paragraph leading to the first such line says so."""
    readme = (ROOT / "README.md").read_text()
    first = readme.index("--model examples/")
    fence = readme.rindex("\n\n```", 0, first)  # the code block holding it
    lead = readme[readme.rindex("\n\n", 0, fence):fence]  # the paragraph before it
    assert "from the root of the clone" in lead and "not installed with the package" in lead


def test_the_readme_links_resolve_to_pages_of_the_docs():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert links and all((ROOT / link).exists() for link in links)


def _imported(block: str) -> set[str]:
    tree = ast.parse(block)
    found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return found | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


def test_the_python_examples_import_only_the_two_packages_of_ours():
    """Issue 22: what the docs show users is the public API, importable from ``msdprof`` and
    ``msdnet`` themselves, so that moving a module inside them breaks nobody's code."""
    ours = {m for b in BLOCKS if b.lang == "python" for m in _imported(b.body) if m.split(".")[0] in ("msdprof", "msdnet")}
    assert ours == {"msdprof", "msdnet"}


def test_every_msdprof_name_the_examples_import_is_in_all():
    import msdprof

    names = {alias.name for b in BLOCKS if b.lang == "python" for node in ast.walk(ast.parse(b.body))
             if isinstance(node, ast.ImportFrom) and node.module == "msdprof" for alias in node.names}
    assert names and names <= set(msdprof.__all__)


def test_the_docs_site_builds_strictly(tmp_path):
    """`mkdocs build --strict` (Material theme; mkdocstrings renders every name of msdprof.__all__):
    a broken link, a missing page or a docstring it cannot read fails the build."""
    pytest.importorskip("mkdocs", reason="pip install -e '.[docs]' installs MkDocs")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").exists()
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    import msdprof

    missing = [name for name in msdprof.__all__ if f'id="msdprof.{msdprof._API[name]}.{name}"' not in api]
    assert not missing, f"the API page lacks {missing}"
    assert not re.search(r":(func|class|data|attr|meth):<code>", api)  # docs/roles.py shows them as code


def test_printed_output_is_compared_without_trailing_spaces():
    assert printed("a  \nb\n\n") == "a\nb"


def test_a_console_block_is_read_as_commands_each_with_the_output_shown_under_it():
    body = ("$ msdprof count \\\n    --preset imagenet-step4\ntable\n$ python - <<'EOF'\nprint(1)\nEOF\n1\n"
            "$ msdprof count --nBlocks 0   # exit status 2\nmsdprof: error: ...\n$ msdprof graph -o g.svg\n")
    assert [(c.text.splitlines()[0], c.shown, c.status) for c in commands(body)] == [
        ("msdprof count \\", "table", 0),
        ("python - <<'EOF'", "1", 0),
        ("msdprof count --nBlocks 0   # exit status 2", "msdprof: error: ...", 2),
        ("msdprof graph -o g.svg", "", 0),
    ]
    assert commands(body)[1].text == "python - <<'EOF'\nprint(1)\nEOF"


def test_a_console_block_starting_with_output_is_refused():
    with pytest.raises(ValueError, match="starts with output"):
        commands("table\n$ msdprof count\n")


def test_the_readmes_limits_are_the_constants_that_enforce_them():
    from msdnet.options import MAX_CHANNELS, MAX_INPUT_SIDE, MAX_LAYERS, MAX_SCALES
    from msdprof.core.units import MAX_BYTES, bytes_text

    limits = re.search(r"^## Limits\n(.*)", (ROOT / "README.md").read_text(), re.S | re.M).group(1)
    limits = " ".join(limits.split())
    for said in (f"{MAX_LAYERS:,} layers", f"{MAX_CHANNELS:,} channels", f"{MAX_SCALES} scales",
                 f"{MAX_INPUT_SIDE:,}-pixel inputs", f"{bytes_text(MAX_BYTES)} of memory"):
        assert said in limits
