"""The house has floors (issue 22): every import in ``msdnet/`` and ``msdprof/`` -- at module level
or inside a function -- goes to the same floor or one beneath, and no module reaches itself again
through its imports.  Read from the source with ``ast``; nothing is imported.

Floors, lowest first (``FLOORS``): msdnet's options < presets < plan < model; then msdprof's
core < files < analysis < render < cli.  A package's ``__init__`` is its lobby: the top of its own
floor (``msdprof/__init__.py`` lazily names the public API of every floor), and importing a lobby
reaches what it imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("msdnet", "msdprof")

#: The floor of each module or package, lowest first: a module takes the floor of its longest
#: listed prefix.
FLOORS = (
    "msdnet.options", "msdnet.presets", "msdnet.plan", "msdnet.model", "msdnet",
    "msdprof.core", "msdprof.files", "msdprof.analysis", "msdprof.render", "msdprof.cli", "msdprof",
)


def floor(module: str) -> int:
    """The floor of ``module``: the index in :data:`FLOORS` of its longest listed prefix."""
    prefixes = [f for f in FLOORS if module == f or module.startswith(f + ".")]
    assert prefixes, f"{module} is on no floor: add it to FLOORS"
    return FLOORS.index(max(prefixes, key=len))


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the packages under ``root``, by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of the packages that module ``name`` imports anywhere in its source (relative
    imports resolved; ``from P import m`` is an import of ``P.m`` when that is a module, else of
    ``P``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            wanted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            wanted = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                      for alias in node.names]
        else:
            continue
        for module in wanted:
            while module and module not in known:  # a name in a module: that module
                module = module.rpartition(".")[0]
            if module:
                targets.add(module)
    targets.discard(name)
    return targets


def import_graph(root: Path = ROOT) -> nx.DiGraph:
    """Module -> every module of the packages it imports."""
    known = modules(root)
    graph = nx.DiGraph()
    graph.add_nodes_from(known)
    for name, path in known.items():
        graph.add_edges_from((name, target) for target in imports(name, path, known))
    return graph


def upward_imports(graph: nx.DiGraph) -> list[str]:
    """``a -> b`` for every import that climbs a floor."""
    return sorted(f"{a} -> {b}" for a, b in graph.edges if floor(b) > floor(a))


def cycles(graph: nx.DiGraph) -> list[list[str]]:
    """Every import cycle, lobbies included (a lobby that imports its own floor's modules is fine as
    long as none of them imports the lobby back)."""
    return sorted(sorted(c) for c in nx.simple_cycles(graph))


def test_every_module_is_on_a_floor():
    assert all(floor(name) >= 0 for name in modules())


def test_every_msdnet_module_is_a_floor_of_its_own():
    """msdnet's modules are its floors, named in FLOORS: a module left beside them (a stale copy,
    as config.py once was) has no floor to be checked against."""
    assert sorted(name for name in modules() if name.startswith("msdnet.")) == sorted(
        f for f in FLOORS if f.startswith("msdnet."))


def test_no_import_climbs_a_floor():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle_in_msdnet_or_msdprof():
    assert cycles(import_graph()) == []


def test_the_floors_are_folders():
    """The folder tells the floor: every msdprof module but the lobby lives in a floor's folder."""
    flat = [name for name in modules() if name.startswith("msdprof.") and name.count(".") < 2
            and name.split(".")[1] not in {f.split(".")[1] for f in FLOORS if f.startswith("msdprof.")}]
    assert flat == []


def _copy_packages(tmp_path: Path) -> Path:
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text())
    return tmp_path


@pytest.mark.parametrize("where, line, found", [
    # the core reaching up for a table formatter, as dataflow once did
    ("msdprof/core/dataflow.py", "from ..render.formatting import OP_NAMES\n",
     "msdprof.core.dataflow -> msdprof.render.formatting"),
    # a lazy import inside a function counts the same
    ("msdprof/analysis/budget.py", "def _late():\n    from ..cli import options\n",
     "msdprof.analysis.budget -> msdprof.cli.options"),
    # msdnet's own floors: the options may not read the presets
    ("msdnet/options.py", "def _late():\n    from .presets import PRESETS\n",
     "msdnet.options -> msdnet.presets"),
])
def test_an_upward_import_is_caught(tmp_path, where, line, found):
    root = _copy_packages(tmp_path)
    (root / where).write_text((root / where).read_text() + "\n\n" + line)
    assert found in upward_imports(import_graph(root))


def test_a_cycle_within_a_floor_is_caught(tmp_path):
    """counting -> dataflow -> counting, the cycle issue 22 removed."""
    root = _copy_packages(tmp_path)
    path = root / "msdprof/core/counting.py"
    path.write_text(path.read_text() + "\n\ndef _late():\n    from .dataflow import record\n")
    assert ["msdprof.core.counting", "msdprof.core.dataflow"] in cycles(import_graph(root))
