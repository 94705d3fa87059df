"""Task records and the DataFrames built from them (pandas is imported only here)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Sequence

from .serialization import field_decoder

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("rush")

#: Fields whose dict value is spread into one column per inner name.
SPREAD_FIELDS = frozenset({"xs", "ys", "xs_extra", "ys_extra"})
#: Task control fields: a column only when some task has them (like the inner names).
CONTROL_FIELDS = frozenset({"seed", "timeout", "max_retries", "attempts"})


def decode_value(field: str, raw: bytes) -> Any:
    """The Python value of one stored field."""
    return field_decoder(field)(raw)


def records(keys: Sequence[str], fields: Sequence[str], values: Sequence,
            extra: dict[str, Sequence] | None = None) -> list[dict]:
    """Flat records, one per task: inner names of spread fields become keys, then
    ``worker_id``/``condition``/other fields, then ``keys``. ``values`` is flat, F per key."""
    nf = len(fields)
    # Per field, decided once (not per value): its offset, name, decoder, spread, and
    # whether a task without it still gets the column.
    plan = [(j, f, field_decoder(f), f in SPREAD_FIELDS,
             f not in SPREAD_FIELDS and f not in CONTROL_FIELDS) for j, f in enumerate(fields)]
    out = []
    base = 0
    for i, key in enumerate(keys):
        rec: dict[str, Any] = {}
        for j, field, decode, spread, always in plan:
            raw = values[base + j]
            if raw is None:
                if always:
                    rec.setdefault(field, None)  # a requested field is a column
                continue
            value = decode(raw)
            if spread and isinstance(value, dict):
                rec.update(value)
            else:
                rec[field] = value
        if extra:
            for name, column in extra.items():
                rec[name] = column[i]
        rec["keys"] = key
        out.append(rec)
        base += nf
    return out


def frame(recs: list[dict]) -> "pd.DataFrame":
    """One DataFrame from records; an empty frame when there are none."""
    import pandas as pd

    if not recs:
        return pd.DataFrame()
    return _trailing_last(pd.DataFrame.from_records(recs))


#: Columns that end every frame, in this order (the input and output columns come first,
#: whichever record introduced them).
TRAILING_COLUMNS = ("worker_id", "condition", "state", "keys")


def _trailing_last(df: "pd.DataFrame") -> "pd.DataFrame":
    tail = [c for c in TRAILING_COLUMNS if c in df.columns]
    if list(df.columns[len(df.columns) - len(tail):]) == tail:
        return df
    return df[[c for c in df.columns if c not in tail] + tail]


def append(old: "pd.DataFrame | None", new: "pd.DataFrame") -> "pd.DataFrame":
    """``old`` with the rows of ``new`` below (columns united)."""
    import pandas as pd

    if old is None or old.empty:
        return new
    if new.empty:
        return old
    return _trailing_last(pd.concat([old, new], ignore_index=True, sort=False))


def warn_vanished(vanished: Sequence[str]) -> None:
    """Log the tasks whose hash disappeared (they are dropped from results)."""
    if vanished:
        logger.warning("dropped %d task(s) whose hash vanished: %s", len(vanished),
                       preview(vanished))


def preview(keys: Sequence[str], n: int = 5) -> str:
    """The first ``n`` keys for a log line, with "..." when there are more."""
    return ", ".join(keys[:n]) + (" ..." if len(keys) > n else "")
