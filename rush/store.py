"""The task store: the one narrow layer through which tasks are read from and written to
Redis. Every method is one round trip (a Lua script, a pipeline or MULTI)."""

from __future__ import annotations

from typing import Sequence

import redis

from .config import RedisConfig
from .connection import translate_errors
from .errors import WorkerStoppedError
from .keys import NetworkKeys
from .scripts import Scripts
from .states import TASK_STATES, TaskState
from .waiting import block_slices

Row = Sequence["bytes | str"]  # one task: F encoded values, "" = field absent
_LIST_STATES = (TaskState.QUEUED, TaskState.FINISHED)
# Per-state lookups on the hot path (one dict lookup instead of Enum work per call), keyed
# by member and by value: a str Enum member hashes by its name, not by its value.
_KIND: dict[TaskState | str, str] = {**{s: "list" if s in _LIST_STATES else "set" for s in TaskState},
         **{s.value: "list" if s in _LIST_STATES else "set" for s in TaskState}}
_NOTIFY = {s: s in (TaskState.FINISHED, TaskState.FAILED) for s in (*TaskState, *TASK_STATES)}


def _is_stopped(error: redis.exceptions.ResponseError) -> bool:
    return str(error).startswith("WORKER_STOPPED")


def decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class NetworkLayer:
    """Base of the Redis access layers of one network: its client, keys and scripts."""

    def __init__(self, client: redis.Redis, keys: NetworkKeys, scripts: Scripts,
                 config: RedisConfig) -> None:
        self.client = client
        self.keys = keys
        self.scripts = scripts
        self.config = config


