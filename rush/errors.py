"""Exceptions raised by rush."""

from __future__ import annotations


class RushError(Exception):
    """Base class of every rush error."""


class RushConnectionError(RushError, ConnectionError):
    """Redis could not be reached; the message says where rush tried (never the password)."""


class WorkerStoppedError(RushError):
    """The worker was killed or declared lost: Redis refuses its task writes.

    The worker entry point treats it as a normal end of the loop.
    """


class RushValueTooLargeError(RushError, ValueError):
    """A value is larger than Redis (or ``rush_plan(max_value_size=...)``) allows; it was
    not sent, and nothing of the call was written."""


class RushOutOfMemoryError(RushError):
    """Redis reached its ``maxmemory`` and refused a write; the message says what to do."""


class RushNetworkLostError(RushError):
    """The network's data vanished from Redis (a server restarted without persistence, a
    flush, or a reset by another controller). ``finished_tasks`` holds the finished tasks
    a controller had cached (a DataFrame), else ``None``."""

    def __init__(self, message: str, finished_tasks: object = None) -> None:
        super().__init__(message)
        self.finished_tasks = finished_tasks
