"""``RushWorker``: the view of the network a worker's loop gets, with the methods that
change the tasks it works on."""

from __future__ import annotations

import itertools
import logging
import os
import socket
import subprocess
import time
import uuid
from typing import Any, Sequence

from . import frames
from ._process import reap
from .config import RedisConfig
from .controller import Rush, _rows, new_keys
from .crashes import Crash
from .errors import WorkerStoppedError
from .heartbeat import start_heartbeat
from .states import DEFAULT_CONDITION, LEFT_UNFINISHED_MESSAGE, TaskState, WorkerState
from .store import Claim, WriteReply
from .validation import (broadcast, check_heartbeat, dict_list, either, field_list, key_list,
                         matching, positive_number)
from .waiting import block_slices
from .worker_ids import new_worker_id

logger = logging.getLogger("rush")

#: How long the terminate flag reported by a task write stands for a fresh read.
TERMINATE_HINT_SECONDS = 0.05
#: Task fields a pop returns even when not asked for (only when the task has them).
_POP_EXTRAS = ("seed",)


def _with_extra(fields: tuple[str, str], values: list, extras: list
                ) -> tuple[tuple[str, ...], list[list]]:
    """A field and its extra field (``xs``, ``xs_extra``), without the extra when no task
    has one: an absent field is not stored anyway, and each value sent costs Redis a
    little on every call."""
    for extra in extras:
        if extra is not None:
            return fields, [values, extras]
    return fields[:1], [values]