@translate_errors(lambda self: self.config)
class TaskStore(NetworkLayer):
    """Reads and writes the tasks of one network."""

    def __init__(self, client: redis.Redis, keys: NetworkKeys, scripts: Scripts,
                 config: RedisConfig) -> None:
        super().__init__(client, keys, scripts, config)
        by_value = {"queued": keys.queued, "running": keys.running,
                    "finished": keys.finished, "failed": keys.failed}
        self._collections: dict[TaskState | str, str] = {**by_value, **{s: by_value[s.value] for s in TaskState}}

    def collection(self, state: TaskState | str) -> str:
        """The Redis key of the collection holding tasks in ``state``."""
        try:
            return self._collections[state]
        except (KeyError, TypeError):
            return self._collections[TaskState(state).value]  # ValueError for unknown states

    # -- writes --------------------------------------------------------------------

    def create(self, state: TaskState, keys: Sequence[str], fields: Sequence[str],
               rows: Sequence[Row], worker_id: str = "") -> bool:
        """Create tasks ``keys`` in ``state`` with ``rows`` of field values, atomically.

        Returns whether the writing worker was told to terminate (False for a controller).
        """
        k = self.keys
        _, terminate = self._write_rows(
            "create_tasks", [k.all_tasks, self.collection(state), k.worker_states, k.terminate],
            [_KIND[state], worker_id, self._channel_for(state)], fields, keys, rows)
        return bool(terminate)

    def move(self, state: TaskState, keys: Sequence[str], fields: Sequence[str],
             rows: Sequence[Row], worker_id: str = "") -> tuple[list[str], bool]:
        """Move running tasks to ``state`` (finished or failed), writing ``rows``.

        Returns the keys that were not running and so were left alone, and whether the
        writing worker was told to terminate.
        """
        k = self.keys
        terminate, discarded = self._write_rows(
            "move_tasks", [k.running, self.collection(state), k.worker_states, k.terminate],
            [_KIND[state], worker_id, k.events], fields, keys, rows)
        return ([decode(x) for x in discarded] if discarded else []), bool(terminate)

    def _write_rows(self, script: str, fixed_keys: list[str], head: list, fields: Sequence[str],
                    keys: Sequence[str], rows: Sequence[Row]) -> list:
        """Call a script with the layout create_tasks/move_tasks share: the fixed KEYS, then
        one task hash per key; ARGV ``head``, the field names, then per task its key and row."""
        prefix = self.keys.task_prefix
        script_keys = list(fixed_keys)
        args: list = [*head, len(fields), *fields]
        for key, row in zip(keys, rows):
            script_keys.append(prefix + key)
            args.append(key)
            args.extend(row)
        return self._call_as_worker(script, script_keys, args)

    def _channel_for(self, state: TaskState) -> str:
        return self.keys.events if _NOTIFY[state] else ""

    def _call_as_worker(self, name: str, keys: list[str], args: list) -> list:
        try:
            return self.scripts.call(name, keys, args)
        except redis.exceptions.ResponseError as e:
            if _is_stopped(e):
                raise WorkerStoppedError("this worker no longer runs (it was killed, found lost "
                                         "or has terminated): Redis refuses its task writes") from None
            raise

    def pop(self, worker_id: str, fields: Sequence[str]) -> list | None:
        """Move the oldest queued task to running for ``worker_id``: ``[key, *values]``."""
        return self._claim(self.keys.queued, worker_id, fields)

    def pop_to_pending(self, worker_id: str, timeout: float) -> str | None:
        """Block up to ``timeout`` s for a queued task and move it to the worker's pending list."""
        for block in block_slices(timeout):  # short blocks: see MAX_BLOCK_SECONDS
            key = self.client.blmove(self.keys.queued, self.keys.pending(worker_id), block,
                                     "LEFT", "RIGHT")
            if key is not None:
                return decode(key)  # type: ignore[arg-type]  # BLMOVE replies bytes
        return None

    def claim_pending(self, worker_id: str, fields: Sequence[str]) -> list | None:
        """Mark the task in the worker's pending list running: ``[key, *values]``."""
        return self._claim(self.keys.pending(worker_id), worker_id, fields)

    def _claim(self, source: str, worker_id: str, fields: Sequence[str]) -> list | None:
        return self._call_as_worker(
            "claim_task", [source, self.keys.running, self.keys.worker_states, self.keys.queued],
            [worker_id, self.keys.task_prefix, *fields])

    def stop_worker(self, worker_id: str, state: str, condition: bytes) -> list[str] | None:
        """Mark a running worker ``state`` (killed/lost) and fail its running and pending
        tasks with ``condition``. ``None`` when the worker was not running."""
        k = self.keys
        failed = self.scripts.call(
            "stop_worker", [k.worker_states, k.running, k.failed, k.pending(worker_id)],
            [worker_id, state, condition, k.task_prefix, k.events])
        return None if failed is None else [decode(x) for x in failed]

    def sweep_pending(self, condition: bytes) -> list[str]:
        """Fail the tasks left in pending lists of workers that no longer run."""
        k = self.keys
        failed = self.scripts.call("sweep_pending", [k.worker_states, k.failed],
                                   [k.pending(""), condition, k.task_prefix, k.events])
        return [decode(x) for x in failed]

    def empty_queue(self, condition: bytes) -> list[str]:
        """Move every queued task to failed with ``condition``."""
        moved = self.scripts.call("empty_queue", [self.keys.queued, self.keys.failed],
                                  [condition, self.keys.task_prefix, self.keys.events])
        return [decode(x) for x in moved]

    def write_hashes(self, keys: Sequence[str], fields: Sequence[str],
                     rows: Sequence[Row]) -> None:
        """Write fields into task hashes (one pipeline)."""
        pipe = self.client.pipeline(transaction=True)
        for key, row in zip(keys, rows):
            mapping: dict[str | bytes, bytes | float | int | str] = {
                f: v for f, v in zip(fields, row) if v != ""}
            if mapping:
                pipe.hset(self.keys.task(key), mapping=mapping)
        pipe.execute()

    def delete(self, workers: bool) -> int:
        """Delete the task data of the network, and with ``workers`` every other key too."""
        k = self.keys
        if workers:
            return self.scripts.call("delete_keys", [], [k.pattern()])
        fixed = [k.all_tasks, k.queued, k.running, k.finished, k.failed]
        return self.scripts.call("delete_keys", fixed,
                                 [k.task_pattern(), k.pending_pattern()])

    # -- reads ---------------------------------------------------------------------

    def read(self, states: Sequence[TaskState], fields: Sequence[str], start: int = 0,
             stop: int = -1) -> tuple[list[str], list[int], list, list[str]]:
        """Keys and field values of the tasks in ``states``, one consistent snapshot.

        Returns ``(keys, count per state, flat values, vanished keys)``; ``start``/``stop``
        slice list collections (queued, finished, all).
        """
        kinds = "".join("l" if s in _LIST_STATES else "s" for s in states)
        colls = [self.collection(s) for s in states]
        return self._read(colls, kinds, fields, start, stop)

    def read_all(self, fields: Sequence[str], start: int = 0, stop: int = -1
                 ) -> tuple[list[str], list[int], list, list[str]]:
        """Like ``read`` over every task, in creation order."""
        return self._read([self.keys.all_tasks], "l", fields, start, stop)

    def _read(self, colls: list[str], kinds: str, fields: Sequence[str], start: int,
              stop: int) -> tuple[list[str], list[int], list, list[str]]:
        keys, counts, values, vanished = self.scripts.call(
            "read_tasks", colls, [kinds, start, stop, self.keys.task_prefix, *fields])
        return ([decode(k) for k in keys], counts, values, [decode(k) for k in vanished])

    def read_hashes(self, keys: Sequence[str], fields: Sequence[str]) -> list[list]:
        """Field values of the given task hashes (one pipeline)."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(self.keys.task(key), list(fields))
        return pipe.execute()

    def keys_in(self, states: Sequence[TaskState]) -> dict[str, list[str]]:
        """Keys per state, one consistent snapshot (MULTI)."""
        pipe = self.client.pipeline(transaction=True)
        for state in states:
            coll = self.collection(state)
            if state in _LIST_STATES:
                pipe.lrange(coll, 0, -1)
            else:
                pipe.smembers(coll)
        replies = pipe.execute()
        return {TaskState(s).value: [decode(k) for k in r] for s, r in zip(states, replies)}

    def all_keys(self) -> list[str]:
        """Every task key in creation order."""
        return [decode(k) for k in self.client.lrange(self.keys.all_tasks, 0, -1)]

    def count(self, state: TaskState | None) -> int:
        """Number of tasks in ``state`` (``None``: all tasks)."""
        if state is None:
            return self.client.llen(self.keys.all_tasks)
        coll = self.collection(state)
        return self.client.llen(coll) if state in _LIST_STATES else self.client.scard(coll)

    def are_members(self, state: TaskState, keys: Sequence[str]) -> list[bool]:
        """For each key, whether it is in the (set) collection of ``state``."""
        if not keys:
            return []
        return [bool(x) for x in self.client.smismember(self.collection(state), list(keys))]

    def progress(self, keys: Sequence[str], cursor: int) -> tuple[set[str], int, int]:
        """For waiting on tasks, in one round trip: which of ``keys`` are finished (among
        those finished since ``cursor``) or failed, the new cursor, and how many workers run.
        """
        pipe = self.client.pipeline(transaction=True)
        pipe.lrange(self.keys.finished, cursor, -1)
        if keys:
            pipe.smismember(self.keys.failed, list(keys))
        pipe.hvals(self.keys.worker_states)
        replies = pipe.execute()
        finished = {decode(k) for k in replies[0]}
        settled = {k for k in keys if k in finished}
        if keys:
            settled.update(k for k, failed in zip(keys, replies[1]) if failed)
        running = sum(1 for s in replies[-1] if s == b"running")
        return settled, cursor + len(replies[0]), running
