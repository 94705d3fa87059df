"""Crashes of worker loops: what a worker records when its loop raises, and how a
controller tells the user about it.

A worker whose loop raises writes one ``Crash`` (type, message, formatted traceback, the
task it was on) to the network, an ERROR record with the traceback to its log, and then
marks itself lost, failing its tasks with the crash's ``condition``. In that order: a
controller that sees the worker lost also sees why. Controllers read the crashes back
(``Rush.worker_errors``), warn once per crash, and raise ``RushWorkerError`` when every
worker has ended and one crashed.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

from .errors import RushWorkerError
from .logs import encode_record

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("rush")

#: Columns of ``Rush.worker_errors``.
CRASH_COLUMNS = ("worker_id", "timestamp", "type", "message", "traceback", "task_key")


@dataclass(frozen=True)
class Crash:
    """The crash of one worker's loop."""

    worker_id: str
    timestamp: float  # seconds since the epoch
    type: str  # the exception's class name
    message: str  # "<Type>: <message>"
    traceback: str  # the whole formatted traceback
    task_key: str | None  # the task the worker was on, if any
    caller: str = ""  # where it was raised: "function (file:line)"

    @classmethod
    def of(cls, worker_id: str, error: BaseException, task_key: str | None) -> "Crash":
        """The crash of a loop that raised ``error`` (caught one frame above the loop)."""
        tb = error.__traceback__
        # drop the frame of rush's own call of the loop: the traceback starts in the loop
        tb = tb.tb_next if tb is not None and tb.tb_next is not None else tb
        name = type(error).__name__
        text = str(error)
        where = traceback.extract_tb(tb)[-1:] if tb is not None else []
        caller = f"{where[0].name} ({where[0].filename}:{where[0].lineno})" if where else ""
        return cls(worker_id, time.time(), name, f"{name}: {text}" if text else name,
                   "".join(traceback.format_exception(type(error), error, tb)), task_key,
                   caller)

    @property
    def condition(self) -> dict[str, str]:
        """The condition of the tasks the crashed worker was running."""
        return {"message": self.message, "type": self.type, "traceback": self.traceback}

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> "Crash":
        return cls(**json.loads(text))

    def log_record(self) -> str:
        """The ERROR record of the worker's log (``read_log``) telling of this crash."""
        return encode_record("error", self.timestamp, "rush", self.caller,
                             f"worker {self.worker_id}: the loop raised {self.message}\n"
                             f"{self.traceback}")

    def warning(self) -> str:
        return f"worker {self.worker_id} crashed: {self.message}\n{self.traceback.rstrip()}"


def parse(raw: Iterable[str | bytes]) -> list[Crash]:
    """Crashes from their stored JSON, oldest first."""
    return sorted((Crash.from_json(r) for r in raw), key=lambda c: c.timestamp)


def crash_frame(crashes: Sequence[Crash]) -> "pd.DataFrame":
    """The DataFrame of ``Rush.worker_errors``: one row per crashed worker, oldest first,
    ``timestamp`` a UTC pandas Timestamp."""
    import pandas as pd

    rows = [[getattr(c, name) for name in CRASH_COLUMNS] for c in crashes]
    df = pd.DataFrame(rows, columns=list(CRASH_COLUMNS), dtype=object)
    df["timestamp"] = pd.to_datetime(df["timestamp"].astype("float64"), unit="s", utc=True)
    return df


class CrashWatch:
    """A controller's memory of the crashes it has told the user about."""

    def __init__(self) -> None:
        self._reported: set[tuple[str, float]] = set()

    def report(self, crashes: Sequence[Crash]) -> None:
        """Log a WARNING on logger ``rush`` for each crash not reported before."""
        for crash in crashes:
            mark = (crash.worker_id, crash.timestamp)
            if mark not in self._reported:
                self._reported.add(mark)
                logger.warning("%s", crash.warning())

    @staticmethod
    def error(crashes: Sequence[Crash]) -> RushWorkerError:
        """The error raised when every worker has ended: about the first crash."""
        first = crashes[0]
        return RushWorkerError(first.worker_id, first.type, first.message, first.traceback,
                               n_crashed=len(crashes))
