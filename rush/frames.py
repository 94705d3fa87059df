"""Task DataFrames (pandas is imported only here).

A frame is built column by column from the stored values, and every column holds the
Python values it was built from:

- ints stay ints (``int64``), floats floats (``float64``), bools bools (``bool``);
- anything else, and any mix (ints with floats, ``None`` with numbers, ...), is an
  ``object`` column holding the values as they were; strings get pandas' default
  string column;
- a task that lacks a field (no value at all, unlike a stored ``None``) gives NaN in a
  column of floats and ``None`` in any other column.

The inner names of the dicts in ``xs``, ``ys``, ``xs_extra``, ``ys_extra`` become
columns; any other requested field (``worker_id``, ``condition``, ...) is always a
column, even when no task has it, and so is ``keys``: a frame without tasks has exactly
those columns. Task control fields (``seed``, ``timeout``, ``max_retries``,
``attempts``) are columns only when some task has them.

No value is ever dropped: an inner name that another field already gave a column (a
name in both ``xs`` and ``ys``), or that a field's own column takes (``keys``,
``worker_id``, ``state``, ``condition``, ``seed``, ...), becomes the column
``<field>.<name>``, e.g. ``ys.x`` or ``xs.keys``.
"""

from __future__ import annotations

import logging
from collections import Counter
from itertools import chain
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import pandas as pd

    from .serialization import Serializer

logger = logging.getLogger("rush")

#: Fields whose dict value is spread into one column per inner name.
SPREAD_FIELDS = frozenset({"xs", "ys", "xs_extra", "ys_extra"})
#: Task control fields: a column only when some task has them (like the inner names).
CONTROL_FIELDS = frozenset({"seed", "timeout", "max_retries", "attempts"})
#: Columns that end every frame, in this order (the input and output columns come first,
#: whichever task introduced them).
TRAILING_COLUMNS = ("worker_id", "condition", "state", "keys")


