"""Results shown as tables wherever they are looked at, and handed to pandas: the :class:`Tabular`
mixin.

A result that inherits :class:`Tabular` shows as an HTML table in a notebook (``_repr_html_``), as
a rich table in a terminal (``__rich__``: ``rich.print(costs)``, ``Console().print(costs)``, the
REPL or IPython after ``rich.pretty.install()``) and converts to a pandas DataFrame
(:meth:`Tabular.to_pandas`: exact figures, named as the ``--format csv`` columns).

The tables are drawn on the render floor, which this floor may not import: the package's lobby
(``msdprof/__init__.py``, above every floor) hands the render floor's lookup in as
:data:`find_view` (:func:`msdprof.render.notebook.view_of`), called when a result is first shown.
A new result class gets all of this by inheriting :class:`Tabular` and adding its view (a table
and its CSV rows) to :data:`msdprof.render.notebook.VIEWS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

if TYPE_CHECKING:
    import pandas

#: pandas' own integer type holds figures up to this bound exactly (a larger one stays a Python int).
INT64_MAX = 2**63 - 1

PANDAS_MISSING = "to_pandas() needs pandas, which is not installed: pip install 'msdprof[pandas]'"


class View(Protocol):
    """How one kind of result is drawn (:mod:`msdprof.render.notebook` makes them)."""

    def rich(self, result: Any) -> Any:
        """The result's rich renderable (its table, in colour)."""

    def html(self, result: Any) -> str:
        """The result's table as self-contained HTML."""

    def records(self, result: Any) -> tuple[Sequence[str], Sequence[dict[str, Any]]]:
        """(column names, one dict per row): the result's ``--format csv`` rows, exact."""


#: The view of a result; set by msdprof's lobby to :func:`msdprof.render.notebook.view_of`.
find_view: Callable[[Any], View] | None = None


def view(result: Any) -> View:
    if find_view is None:  # msdprof/__init__.py runs before any msdprof module and sets it
        raise RuntimeError("msdprof's tables are not loaded: import msdprof first")
    return find_view(result)


class Tabular:
    """A result shown as a table in notebooks and terminals and convertible to pandas (module
    docstring).  Its ``repr`` stays the dataclass's."""

    __slots__ = ()

    def __rich__(self) -> Any:
        return view(self).rich(self)

    def _repr_html_(self) -> str:
        return view(self).html(self)

    def to_pandas(self) -> pandas.DataFrame:
        """A pandas DataFrame of this result: one row per exit (per configuration of a sweep),
        columns named and valued as in ``--format csv`` (exact integers, unscaled: operations in
        the result's convention, bytes, milliseconds); a figure that is unknown is missing
        (``<NA>`` among whole numbers, ``NaN`` among floats, ``None`` where no row knows it).
        Needs pandas (``pip install 'msdprof[pandas]'``)."""
        try:
            import pandas
        except ImportError:
            raise ModuleNotFoundError(PANDAS_MISSING, name="pandas") from None
        columns, rows = view(self).records(self)
        return frame(pandas, columns, rows)


def frame(pd: Any, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> pandas.DataFrame:
    """A DataFrame (pandas module ``pd``) of ``rows`` with ``columns`` in that order.  A column of
    whole numbers stays exact: ``int64``, or pandas' nullable ``Int64`` where some are ``None``
    (never float with NaN), or Python ints past :data:`INT64_MAX`; every other column as pandas
    infers it."""
    data = {}
    for column in columns:
        values = [row.get(column) for row in rows]
        known = [v for v in values if v is not None]
        whole = bool(known) and all(type(v) is int for v in known)  # bool is not a whole number here
        if whole and all(abs(v) <= INT64_MAX for v in known):
            data[column] = pd.array(values, dtype="Int64" if len(known) < len(values) else "int64")
        elif whole:
            data[column] = pd.array(values, dtype=object)
        else:
            data[column] = values
    return pd.DataFrame(data, columns=list(columns), index=pd.RangeIndex(len(rows)))


__all__ = ["INT64_MAX", "PANDAS_MISSING", "Tabular", "View", "find_view", "frame", "view"]
