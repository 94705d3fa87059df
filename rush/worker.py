"""``RushWorker``: the view of the network a worker's loop gets, with the methods that
change the tasks it works on."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any, Sequence

from . import frames
from .config import RedisConfig
from .controller import DEFAULT_CONDITION, Rush
from .errors import WorkerStoppedError
from .serialization import dumps
from .states import TaskState, WorkerState
from .store import decode
from .validation import broadcast, dict_list, either, field_list, key_list, matching, positive_number
from .worker_ids import new_worker_id

logger = logging.getLogger("rush")


class RushWorker(Rush):
    """A worker of a network. It registers itself as running when created.

    A user can create one in-process to debug a loop; ``rush.start_worker`` creates one in
    each worker process. Once the worker is killed or lost, Redis refuses its writes.
    """

    def __init__(self, network_id: str, config: RedisConfig | None = None,
                 worker_id: str | None = None, heartbeat_period: float | None = None,
                 heartbeat_expire: float | None = None, remote: bool = False) -> None:
        if network_id is None:
            raise TypeError("a RushWorker needs the network_id of its network")
        if worker_id is not None and not isinstance(worker_id, str):
            raise TypeError("worker_id must be a str")
        super().__init__(network_id, config)
        self._worker_id = worker_id or new_worker_id()
        self._hostname = socket.gethostname()
        self.heartbeat_period = heartbeat_period
        self.heartbeat_expire = heartbeat_expire
        self.remote = bool(remote)
        self._registry.register(self._worker_id, os.getpid(), self._hostname,
                                heartbeat=heartbeat_period is not None, remote=self.remote)

    @property
    def worker_id(self) -> str:
        """The id of this worker."""
        return self._worker_id

    @property
    def hostname(self) -> str:
        """The host this worker runs on."""
        return self._hostname

    @property
    def terminated(self) -> bool:
        """True once the controller told this worker to terminate (or stopped it)."""
        flag, state = self._registry.terminate_state(self._worker_id)
        return flag or state != WorkerState.RUNNING.value

    def set_terminated(self) -> None:
        """Record that this worker left its loop normally (a killed or lost worker stays so)."""
        self._registry.set_terminated(self._worker_id)

    # -- tasks ---------------------------------------------------------------------

    def push_running_tasks(self, xss: Sequence[dict], xss_extra: Sequence[dict] | None = None,
                           extra: Sequence[dict] | None = None) -> list[str]:
        """Create tasks this worker runs now; returns their keys.

        Raises ``WorkerStoppedError`` once the worker was killed or declared lost.
        """
        xss = dict_list("xss", xss)
        extras = matching("xss_extra", either("xss_extra", xss_extra, "extra", extra), len(xss))
        return self._create(TaskState.RUNNING, ("xs", "xs_extra"), [xss, extras],
                            worker_id=self._worker_id,
                            extra_fields=[("worker_id", self._worker_id)])

    def finish_tasks(self, keys: str | Sequence[str], yss: Sequence[dict],
                     yss_extra: Sequence[dict] | None = None,
                     extra: Sequence[dict] | None = None) -> None:
        """Store the results ``yss`` and move the tasks from running to finished.

        Keys that are not running (unknown, already finished or failed) are discarded
        with a warning: the first writer wins.
        """
        keys_ = key_list("keys", keys)
        yss = broadcast("yss", dict_list("yss", yss), len(keys_), against="keys")
        extras = matching("yss_extra", either("yss_extra", yss_extra, "extra", extra), len(keys_))
        self._move(TaskState.FINISHED, keys_, ("ys", "ys_extra"), [yss, extras])

    push_results = finish_tasks

    def fail_tasks(self, keys: str | Sequence[str], conditions: Sequence[dict] | None = None) -> None:
        """Move running tasks to failed with ``conditions`` (default ``{"message": "Task failed"}``)."""
        keys_ = key_list("keys", keys)
        conds = matching("conditions", conditions, len(keys_), DEFAULT_CONDITION)
        self._move(TaskState.FAILED, keys_, ("condition",), [conds])

    def push_failed(self, keys: str | Sequence[str], conditions: Sequence[dict] | None = None) -> None:
        """Same as ``fail_tasks`` (the article's name)."""
        self.fail_tasks(keys, conditions)

    def _move(self, state: TaskState, keys: list[str], fields: tuple[str, ...],
              columns: list[list]) -> None:
        if not keys:
            return
        rows = [[dumps(c[i]) if c[i] is not None else "" for c in columns] for i in range(len(keys))]
        try:
            discarded = self._store.move(state, keys, fields, rows, self._worker_id)
        except WorkerStoppedError:
            logger.warning("worker %s was stopped: discarded the results of %d task(s)",
                           self._worker_id, len(keys))
            return
        if discarded:
            logger.warning("discarded %d task(s) that were not running (first writer wins): %s",
                           len(discarded), ", ".join(discarded[:5]) + (" ..." if len(discarded) > 5 else ""))

    def pop_task(self, timeout: float = 1, fields: str | Sequence[str] = ("xs",)) -> dict | None:
        """Take the oldest queued task and mark it running: ``{"key": ..., "xs": {...}}``.

        Waits up to ``timeout`` seconds (blocking in Redis) for a task; ``None`` if none came.
        Raises ``WorkerStoppedError`` once the worker was killed or declared lost.
        """
        names = field_list("fields", fields)
        positive_number("timeout", timeout)
        got = self._store.pop(self._worker_id, names)
        if got is None and timeout > 0 and self._store.pop_to_pending(self._worker_id, timeout):
            got = self._store.claim_pending(self._worker_id, names)
        if got is None:
            return None
        task: dict[str, Any] = {"key": decode(got[0])}
        for name, raw in zip(names, got[1:]):
            task[name] = None if raw is None else frames.decode_value(name, raw)
        return task