class _Absent:
    """The cell of a task that lacks a field (distinct from a stored ``None``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


ABSENT = _Absent()


class Columns:
    """The cells of a frame, column by column (``ABSENT`` where a task lacks a field),
    with how many cells of each column are absent."""

    def __init__(self, n_rows: int, fixed: Sequence[str]) -> None:
        self.n_rows = n_rows
        self.fixed = list(fixed)  # columns present even without tasks
        self.cells: dict[str, list] = {}
        self.absent: dict[str, int] = {}
        self.origin: dict[str, str] = {}  # column from an inner name -> its field

    def name_for(self, field: str, name: str) -> str:
        """The column of inner name ``name`` of ``field``: ``name``, or ``field.name``
        when another field has the column already."""
        taken = self.origin.get(name, field) != field or (name in self.cells and name not in self.origin)
        return f"{field}.{name}" if taken else name

    def put(self, name: str, row: int, value: Any) -> None:
        """Set one cell."""
        column = self.cells.get(name)
        if column is None:
            column = self.cells[name] = []
            self.absent[name] = 0
        have = len(column)
        if have == row:
            column.append(value)
        elif have < row:
            column.extend([ABSENT] * (row - have))
            self.absent[name] += row - have
            column.append(value)
        else:  # the same field set this name for this task already
            column[row] = value

    def finish(self) -> None:
        """Pad every column to ``n_rows``."""
        for name, column in self.cells.items():
            missing = self.n_rows - len(column)
            if missing:
                column.extend([ABSENT] * missing)
                self.absent[name] += missing


def empty_frame(fields: Sequence[str]) -> "pd.DataFrame":
    """The DataFrame of no tasks with ``fields``: exactly their fixed columns."""
    return frame(Columns(0, _fixed(fields) + ["keys"]))


def _fixed(fields: Sequence[str]) -> list[str]:
    return [f for f in fields if f not in SPREAD_FIELDS and f not in CONTROL_FIELDS]


def columns(keys: Sequence[str], fields: Sequence[str], values: Sequence,
            serializer: "Serializer", extra: dict[str, Sequence] | None = None) -> Columns:
    """The cells of the tasks ``keys``: ``values`` is flat, one value per field per key
    (``None``: the task lacks the field), read back by the network's ``serializer``
    (``RushSecurityError`` for a payload that fails its check); ``extra`` adds whole
    columns (e.g. ``state``)."""
    builder = ColumnsBuilder(fields, serializer)
    builder.add(keys, values)
    return builder.finish(extra)


class ColumnsBuilder:
    """The cells of a frame, built from chunks of tasks: each chunk is decoded and spread
    into the columns as it arrives, so a large read holds neither its raw replies nor its
    decoded dicts beside the columns. ``finish()`` gives what ``columns()`` gives for all
    the chunks at once."""

    def __init__(self, fields: Sequence[str], serializer: "Serializer") -> None:
        self.fields = list(fields)
        self.serializer = serializer
        self.n = 0
        self.keys: list[str] = []
        self.plain: dict[str, list] = {f: [] for f in fields if f not in SPREAD_FIELDS}
        self.stored = {f: False for f in self.plain}  # some task has the field
        # spread fields: inner name -> its cells (first appearance first), and how many
        # tasks have it; a field holding a value that is no plain dict keeps its values
        self.spread: dict[str, dict[str, list]] = {f: {} for f in fields if f in SPREAD_FIELDS}
        self.present: dict[str, Counter] = {f: Counter() for f in self.spread}
        self.by_cell: dict[str, list] = {}

    def add(self, keys: Sequence[str], values: Sequence) -> None:
        """One chunk: ``values`` flat, as in ``columns()``."""
        nf = len(self.fields)
        for j, field in enumerate(self.fields):
            raw_values = values[j::nf] if nf > 1 else values
            decode = self.serializer.decoder(field)
            decoded = [None if raw is None else decode(key, raw)
                       for key, raw in zip(keys, raw_values)]
            if field in self.plain:
                self.plain[field] += decoded
                self.stored[field] = self.stored[field] or any(r is not None for r in raw_values)
            else:
                self._add_spread(field, decoded)
        self.keys += keys
        self.n += len(keys)

    def _add_spread(self, field: str, dicts: list) -> None:
        if field not in self.by_cell and not {type(d) for d in dicts} <= {dict, type(None)}:
            self.by_cell[field] = self._rows(field)  # a non-dict value, a dict subclass
        if field in self.by_cell:
            self.by_cell[field] += dicts
            return
        cells, present = self.spread[field], self.present[field]
        m = len(dicts)
        # per inner name, how many tasks of the chunk have it (C-speed), in order of first
        # appearance; one list comprehension per name
        counts = Counter(chain.from_iterable(d for d in dicts if d))
        for name, count in counts.items():
            column = cells.get(name)
            if column is None:
                column = cells[name] = [ABSENT] * self.n
            if count == m:
                column += [d[name] for d in dicts]  # type: ignore[index]
            else:
                column += [ABSENT if d is None else d.get(name, ABSENT) for d in dicts]
            present[name] += count
        for name, column in cells.items():
            if name not in counts:
                column += [ABSENT] * m

    def _rows(self, field: str) -> list:
        """The dicts of a spread field so far, back from its cells (names in order of first
        appearance, as spreading them again creates them)."""
        cells = self.spread.pop(field)
        del self.present[field]
        return [{name: column[i] for name, column in cells.items() if column[i] is not ABSENT}
                or None for i in range(self.n)]

    def finish(self, extra: dict[str, Sequence] | None = None) -> Columns:
        """The cells of every task added; ``extra`` adds whole columns (e.g. ``state``).
        The builder hands its cells over (it is empty afterwards), so ``frame()`` can free
        each column as it types it."""
        out = Columns(self.n, _fixed(self.fields) + list(extra or ()) + ["keys"])
        for field in self.fields:
            if field in self.by_cell:
                _spread_by_cell(out, field, self.by_cell[field])
            elif field in self.spread:
                for name, column in self.spread[field].items():
                    target = out.name_for(field, name)
                    out.cells[target] = column
                    out.absent[target] = self.n - self.present[field][name]
                    out.origin[target] = field
            elif field not in CONTROL_FIELDS or self.stored[field]:
                _replace(out, field, self.plain[field])
        for name, values in (extra or {}).items():
            _replace(out, name, list(values))
        _replace(out, "keys", self.keys)
        out.finish()
        self.keys, self.plain, self.spread, self.by_cell = [], {}, {}, {}
        return out


def _spread_by_cell(out: Columns, field: str, values: list) -> None:
    for row, value in enumerate(values):
        if value is None:
            continue
        if isinstance(value, dict):
            for name, inner in value.items():
                target = out.name_for(field, name)
                out.origin[target] = field
                out.put(target, row, inner)
        else:  # not a dict: one column named after the field
            out.put(field, row, value)


def _replace(out: Columns, name: str, column: list) -> None:
    """A whole column from one field; an inner name it collides with moves to
    ``<its field>.<name>``."""
    field = out.origin.pop(name, None)
    if field is not None:
        moved = f"{field}.{name}"
        out.cells[moved] = out.cells.pop(name)
        out.absent[moved] = out.absent.pop(name)
        out.origin[moved] = field
    out.cells[name] = column
    out.absent[name] = 0


def frame(cols: Columns) -> "pd.DataFrame":
    """The DataFrame of ``cols``: typed columns (see the module docstring), trailing
    columns last; without tasks, exactly the fixed columns. Takes the cells of ``cols``
    (it is empty afterwards)."""
    import pandas as pd

    if cols.n_rows == 0:
        return pd.DataFrame(columns=_trailing_order(cols.fixed))
    data = {}
    for name in list(cols.cells):  # each column's cells go as soon as it is typed: the
        data[name] = _series(cols.cells.pop(name), cols.absent[name])  # frame takes ``cols``
    return pd.DataFrame(data, columns=_trailing_order(list(data)))


def _trailing_order(names: list[str]) -> list[str]:
    tail = [c for c in TRAILING_COLUMNS if c in names]
    return [c for c in names if c not in tail] + tail


def _series(cells: list, n_absent: int) -> "pd.Series":
    """One column of Python values (``ABSENT`` marks a task without the field)."""
    import numpy as np
    import pandas as pd
    from pandas.api.types import infer_dtype

    if n_absent:
        present = [v for v in cells if v is not ABSENT]
        if present and infer_dtype(present, skipna=False) == "floating":
            return pd.Series([np.nan if v is ABSENT else v for v in cells], dtype="float64")
        return pd.Series([None if v is ABSENT else v for v in cells], dtype=object)
    kind = infer_dtype(cells, skipna=False)
    if kind == "integer":
        try:
            return pd.Series(np.array(cells, dtype=np.int64))
        except OverflowError:  # beyond 64 bits: Python ints
            return pd.Series(cells, dtype=object)
    if kind == "floating":
        return pd.Series(np.array(cells, dtype=np.float64))
    if kind == "boolean":
        return pd.Series(np.array(cells, dtype=bool))
    if kind == "string":
        return pd.Series(cells)  # pandas' default string column
    return pd.Series(cells, dtype=object)


def append(old: "pd.DataFrame | None", new: "pd.DataFrame") -> "pd.DataFrame":
    """``old`` with the rows of ``new`` below (columns united), under the same typing as
    one frame built from all the tasks: a column two parts type differently becomes
    ``object``, a column one part lacks gets NaN (floats) or ``None`` (anything else)."""
    import pandas as pd

    if old is None or len(old) == 0:
        return new if len(new) or old is None else _union_empty(old, new)
    if len(new) == 0:
        return _union_empty(old, new)
    if list(old.columns) == list(new.columns) and list(old.dtypes) == list(new.dtypes):
        return pd.concat([old, new], ignore_index=True)
    names = _trailing_order(list(dict.fromkeys([*old.columns, *new.columns])))
    data = {name: _joined(old.get(name), new.get(name), len(old), len(new)) for name in names}
    return pd.DataFrame(data, columns=names)


def _union_empty(df: "pd.DataFrame", empty: "pd.DataFrame") -> "pd.DataFrame":
    """``df`` with the columns of an ``empty`` frame it lacks (no rows to fill)."""
    extra = [c for c in empty.columns if c not in df.columns]
    if not extra:
        return df
    import pandas as pd

    filled = df.assign(**{c: pd.Series([None] * len(df), dtype=object) for c in extra})
    return filled[_trailing_order(list(filled.columns))]


def _joined(a: "pd.Series | None", b: "pd.Series | None", n_a: int, n_b: int) -> "pd.Series":
    import numpy as np
    import pandas as pd

    if a is None or b is None:
        present, n_missing = (b, n_a) if a is None else (a, n_b)
        assert present is not None
        if present.dtype == np.float64:
            filler = pd.Series(np.full(n_missing, np.nan))
        else:
            present = present.astype(object)
            filler = pd.Series([None] * n_missing, dtype=object)
        parts = [filler, present] if a is None else [present, filler]
    elif a.dtype == b.dtype:
        parts = [a, b]
    else:
        parts = [a.astype(object), b.astype(object)]
    return pd.concat(parts, ignore_index=True)


def warn_vanished(vanished: Sequence[str]) -> None:
    """Log the tasks whose hash disappeared (they are dropped from results)."""
    if vanished:
        logger.warning("dropped %d task(s) whose hash vanished: %s", len(vanished),
                       preview(vanished))


def preview(keys: Sequence[str], n: int = 5) -> str:
    """The first ``n`` keys for a log line, with "..." when there are more."""
    return ", ".join(keys[:n]) + (" ..." if len(keys) > n else "")
