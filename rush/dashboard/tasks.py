"""The task table of the dashboard: a query (states, conditions on any column, sort,
page) checked once, applied to a DataFrame of tasks, and the page made JSON-safe.

A condition is ``<column> <op> <value>`` with ``op`` one of ``= != < <= > >= ~``
(``~``: contains, ignoring case). ``<``, ``<=``, ``>``, ``>=`` compare numbers; ``=`` and
``!=`` compare numbers when the value is one and the column holds numbers, else the
text of each cell.
"""

from __future__ import annotations

import math
import numbers as _numbers
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..states import TASK_STATES

if TYPE_CHECKING:
    import pandas as pd

#: Rows per page: default and largest.
PAGE_SIZE, MAX_PAGE_SIZE = 50, 500
#: The longest text a cell shows (a traceback in ``condition`` can be long).
MAX_CELL_CHARS = 2000
OPERATORS = ("<=", ">=", "!=", "=", "<", ">", "~")
_CONDITION = re.compile(r"^\s*(?P<column>.+?)\s*(?P<op><=|>=|!=|=|<|>|~)\s*(?P<value>.*?)\s*$", re.S)


class BadRequest(ValueError):
    """A request the dashboard refuses (HTTP 400), with what is wrong in it."""


@dataclass(frozen=True)
class Condition:
    """``column op value``, as typed."""

    column: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> "Condition":
        match = _CONDITION.match(text)
        if match is None or not match["column"]:
            raise BadRequest(f"filter {text!r} is not '<column> <op> <value>' with op one of "
                             f"{' '.join(OPERATORS)}")
        return cls(match["column"], match["op"], match["value"])

    def mask(self, frame: "pd.DataFrame") -> "pd.Series":
        """Which rows of ``frame`` match; ``BadRequest`` for an unknown column or a value
        that is not a number where one is needed."""
        import pandas as pd

        if self.column not in frame.columns:
            raise BadRequest(f"filter {self}: no column {self.column!r} (columns: "
                             f"{', '.join(map(str, frame.columns))})")
        cells = frame[self.column]
        number = _number(self.value)
        if self.op in ("<", "<=", ">", ">="):
            if number is None:
                raise BadRequest(f"filter {self}: {self.value!r} is not a number")
            values = pd.to_numeric(cells, errors="coerce")
            return {"<": values < number, "<=": values <= number, ">": values > number,
                    ">=": values >= number}[self.op]
        if self.op == "~":
            return cells.map(_text).str.contains(self.value, case=False, regex=False)
        if number is not None and _holds_numbers(cells):
            equal = pd.to_numeric(cells, errors="coerce") == number
        else:
            equal = cells.map(_text).str.lower() == self.value.lower()
        return equal if self.op == "=" else ~equal

    def __str__(self) -> str:
        return f"'{self.column} {self.op} {self.value}'"


@dataclass(frozen=True)
class TaskQuery:
    """Which tasks, in which order, which page."""

    states: tuple[str, ...] = TASK_STATES
    where: tuple[Condition, ...] = ()
    sort: str | None = None
    descending: bool = False
    page: int = 0
    size: int = PAGE_SIZE

    @classmethod
    def parse(cls, params: Mapping[str, str], where: Sequence[str] = ()) -> "TaskQuery":
        """From query parameters ``state`` (a state, a comma-separated list, or ``all``),
        ``where`` (repeated), ``sort``, ``order`` (``asc``/``desc``), ``page`` (from 0) and
        ``size``; ``BadRequest`` says what is wrong."""
        states = _states(params.get("state", "all"))
        order = params.get("order", "asc")
        if order not in ("asc", "desc"):
            raise BadRequest(f"order must be 'asc' or 'desc', got {order!r}")
        page = _int("page", params.get("page", "0"), 0, None)
        size = _int("size", params.get("size", str(PAGE_SIZE)), 1, MAX_PAGE_SIZE)
        return cls(states, tuple(Condition.parse(w) for w in where if w.strip()),
                   params.get("sort") or None, order == "desc", page, size)


def select(frame: "pd.DataFrame", query: TaskQuery) -> dict:
    """The page of ``frame`` the query asks for: ``{"total", "matched", "page", "size",
    "columns", "rows"}`` (rows as lists of JSON-safe cells)."""
    if query.sort is not None and query.sort not in frame.columns:
        raise BadRequest(f"cannot sort by {query.sort!r}: no such column (columns: "
                         f"{', '.join(map(str, frame.columns))})")
    matched = frame
    for condition in query.where:
        matched = matched[condition.mask(matched).fillna(False).astype(bool)]
    if query.sort is not None:
        matched = _sorted(matched, query.sort, query.descending)
    first = query.page * query.size
    page = matched.iloc[first:first + query.size]
    columns = _column_order(list(frame.columns))
    rows = [[jsonable(v) for v in row] for row in page[columns].itertuples(index=False, name=None)]
    return {"total": len(frame), "matched": len(matched), "page": query.page,
            "size": query.size, "columns": columns, "rows": rows}


def _sorted(frame: "pd.DataFrame", column: str, descending: bool) -> "pd.DataFrame":
    try:
        return frame.sort_values(column, ascending=not descending, kind="stable",
                                 na_position="last")
    except TypeError:  # values that do not compare (numbers and text, dicts): by their text
        return frame.sort_values(column, ascending=not descending, kind="stable",
                                 na_position="last", key=lambda s: s.map(_text))


def _column_order(columns: list[str]) -> list[str]:
    """``state`` first, ``keys`` last, the inputs and outputs in between."""
    head = [c for c in ("state",) if c in columns]
    tail = [c for c in ("worker_id", "condition", "keys") if c in columns]
    return head + [c for c in columns if c not in head and c not in tail] + tail


def _states(text: str) -> tuple[str, ...]:
    if text in ("", "all"):
        return TASK_STATES
    states = tuple(s.strip() for s in text.split(","))
    unknown = [s for s in states if s not in TASK_STATES]
    if unknown:
        raise BadRequest(f"state must be 'all' or among {', '.join(TASK_STATES)}, got "
                         f"{', '.join(map(repr, unknown))}")
    return states


def _int(name: str, text: str, lowest: int, highest: int | None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {text!r}") from None
    if value < lowest or (highest is not None and value > highest):
        bound = f">= {lowest}" if highest is None else f"between {lowest} and {highest}"
        raise BadRequest(f"{name} must be {bound}, got {value}")
    return value


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _holds_numbers(cells: "pd.Series") -> bool:
    return cells.dtype.kind in "iuf" or any(
        isinstance(v, _numbers.Real) and not isinstance(v, bool) for v in cells.head(100))


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it: NaN and infinities as ``None``, numpy scalars as
    Python ones, dicts and lists inside out, anything else as its (shortened) text."""
    if value is None or isinstance(value, (bool, str)):
        return value if not isinstance(value, str) else value[:MAX_CELL_CHARS]
    if isinstance(value, _numbers.Integral):
        return int(value)
    if isinstance(value, _numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)[:MAX_CELL_CHARS]


def numbers(column: "pd.Series") -> list:
    """A column as a list of floats, ``None`` where a cell is not a finite number."""
    import numpy as np
    import pandas as pd

    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    finite = np.isfinite(values)
    out = values.tolist()
    if not finite.all():
        for i in np.flatnonzero(~finite):
            out[i] = None
    return out
