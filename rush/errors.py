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
class RushSecurityError(RushError):
    """A stored payload failed its signature check (written without the network's secret,
    or moved from another key, field or network): it was not unpickled. The message names
    the key."""


class NoStartArgumentsError(RushError, RuntimeError):
    """A worker found no start arguments in its network (no controller stored them)."""


class UnknownNetworkError(RushError, LookupError):
    """The server has no network of that id."""


class RushWorkerError(RushError):
    """Every worker of the network has ended and at least one crashed (its loop raised).

    The text holds the first crash's type, message and traceback; ``worker_id`` and
    ``traceback`` are that crash's, ``n_crashed`` counts the crashed workers.
    """

    def __init__(self, worker_id: str, type: str, message: str, traceback: str,
                 n_crashed: int = 1) -> None:
        others = f" (and {n_crashed - 1} more crashed worker(s): see Rush.worker_errors)" \
            if n_crashed > 1 else ""
        super().__init__(f"every worker has ended; worker {worker_id} crashed with "
                         f"{message}{others}\n{traceback}")
        self.worker_id = worker_id
        self.type = type
        self.message = message
        self.traceback = traceback
        self.n_crashed = n_crashed
