"""Worker log records in Redis: the handler that pushes them (worker side), and the
reader behind ``read_log``/``print_log`` (controller side)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .validation import LEVELS

if TYPE_CHECKING:
    import pandas as pd

    from .registry import WorkerRegistry

LOG_COLUMNS = ("worker_id", "level", "timestamp", "logger", "caller", "msg")


def encode_record(level: str, timestamp: float, logger: str, caller: str, msg: str) -> str:
    """One stored log record (JSON): what ``read_log`` and ``print_log`` read back."""
    return json.dumps({"level": level.lower(), "timestamp": timestamp, "logger": logger,
                       "caller": caller, "msg": msg}, default=str)


class RedisLogHandler(logging.Handler):
    """Pushes JSON records (level, timestamp, logger, caller, msg) to a worker's log.

    As the R package's appender: the buffer holds ``buffer_size`` records, and they are
    pushed together with record ``buffer_size + 1`` when it arrives; an ERROR or worse,
    ``flush()`` and ``close()`` (at the worker's exit) push at once. ``buffer_size=0``
    pushes every record. ``push`` writes a batch of records (``WorkerRegistry.push_logs``
    bound to the worker).
    """

    def __init__(self, push: Callable[[list[str]], None], buffer_size: int = 0) -> None:
        super().__init__(level=logging.NOTSET)
        self._push = push
        self._buffer_size = buffer_size
        self._buffer: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._buffer.append(encode_record(
                record.levelname, record.created, record.name,
                f"{record.funcName} ({record.filename}:{record.lineno})", record.getMessage()))
            if len(self._buffer) > self._buffer_size or record.levelno >= logging.ERROR:
                self.flush()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Push the buffered records (one RPUSH)."""
        self.acquire()
        try:
            if self._buffer:
                records, self._buffer = self._buffer, []
                self._push(records)
        finally:
            self.release()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            super().close()


def install(push: Callable[[list[str]], None], thresholds: dict[str, str],
            buffer_size: int) -> RedisLogHandler:
    """Attach one handler to each logger of ``thresholds`` at its level."""
    handler = RedisLogHandler(push, buffer_size)
    for name, level in thresholds.items():
        lg = logging.getLogger(name)
        lg.setLevel(LEVELS[level.lower()])
        lg.addHandler(handler)
    return handler


def uninstall(handler: RedisLogHandler, thresholds: dict[str, str]) -> None:
    """Flush and detach the handler."""
    for name in thresholds:
        logging.getLogger(name).removeHandler(handler)
    handler.close()


class LogReader:
    """Reads the workers' log records for a controller; remembers what ``print_log``
    has printed."""

    def __init__(self) -> None:
        self._printed: dict[str, int] = {}  # worker id -> records printed

    def read(self, registry: "WorkerRegistry", worker_ids: Sequence[str],
             time_difference: bool) -> "pd.DataFrame":
        """Every stored record of these workers (``read_log``)."""
        raw = registry.read_logs(worker_ids, [0] * len(worker_ids))
        return log_frame({w: parse(r) for w, r in zip(worker_ids, raw)}, time_difference)

    def print_new(self, registry: "WorkerRegistry", worker_ids: Sequence[str]) -> None:
        """Emit the records not printed before (``print_log``)."""
        starts = [self._printed.get(w, 0) for w in worker_ids]
        for worker_id, start, raw in zip(worker_ids, starts, registry.read_logs(worker_ids, starts)):
            for record in parse(raw):
                emit(worker_id, record)
            self._printed[worker_id] = start + len(raw)

    def forget(self) -> None:
        """Print everything again from the start (the logs were deleted)."""
        self._printed.clear()


def parse(raw: Sequence[bytes]) -> list[dict[str, Any]]:
    """Records as dicts."""
    return [json.loads(r) for r in raw]


def log_frame(per_worker: dict[str, list[dict]], time_difference: bool) -> "pd.DataFrame":
    """The DataFrame of ``read_log``."""
    import pandas as pd

    rows = [{"worker_id": w, **r} for w, recs in per_worker.items() for r in recs]
    columns = list(LOG_COLUMNS) + (["time_difference"] if time_difference else [])
    if not rows:
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame.from_records(rows, columns=list(LOG_COLUMNS))
    seconds = df["timestamp"].astype("float64")
    df["timestamp"] = pd.to_datetime(seconds, unit="s", utc=True)
    if time_difference:
        df["time_difference"] = seconds.groupby(df["worker_id"]).diff()
    return df


def emit(worker_id: str, record: dict[str, Any]) -> None:
    """Print one stored record through its original Python logger."""
    import datetime as dt

    stamp = dt.datetime.fromtimestamp(record["timestamp"], tz=dt.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S.%f")[:-3]  # UTC, like read_log's timestamps
    level = LEVELS.get(record["level"], logging.INFO)
    logging.getLogger(record["logger"]).log(level, "[%s] [%s] %s", worker_id, stamp, record["msg"])