class RushWorker(Rush):
    """A worker of a network. It registers itself as running when created.

    A user can create one in-process to debug a loop; ``rush.start_worker`` creates one in
    each worker process. Once the worker is killed or lost, Redis refuses its writes.
    """

    _guard_reads = False
    _ANNOUNCES = False  # its registration puts the network into the index

    def __init__(self, network_id: str, config: RedisConfig | None = None,
                 worker_id: str | None = None, heartbeat_period: float | None = None,
                 heartbeat_expire: float | None = None, remote: bool = False,
                 incarnation: str | None = None) -> None:
        if network_id is None:
            raise TypeError("a RushWorker needs the network_id of its network")
        if worker_id is not None and not isinstance(worker_id, str):
            raise TypeError("worker_id must be a str")
        if incarnation is not None and not isinstance(incarnation, str):
            raise TypeError("incarnation must be a str")
        self.heartbeat_period, self.heartbeat_expire = check_heartbeat(heartbeat_period,
                                                                       heartbeat_expire)
        super().__init__(network_id, config)
        self._worker_id = worker_id or new_worker_id()
        self._incarnation = incarnation or uuid.uuid4().hex
        self._steps = itertools.count()
        self._hostname = socket.gethostname()
        self.remote = bool(remote)
        self._heartbeat: subprocess.Popen | None = None
        self._terminate_hint = (False, float("-inf"))  # (flag, when a write reported it)
        self._idle_hint = (False, float("-inf"))  # (terminate-on-idle, when a pop reported it)
        # the keys of the tasks this worker took and has not finished or failed yet, in the
        # order it took them: a crash names the first one
        self._taken: dict[str, None] = {}
        try:
            self._store.join()
            self.register()
        except BaseException:
            self.close()
            raise

    def register(self) -> None:
        """Record this worker as running (the constructor does it) and start its
        heartbeat process, if it has a heartbeat and none runs yet.

        ``RushError`` when the worker id already runs in another start of it, or was
        killed (``restart_workers`` is the way back).
        """
        self._registry.register(self._worker_id, self._incarnation, os.getpid(), self._hostname,
                                heartbeat_expire=self.heartbeat_expire, remote=self.remote)
        if self.heartbeat_period is not None and self.heartbeat_expire is not None \
                and self._heartbeat is None:
            self._heartbeat = start_heartbeat(
                self.network_id, self._worker_id, self._incarnation, self._store.epoch,
                self.config, self.heartbeat_period, self.heartbeat_expire)

    def _writer(self) -> tuple[str, str]:
        """Who writes: this worker, in its incarnation."""
        return self._worker_id, self._incarnation

    def _step(self) -> str:
        """A fresh id for a claim: the same claim resent (after a lost reply) gets the
        task it took the first time, from Redis's record, instead of a second one."""
        return f"{self._incarnation}.{next(self._steps)}"

    @property
    def heartbeat_pid(self) -> int | None:
        """The pid of this worker's heartbeat process, if one runs."""
        return None if self._heartbeat is None else self._heartbeat.pid

    def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            reap(self._heartbeat)
            self._heartbeat = None

    def close(self) -> None:
        """Stop the heartbeat process (if any) and close the connections."""
        self._stop_heartbeat()
        super().close()


    @property
    def worker_id(self) -> str:
        """The id of this worker."""
        return self._worker_id

    @property
    def incarnation(self) -> str:
        """The token of this start of the worker id (a restart gets a new one)."""
        return self._incarnation

    @property
    def hostname(self) -> str:
        """The host this worker runs on."""
        return self._hostname

    @property
    def terminated(self) -> bool:
        """True once the controller told this worker to terminate (or stopped it).

        Task writes bring the flag back with their reply: the first read right after one
        (within ``TERMINATE_HINT_SECONDS``) costs no round trip, so ``while not
        worker.terminated:`` loops stay at two round trips per task. That read may miss a
        flag raised in those few milliseconds; the next one sees it.
        """
        flag, seen = self._terminate_hint
        self._terminate_hint = (flag, float("-inf"))  # a hint answers one read only
        if flag or time.monotonic() - seen < TERMINATE_HINT_SECONDS:
            return flag
        flag, state = self._registry.terminate_state(self._worker_id)
        return flag or state != WorkerState.RUNNING.value

    @property
    def terminated_on_idle(self) -> bool:
        """True once tasks were pushed with ``terminate_workers=True`` and both the shared
        queue and this worker's own queue are empty: what a queue loop reads,
        ``while not worker.terminated_on_idle: task = worker.pop_task() ...``.

        A ``pop_task`` reports it with its reply, so the first read after one (within
        ``TERMINATE_HINT_SECONDS``) costs no round trip; a ``pop_task`` that finds no task
        while the flag is set returns at once.
        """
        flag, seen = self._idle_hint
        self._idle_hint = (flag, float("-inf"))  # a hint answers one read only
        if time.monotonic() - seen < TERMINATE_HINT_SECONDS:
            return flag
        return self._store.idle(self._worker_id)

    def set_terminated(self) -> bool:
        """Record that this worker left its loop normally; False when it was stopped
        before (a killed or lost worker stays so).

        A task it took and neither finished nor failed fails now (or goes back to the
        queue while it has retries left), with a WARNING: no task waits for a worker
        that has ended.
        """
        if not self._taken:
            return self._registry.set_terminated(self._worker_id, self._incarnation)
        left = list(self._taken)
        settled = self._store.stop_worker(self._worker_id, WorkerState.TERMINATED,
                                          {"message": LEFT_UNFINISHED_MESSAGE}, self._incarnation)
        if settled is None:
            return False
        self._taken.clear()
        logger.warning("worker %s left its loop with %d task(s) neither finished nor failed "
                       "(%s): they failed, or went back to the queue while they had retries",
                       self._worker_id, len(left), ", ".join(left[:5]))
        return True

    def record_crash(self, error: BaseException) -> Crash:
        """Record that this worker's loop raised ``error``: the crash (type, message,
        traceback, the task it was on) and an ERROR record of its log go to the network,
        then it becomes ``"lost"`` and its running and pending tasks fail with the crash's
        condition (or go back to the queue while they have retries left), now (no sweep
        needed)."""
        crash = Crash.of(self._worker_id, error, next(iter(self._taken), None))
        self._registry.record_crash(self._worker_id, crash.to_json(), crash.log_record())
        self._store.stop_worker(self._worker_id, WorkerState.LOST, crash.condition,
                                self._incarnation)
        return crash

    # -- tasks ---------------------------------------------------------------------

    def push_running_tasks(self, xss: Sequence[dict], xss_extra: Sequence[dict] | None = None,
                           extra: Sequence[dict] | None = None) -> list[str]:
        """Create tasks this worker runs now; returns their keys.

        Raises ``WorkerStoppedError`` once the worker was killed or declared lost.
        """
        xss = dict_list("xss", xss)
        extras = matching("xss_extra", either("xss_extra", xss_extra, "extra", extra), len(xss))
        fields, columns = _with_extra(("xs", "xs_extra"), xss, extras)
        keys, reply = self._create(TaskState.RUNNING, fields, columns)
        if reply is not None:
            self._terminate_hint = (reply.terminate, time.monotonic())
            self._taken.update(dict.fromkeys(keys))
        return keys

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
        self._move(TaskState.FINISHED, keys_, *_with_extra(("ys", "ys_extra"), yss, extras))

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
        rows = self._encode(keys, fields, columns)
        try:
            reply = self._store.move(state, keys, fields, rows, *self._writer())
        except WorkerStoppedError:
            self._discard(keys)
            return
        self._moved(keys, reply)

    def _encode(self, keys: list[str], fields: tuple[str, ...], columns: list[list]) -> list[list]:
        encoders = [self._serializer.encoder(f) for f in fields]
        return [[enc(key, c[i]) for enc, c in zip(encoders, columns)] for i, key in enumerate(keys)]

    def _discard(self, keys: list[str]) -> None:
        """The results of ``keys`` were refused: this worker no longer runs."""
        self._forget_taken(keys)
        logger.warning("worker %s no longer runs: discarded the results of %d task(s)",
                       self._worker_id, len(keys))

    def _moved(self, keys: list[str], reply: WriteReply) -> None:
        self._terminate_hint = (reply.terminate, time.monotonic())
        self._forget_taken(keys)
        if reply.skipped:
            logger.warning("discarded %d task(s) that were not running (first writer wins): %s",
                           len(reply.skipped), frames.preview(reply.skipped))

    # -- one round trip per step ---------------------------------------------------

    def finish_and_pop_task(self, keys: str | Sequence[str], yss: Sequence[dict],
                            yss_extra: Sequence[dict] | None = None, timeout: float = 1,
                            fields: str | Sequence[str] = ("xs",)) -> dict | None:
        """``finish_tasks(keys, yss, yss_extra)`` then ``pop_task(timeout, fields)``, in one
        round trip: a queue worker's step. Returns the next task, as ``pop_task``.

        The same semantics as the two calls: keys that are not running are discarded with
        a warning (first writer wins); when no task is queued it waits up to ``timeout``
        seconds (the results are stored before it waits). Once the worker was killed or
        declared lost, nothing is written, the results are discarded with a warning and
        ``WorkerStoppedError`` is raised. Bad input raises before anything is sent.
        """
        keys_ = key_list("keys", keys)
        yss = broadcast("yss", dict_list("yss", yss), len(keys_), against="keys")
        names, columns = _with_extra(("ys", "ys_extra"), yss,
                                     matching("yss_extra", yss_extra, len(keys_)))
        return self._move_and_pop(TaskState.FINISHED, keys_, names, columns, timeout, fields)

    def fail_and_pop_task(self, keys: str | Sequence[str],
                          conditions: Sequence[dict] | None = None, timeout: float = 1,
                          fields: str | Sequence[str] = ("xs",)) -> dict | None:
        """``fail_tasks(keys, conditions)`` then ``pop_task(timeout, fields)``, in one round
        trip; as ``finish_and_pop_task`` otherwise."""
        keys_ = key_list("keys", keys)
        conds = matching("conditions", conditions, len(keys_), DEFAULT_CONDITION)
        return self._move_and_pop(TaskState.FAILED, keys_, ("condition",), [conds], timeout,
                                  fields)

    def _move_and_pop(self, state: TaskState, keys: list[str], fields: tuple[str, ...],
                      columns: list[list], timeout: float, pop_fields: str | Sequence[str]
                      ) -> dict | None:
        names = field_list("fields", pop_fields)
        positive_number("timeout", timeout)
        wanted = names + tuple(f for f in _POP_EXTRAS if f not in names)
        rows = self._encode(keys, fields, columns)
        try:
            reply, claim = self._store.move_and_claim(state, keys, fields, rows, *self._writer(),
                                                      wanted, self._step())
        except WorkerStoppedError:
            self._discard(keys)
            raise
        self._moved(keys, reply)
        return self._claimed(claim, wanted, len(names), timeout)

    def finish_and_push_running_tasks(
            self, keys: str | Sequence[str], yss: Sequence[dict], xss: Sequence[dict],
            yss_extra: Sequence[dict] | None = None,
            xss_extra: Sequence[dict] | None = None) -> list[str]:
        """``finish_tasks(keys, yss, yss_extra)`` then ``push_running_tasks(xss,
        xss_extra)``, in one round trip: a decentralized worker's step. Returns the keys of
        the new tasks.

        The same semantics as the two calls: keys that are not running are discarded with
        a warning (first writer wins). Once the worker was killed or declared lost, nothing
        is written, the results are discarded with a warning and ``WorkerStoppedError`` is
        raised. Bad input raises before anything is sent.
        """
        keys_ = key_list("keys", keys)
        yss = broadcast("yss", dict_list("yss", yss), len(keys_), against="keys")
        xss = dict_list("xss", xss)
        fields, columns = _with_extra(("ys", "ys_extra"), yss,
                                      matching("yss_extra", yss_extra, len(keys_)))
        new_fields, new_columns = _with_extra(("xs", "xs_extra"), xss,
                                              matching("xss_extra", xss_extra, len(xss)))
        rows = self._encode(keys_, fields, columns)
        new = new_keys(len(xss))
        new_rows = _rows(self._serializer, new, new_fields, new_columns)
        try:
            moved, _ = self._store.move_and_create(TaskState.FINISHED, keys_, fields, rows, new,
                                                   new_fields, new_rows, *self._writer())
        except WorkerStoppedError:
            self._discard(keys_)
            raise
        self._moved(keys_, moved)
        self._taken.update(dict.fromkeys(new))
        return new

    def _forget_taken(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._taken.pop(key, None)

    def pop_task(self, timeout: float = 1, fields: str | Sequence[str] = ("xs",)) -> dict | None:
        """Take the next task and mark it running: ``{"key": ..., "xs": {...}}``, plus its
        ``"seed"`` when it has one. Tasks in this worker's own queue (``push_priority_tasks``)
        come before the shared queue.

        Waits up to ``timeout`` seconds (blocking in Redis) for a task; ``None`` if none came,
        or at once when the queues are empty and the workers were told to leave then
        (``terminated_on_idle``). Raises ``WorkerStoppedError`` once the worker was killed or
        declared lost.
        """
        names = field_list("fields", fields)
        positive_number("timeout", timeout)
        wanted = names + tuple(f for f in _POP_EXTRAS if f not in names)
        claim = self._store.pop(self._worker_id, self._incarnation, wanted, self._step())
        return self._claimed(claim, wanted, len(names), timeout)

    def _claimed(self, claim: Claim, wanted: tuple[str, ...], n_requested: int,
                 timeout: float) -> dict | None:
        """The task of a claim; when there was none, wait for one up to ``timeout`` s."""
        if claim.key is None and not claim.idle and timeout > 0:
            claim = self._wait_for_task(wanted, timeout)
        seen = time.monotonic()
        self._terminate_hint = (claim.terminate, seen)
        self._idle_hint = (claim.idle, seen)
        if claim.key is None:
            return None
        self._taken[claim.key] = None
        return self._task(claim, wanted, n_requested)

    def _wait_for_task(self, fields: Sequence[str], timeout: float) -> Claim:
        """Block up to ``timeout`` s for a task of the shared queue, in short slices; after
        each empty slice, look at the own queue and the terminate-on-idle flag again (a
        blocking move can watch one list only)."""
        claim = Claim(None, [], False)
        wid, incarnation = self._worker_id, self._incarnation
        for block in block_slices(timeout):
            if self._store.pop_to_pending(wid, block) is not None:
                return self._store.claim_pending(wid, incarnation, fields, self._step())
            claim = self._store.pop(wid, incarnation, fields, self._step())
            if claim.key is not None or claim.idle:
                return claim
        return claim

    def _task(self, claim: Claim, names: Sequence[str], n_requested: int) -> dict[str, Any]:
        """The popped task: the requested fields, then the extras the task has (each payload
        checked before it is unpickled)."""
        key = claim.key
        assert key is not None
        task: dict[str, Any] = {"key": key}
        for i, (name, raw) in enumerate(zip(names, claim.values)):
            if raw is None:
                if i < n_requested:
                    task[name] = None
            else:
                task[name] = self._serializer.decoder(name)(key, raw)
        return task
