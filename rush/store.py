"""The task store: the one narrow layer through which tasks are read from and written to
Redis."""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable, NamedTuple, Sequence

from .connection import translate_errors
from .errors import RushError, RushValueTooLargeError
from .layer import NetworkLayer, decode
from .serialization import dumps
from .states import LOST_MESSAGE, RETRIES_MESSAGE, TIMEOUT_MESSAGE, TaskState, WorkerState

Row = Sequence["bytes | str"]  # one task: F encoded values, "" = field absent
_LIST_STATES = frozenset({TaskState.QUEUED, TaskState.FINISHED})
#: How a script adds a key to the collection of each state.
_KIND = {TaskState.QUEUED: "list", TaskState.FINISHED: "list", TaskState.FAILED: "set",
         TaskState.RUNNING: "running"}
_RUNNING = WorkerState.RUNNING.value
_MIB = 1024 * 1024
#: The largest string Redis stores (its ``proto-max-bulk-len`` default).
REDIS_MAX_VALUE_BYTES = 512 * _MIB
#: Bounds of one script call: well under Redis's 1,048,576 arguments per command, and a
#: request size that keeps the server's query buffer small.
MAX_CALL_ARGS = 200_000
MAX_CALL_BYTES = 64 * _MIB
#: Members a reset frees per call (each with a few keys): a few milliseconds of Redis.
TRASH_SLICE = 1000
#: Workers ``stop_workers`` stops per script call (each a handful of commands).
STOP_CHUNK = 1000
#: Queued tasks ``empty_queue`` fails per script call.
EMPTY_QUEUE_CHUNK = 10_000
#: How often a stop step may ask for conditions of tasks that appeared meanwhile (a worker
#: still claiming tasks) before giving up: in practice it asks once.
SETTLE_ROUNDS = 20


class WriteReply(NamedTuple):
    """Reply of a task write by a worker."""

    skipped: list[str]  # keys left alone: already existing (create) or not running (move)
    terminate: bool  # whether the writing worker was told to terminate


class Claim(NamedTuple):
    """Reply of a pop: the task taken (``key`` None when there was none), the worker's
    terminate flag, and (when there was none) whether the terminate-on-idle flag is set."""

    key: str | None
    values: list
    terminate: bool
    idle: bool = False


class Settled(NamedTuple):
    """What a stop step did with the tasks a worker left: failed, or back in the queue
    (retries left)."""

    failed: list[str]
    requeued: list[str]


def _settled(reply: list) -> Settled:
    return Settled([decode(k) for k in reply[0]], [decode(k) for k in reply[1]])


def condition_of(spec: str, conditions: dict[str, dict]) -> dict:
    """The condition a stop step's spec names (see ``settle_plan`` in ``_lib.lua``): the
    condition of its variant (first letter), for a task that used its last attempt
    (attempts following) as ``RETRIES_MESSAGE``."""
    condition = conditions[spec[0]]
    if len(spec) == 1:
        return condition
    exhausted = {"message": RETRIES_MESSAGE.format(attempts=int(spec[1:]),
                                                   message=condition.get("message", ""))}
    exhausted.update((k, v) for k, v in condition.items() if k != "message")
    return exhausted


def _too_large(key: str, field: str, size: int, limit: int) -> RushValueTooLargeError:
    return RushValueTooLargeError(
        f"task {key}: field {field!r} takes {size / _MIB:.1f} MiB, more than the "
        f"{limit / _MIB:g} MiB a value may have (the largest Redis string, or "
        "rush_plan(max_value_size=...)): nothing was written. Keep large data out of Redis: "
        "write it to a file in a directory the workers share (like large_objects_path) "
        "and store its path")


@translate_errors(lambda self: self.config)
class TaskStore(NetworkLayer):
    """Reads and writes the tasks of one network.

    Invariants, whatever the callers do concurrently: every state change is one atomic
    step that moves a key only if it is still in its source (first writer wins), so a
    task is in exactly one state collection, or in the own queue of a running worker
    (state queued), or for one round trip only in a worker's pending list; a task's hash
    and its place in the collections appear together; a worker that is not running (in
    its incarnation) writes nothing (``WorkerStoppedError``), and a worker's step sent
    twice runs once; the step that stops a worker settles every task it leaves (failed,
    or back in the queue while it has retries left: a task is handed out at most
    ``max_retries + 1`` times).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # a str Enum member hashes and compares like its value: one dict serves both
        self._collections = {s: getattr(self.keys, s.value) for s in TaskState}
        #: Values larger than this are refused before they are sent.
        self.max_value_bytes = REDIS_MAX_VALUE_BYTES

    def collection(self, state: TaskState | str) -> str:
        """The Redis key of the collection holding tasks in ``state``."""
        try:
            return self._collections[state]  # type: ignore[index]
        except KeyError:
            return self._collections[TaskState(state)]  # ValueError for unknown states

    # -- writes --------------------------------------------------------------------

    def create(self, state: TaskState, keys: Sequence[str], fields: Sequence[str],
               rows: Sequence[Row], worker_id: str = "", incarnation: str = "") -> WriteReply:
        """Create tasks ``keys`` in ``state`` with ``rows`` of field values, atomically.

        A worker (``worker_id``) must be running in its ``incarnation``; a controller
        (``worker_id=""``) needs the network it joined. Safe to resend: existing tasks are
        skipped.
        """
        k = self.keys
        channel = k.events if state in (TaskState.FINISHED, TaskState.FAILED) else ""
        return self._write_rows(
            "create_tasks",
            [k.all_tasks, self.collection(state), k.worker_states, k.incarnations, k.epoch,
             k.terminate, k.worker_running(worker_id)],
            [worker_id, incarnation, _RUNNING, self.epoch, "", _KIND[state], channel],
            fields, keys, rows)

    def move(self, state: TaskState, keys: Sequence[str], fields: Sequence[str],
             rows: Sequence[Row], worker_id: str, incarnation: str) -> WriteReply:
        """Move running tasks to ``state`` (finished or failed), writing ``rows``; keys
        that are not running are left alone (``skipped``), unless this very call moved
        them before (a resend). As ``create`` otherwise."""
        k = self.keys
        return self._write_rows(
            "move_tasks",
            [k.running, self.collection(state), k.worker_states, k.incarnations, k.epoch,
             k.terminate, k.worker_running(worker_id)],
            [worker_id, incarnation, _RUNNING, self.epoch, "", _KIND[state], k.events],
            fields, keys, rows)

    def _write_rows(self, script: str, script_keys: list[str], head: list,
                    fields: Sequence[str], keys: Sequence[str], rows: Sequence[Row]
                    ) -> WriteReply:
        """Call a script with the layout create_tasks/move_tasks share: ARGV ``head`` (the
        WRITER block and two more), the task prefix, the field names, then per task its key
        and row. A call too large for one request goes in chunks, each atomic per task."""
        tail = [self.keys.task_prefix, len(fields), *fields]
        skipped: list[str] = []
        terminate = False
        for chunk in self._chunks(fields, keys, rows):
            args = [*head, *tail]
            for key, row in chunk:
                args.append(key)
                args.extend(row)
            flag, left = self._script(script, script_keys, args)
            terminate = bool(flag)
            if left:
                skipped += [decode(x) for x in left]
        return WriteReply(skipped, terminate)

    def _chunks(self, fields: Sequence[str], keys: Sequence[str], rows: Sequence[Row]
                ) -> list[list[tuple[str, Row]]]:
        """The rows in call-sized chunks; ``RushValueTooLargeError`` (before anything is
        sent) for a value over ``max_value_bytes``."""
        limit = self.max_value_bytes
        chunks: list[list[tuple[str, Row]]] = [[]]
        n_args = n_bytes = 0
        for key, row in zip(keys, rows):
            size = 0
            for field, value in zip(fields, row):
                if len(value) > limit:
                    raise _too_large(key, field, len(value), limit)
                size += len(value)
            if chunks[-1] and (n_args + len(row) + 1 > MAX_CALL_ARGS
                               or n_bytes + size > MAX_CALL_BYTES):
                chunks.append([])
                n_args = n_bytes = 0
            chunks[-1].append((key, row))
            n_args += len(row) + 1
            n_bytes += size
        return chunks

    def move_and_claim(self, state: TaskState, keys: Sequence[str], fields: Sequence[str],
                       rows: Sequence[Row], worker_id: str, incarnation: str,
                       wanted: Sequence[str], step: str) -> tuple[WriteReply, Claim]:
        """A queue worker's step in one round trip: ``move`` its running tasks ``keys`` to
        ``state`` (finished or failed), then ``pop`` its next task (fields ``wanted``).
        Both or neither; as the two calls otherwise. Rows too large for one call go as
        the two calls."""
        if not self._fits(fields, keys, rows):
            moved = self.move(state, keys, fields, rows, worker_id, incarnation)
            return moved, self.pop(worker_id, incarnation, wanted, step)
        k = self.keys
        args = [worker_id, incarnation, _RUNNING, self.epoch, step, _KIND[state], k.events,
                k.task_prefix, len(fields), *fields, len(keys)]
        for key, row in zip(keys, rows):
            args.append(key)
            args.extend(row)
        reply = self._script(
            "move_and_claim",
            [k.running, self.collection(state), k.worker_states, k.incarnations, k.epoch,
             k.terminate, k.worker_running(worker_id), k.pending(worker_id), k.queued,
             k.step(worker_id), k.own_queue(worker_id), k.priority, k.deadlines(worker_id),
             k.terminate_on_idle],
            [*args, *wanted])
        terminate, at = bool(reply[0]), 3 + reply[2]
        moved = WriteReply([decode(x) for x in reply[3:at]], terminate)
        if len(reply) == at:
            return moved, Claim(None, [], terminate, bool(reply[1]))
        return moved, Claim(decode(reply[at]), reply[at + 1:], terminate)

    def move_and_create(self, state: TaskState, keys: Sequence[str], fields: Sequence[str],
                        rows: Sequence[Row], new_keys: Sequence[str],
                        new_fields: Sequence[str], new_rows: Sequence[Row], worker_id: str,
                        incarnation: str) -> tuple[WriteReply, WriteReply]:
        """A decentralized worker's step in one round trip: ``move`` its running tasks
        ``keys`` to ``state``, then ``create`` tasks ``new_keys`` running on it. Both or
        neither; as the two calls otherwise (replies: the move's, the create's). Rows too
        large for one call go as the two calls."""
        # each half within a call's bounds keeps the sum well under Redis's own limits
        fits = self._fits(fields, keys, rows) and self._fits(new_fields, new_keys, new_rows)
        if not fits:
            return (self.move(state, keys, fields, rows, worker_id, incarnation),
                    self.create(TaskState.RUNNING, new_keys, new_fields, new_rows, worker_id,
                                incarnation))
        k = self.keys
        args = [worker_id, incarnation, _RUNNING, self.epoch, "", _KIND[state], k.events,
                k.task_prefix, len(fields), *fields, len(keys)]
        for key, row in zip(keys, rows):
            args.append(key)
            args.extend(row)
        args += [len(new_fields), *new_fields]
        for key, row in zip(new_keys, new_rows):
            args.append(key)
            args.extend(row)
        reply = self._script(
            "move_and_create",
            [k.running, self.collection(state), k.worker_states, k.incarnations, k.epoch,
             k.terminate, k.worker_running(worker_id), k.all_tasks], args)
        terminate, at = bool(reply[0]), 2 + reply[1]
        return (WriteReply([decode(x) for x in reply[2:at]], terminate),
                WriteReply([decode(x) for x in reply[at:]], terminate))

    def _fits(self, fields: Sequence[str], keys: Sequence[str], rows: Sequence[Row]) -> bool:
        """Whether the rows go in one call (as ``_chunks`` would send them); without
        building the chunks, for the steps' few rows. ``RushValueTooLargeError`` as
        ``_chunks``."""
        limit = self.max_value_bytes
        n_bytes = 0
        for row in rows:
            for value in row:
                if len(value) > limit:
                    self._chunks(fields, keys, rows)  # raises, naming the task and field
                n_bytes += len(value)
        return len(keys) + sum(map(len, rows)) <= MAX_CALL_ARGS and n_bytes <= MAX_CALL_BYTES

    def create_priority(self, keys: Sequence[str], targets: Sequence[str],
                        fields: Sequence[str], rows: Sequence[Row]) -> list[str]:
        """Create queued tasks, each in the own queue of the worker in ``targets`` while it
        runs, else in the shared queue; returns the keys that went to the shared queue."""
        k = self.keys
        args: list = [_RUNNING, k.own_queue_prefix, k.task_prefix, self.epoch, len(fields),
                      *fields]
        for key, target, row in zip(keys, targets, rows):
            args.append(key)
            args.append(target)
            args.extend(row)
        shared = self._script("create_priority_tasks",
                              [k.all_tasks, k.queued, k.worker_states, k.priority, k.epoch], args)
        return [decode(x) for x in shared]

    def set_terminate_on_idle(self) -> None:
        """Tell the workers to leave once the queues are empty (``terminated_on_idle``)."""
        self.client.set(self.keys.terminate_on_idle, 1)

    def idle(self, worker_id: str) -> bool:
        """Whether the terminate-on-idle flag is set and the shared queue and the worker's
        own queue are empty (one round trip)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.exists(self.keys.terminate_on_idle)
        pipe.llen(self.keys.queued)
        pipe.llen(self.keys.own_queue(worker_id))
        flag, shared, own = pipe.execute()
        return bool(flag) and shared == 0 and own == 0

    def pop(self, worker_id: str, incarnation: str, fields: Sequence[str], step: str = ""
            ) -> Claim:
        """Move a task to running for the worker: the one in its pending list, else the
        oldest of its own queue, else of the shared queue."""
        return self._claim(worker_id, incarnation, fields, step, pending_only=False)

    def pop_to_pending(self, worker_id: str, block: float) -> str | None:
        """Block up to ``block`` s (keep it under the socket timeout: see
        ``waiting.MAX_BLOCK_SECONDS``) for a task of the shared queue and move it to the
        worker's pending list (a resent BLMOVE may move a second one there: the next claim
        takes it)."""
        key = self.client.blmove(self.keys.queued, self.keys.pending(worker_id),
                                 block, "LEFT", "RIGHT")  # type: ignore[arg-type]  # float s
        return None if key is None else decode(key)  # type: ignore[arg-type]  # bytes

    def claim_pending(self, worker_id: str, incarnation: str, fields: Sequence[str],
                      step: str = "") -> Claim:
        """Mark the task in the worker's pending list running."""
        return self._claim(worker_id, incarnation, fields, step, pending_only=True)

    def _claim(self, worker_id: str, incarnation: str, fields: Sequence[str], step: str,
               pending_only: bool) -> Claim:
        k = self.keys
        reply = self._script(
            "claim_task",
            [k.pending(worker_id), k.queued, k.running, k.worker_states, k.incarnations,
             k.epoch, k.terminate, k.worker_running(worker_id), k.step(worker_id),
             k.own_queue(worker_id), k.priority, k.deadlines(worker_id), k.terminate_on_idle],
            [worker_id, incarnation, _RUNNING, self.epoch, step, k.task_prefix,
             "1" if pending_only else "", *fields])
        task = reply[1]
        if not task:
            return Claim(None, [], bool(reply[0]), bool(reply[2]))
        return Claim(decode(task[0]), task[1:], bool(reply[0]))

    def stop_worker(self, worker_id: str, state: WorkerState, condition: dict,
                    incarnation: str = "", timed_out: tuple[str, dict] | None = None
                    ) -> Settled | None:
        """Mark a running worker ``state`` (killed/lost) and settle its running and pending
        tasks: each fails with ``condition``, or goes back to the queue while it has
        retries left; its own queue goes to the shared queue. With ``incarnation``, only if
        that start of the id runs. ``None`` when the worker was not running.

        ``timed_out=(key, condition)``: stop the worker only if task ``key`` still runs on
        it past its deadline (else ``None``), and settle that task with its own condition.
        """
        k = self.keys
        key, own = timed_out if timed_out is not None else ("", {})
        return self._settle(
            "stop_worker",
            [k.worker_states, k.incarnations, k.running, k.failed, k.pending(worker_id),
             k.worker_running(worker_id), k.queued, k.own_queue(worker_id), k.priority,
             k.deadlines(worker_id)],
            [worker_id, incarnation, _RUNNING, WorkerState(state).value, k.task_prefix,
             k.events, key], {"d": condition, "t": own})

    def stop_workers(self, worker_ids: Sequence[str], state: WorkerState, condition: dict
                     ) -> list[str]:
        """``stop_worker`` for many workers (whichever incarnation runs), in one step per
        ``STOP_CHUNK`` of them; returns the ids that were running and are stopped now, in
        the order given."""
        k = self.keys
        stopped: list[str] = []
        for at in range(0, len(worker_ids), STOP_CHUNK):
            chunk = list(worker_ids[at:at + STOP_CHUNK])
            reply = self._settle(
                "stop_workers", [k.worker_states, k.running, k.queued, k.failed, k.priority],
                [_RUNNING, WorkerState(state).value, k.task_prefix, k.events, k.pending_prefix,
                 k.worker_running_prefix, k.own_queue_prefix, k.deadlines_prefix, len(chunk),
                 *chunk], {"d": condition}, missing_at=3, parse=lambda r: r)
            stopped += [decode(w) for w in reply[0]]
        return stopped

    def _settle(self, script: str, keys: list[str], args: list, conditions: dict[str, dict],
                missing_at: int = 2, parse: Callable[[list], Any] = _settled) -> Any:
        """Call a stop step, signing the condition of each task it fails for that task: the
        step names the conditions it lacks (at ``missing_at`` of its reply) and changes
        nothing until it has them all. Returns ``parse(reply)``, ``None`` for a nil reply."""
        signed: list = []
        pickled: dict[str, bytes] = {}
        serializer = self.serializer
        for _ in range(SETTLE_ROUNDS):
            reply = self._script(script, keys, [*args, *signed])
            if reply is None:
                return None
            missing = reply[missing_at]
            if not missing:
                return parse(reply)
            for i in range(0, len(missing), 2):
                key, spec = decode(missing[i]), decode(missing[i + 1])
                if spec not in pickled:
                    pickled[spec] = dumps(condition_of(spec, conditions))
                signed += [key, spec,
                           serializer.seal(pickled[spec], serializer.task_place(key, "condition"))]
        raise RushError(f"{script} of network {self.keys.network_id!r} found new tasks to "
                        f"settle {SETTLE_ROUNDS} times in a row; try again")

    def stop_timed_out(self, worker_id: str, key: str, timeout: float, incarnation: str = ""
                       ) -> Settled | None:
        """Mark ``worker_id`` lost if task ``key`` still runs on it past its deadline: the
        task fails with ``TIMEOUT_MESSAGE`` (or is retried), the worker's other tasks as
        for any lost worker. ``None`` when nothing changed."""
        condition = {"message": TIMEOUT_MESSAGE.format(timeout=timeout)}
        return self.stop_worker(worker_id, WorkerState.LOST, {"message": LOST_MESSAGE},
                                incarnation, timed_out=(key, condition))

    def timed_out(self, worker_ids: Sequence[str]) -> list[tuple[str, str, float]]:
        """``(worker id, task key, timeout)`` of the tasks of these workers that run past
        their deadline."""
        if not worker_ids:
            return []
        k = self.keys
        flat = self._script("timed_out", [k.running],
                            [k.deadlines_prefix, k.task_prefix, *worker_ids])
        return [(decode(flat[i]), decode(flat[i + 1]), float(flat[i + 2]))
                for i in range(0, len(flat), 3)]

    def next_deadline(self, worker_id: str) -> tuple[str, float] | None:
        """The earliest deadline among the worker's tasks with a timeout: ``(task key,
        seconds from now)`` (by Redis's clock), or ``None``."""
        found = self._script("next_deadline", [self.keys.deadlines(worker_id)], [])
        if not found:
            return None
        return decode(found[0]), float(found[1])

    def sweep_pending(self, condition: dict) -> Settled:
        """Settle the tasks left in pending lists of workers that no longer run (fail, or
        back to the queue while they have retries left)."""
        k = self.keys
        settled = self._settle("sweep_pending", [k.worker_states, k.failed, k.queued, k.epoch],
                               [_RUNNING, k.pending_prefix, k.task_prefix, k.events, self.epoch],
                               {"d": condition})
        assert settled is not None
        return settled

    def empty_queue(self, condition: dict) -> list[str]:
        """Move every queued task to failed with ``condition`` (each task atomically; a task
        queued while this runs may stay queued)."""
        k = self.keys
        queued = [decode(x) for x in self._one(lambda c: c.lrange(k.queued, 0, -1))]
        pickled = dumps(condition)
        serializer = self.serializer
        moved: list[str] = []
        for at in range(0, len(queued), EMPTY_QUEUE_CHUNK):
            args: list = [k.task_prefix, k.events, self.epoch]
            for key in queued[at:at + EMPTY_QUEUE_CHUNK]:
                args += [key, serializer.seal(pickled, serializer.task_place(key, "condition"))]
            moved += [decode(x) for x in
                      self._script("empty_queue", [k.queued, k.failed, k.epoch], args)]
        return moved

    def write_hashes(self, keys: Sequence[str], fields: Sequence[str],
                     rows: Sequence[Row]) -> None:
        """Write fields into task hashes (one MULTI)."""
        self._chunks(fields, keys, rows)  # refuses a value too large before anything is sent
        pipe = self.client.pipeline(transaction=True)
        if keys:
            pipe.sadd(self.keys.hashes, *keys)  # so that reset() finds them
        for key, row in zip(keys, rows):
            mapping: dict[Any, Any] = {f: v for f, v in zip(fields, row) if v != ""}
            if mapping:
                pipe.hset(self.keys.task(key), mapping=mapping)
        self._run(pipe)

    def delete(self, workers: bool) -> None:
        """Delete the task data of the network, and with ``workers`` every other key too.

        One atomic step moves the data away (to readers it is gone at once); then it is
        freed in slices of ``TRASH_SLICE`` members, so Redis is never blocked for long,
        however large the network. A reset interrupted earlier is finished too.
        """
        k = self.keys
        reset_id = uuid.uuid4().hex
        trash = k.trash_prefix(reset_id)
        moved = k.fixed_keys() if workers else k.task_data_keys()
        moved_to = {key: trash + str(n) for n, key in enumerate(moved, start=1)}
        sources = [(moved_to[k.all_tasks], "list", [k.task_prefix]),
                   (moved_to[k.hashes], "set", [k.task_prefix]),
                   (trash + "workers", "set",
                    k.worker_prefixes() if workers else k.worker_task_prefixes())]
        if workers:
            sources.append((moved_to[k.start_args_ids], "set", [k.start_args_prefix()]))
        plan = {"sources": sources, "unlink": [*moved_to.values(), trash + "workers"]}
        self._script("trash_keys", [k.trash, k.worker_states, k.worker_start_args, *moved],
                          [reset_id, trash, json.dumps(plan)])
        for earlier, text in self.client.hgetall(k.trash).items():
            self._empty_trash(decode(earlier), json.loads(text))

    def _empty_trash(self, reset_id: str, plan: dict) -> None:
        """Free what reset ``reset_id`` moved away, one bounded slice per call."""
        for source, kind, prefixes in plan["sources"]:
            while self._script("empty_trash", [source], [kind, TRASH_SLICE, *prefixes]):
                pass
        pipe = self.client.pipeline(transaction=True)
        pipe.unlink(*plan["unlink"])
        pipe.hdel(self.keys.trash, reset_id)
        pipe.execute()

    # -- reads ---------------------------------------------------------------------

    def read(self, states: Sequence[TaskState], fields: Sequence[str], start: int = 0,
             stop: int = -1, own_queues: bool = False
             ) -> tuple[list[str], list[int], list, list[str]]:
        """Keys and field values of the tasks in ``states``, one consistent snapshot.

        Returns ``(keys, count per state, flat values, vanished keys)``; ``start``/``stop``
        slice list collections (queued, finished, all). With ``own_queues`` the tasks
        waiting in workers' own queues count as queued (right after the shared queue's).
        """
        kinds = ["l" if s in _LIST_STATES else "s" for s in states]
        colls = [self.collection(s) for s in states]
        at = list(states).index(TaskState.QUEUED) + 1 if own_queues and TaskState.QUEUED in states else 0
        if at:  # the own queues' set right after the shared queue
            kinds.insert(at, "s")
            colls.insert(at, self.keys.priority)
        keys, counts, values, vanished = self._read(colls, "".join(kinds), fields, start, stop)
        if at:
            counts[at - 1] += counts.pop(at)
        return keys, counts, values, vanished

    def read_own_queues(self, fields: Sequence[str]) -> tuple[list[str], list, list[str]]:
        """Keys and field values of the tasks waiting in workers' own queues, and the
        vanished keys."""
        keys, _, values, vanished = self._read([self.keys.priority], "s", fields, 0, -1)
        return keys, values, vanished

    def count_own_queues(self) -> int:
        """Number of tasks waiting in workers' own queues."""
        return self._one(lambda c: c.scard(self.keys.priority))

    def read_all(self, fields: Sequence[str], start: int = 0, stop: int = -1
                 ) -> tuple[list[str], list[int], list, list[str]]:
        """Like ``read`` over every task, in creation order."""
        return self._read([self.keys.all_tasks], "l", fields, start, stop)

    def _read(self, colls: list[str], kinds: str, fields: Sequence[str], start: int,
              stop: int) -> tuple[list[str], list[int], list, list[str]]:
        keys, counts, values, vanished = self._script(
            "read_tasks", [self.keys.epoch, *colls],
            [self._read_epoch, kinds, start, stop, self.keys.task_prefix, *fields])
        return ([decode(k) for k in keys], counts, values, [decode(k) for k in vanished])

    def read_hashes(self, keys: Sequence[str], fields: Sequence[str]) -> list[list]:
        """Field values of the given task hashes (one pipeline)."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(self.keys.task(key), list(fields))
        return self._run(pipe)

    def keys_in(self, states: Sequence[TaskState], own_queues: bool = False
                ) -> dict[str, list[str]]:
        """Keys per state, one consistent snapshot (MULTI). With ``own_queues`` the tasks
        waiting in workers' own queues count as queued."""
        pipe = self.client.pipeline(transaction=True)
        for state in states:
            coll = self.collection(state)
            if state in _LIST_STATES:
                pipe.lrange(coll, 0, -1)
            else:
                pipe.smembers(coll)
        if own_queues:
            pipe.smembers(self.keys.priority)
        replies = self._run(pipe)
        out = {TaskState(s).value: [decode(k) for k in r] for s, r in zip(states, replies)}
        if own_queues and TaskState.QUEUED.value in out:
            out[TaskState.QUEUED.value] += [decode(k) for k in replies[-1]]
        return out

    def all_keys(self) -> list[str]:
        """Every task key in creation order."""
        return [decode(k) for k in self._one(lambda c: c.lrange(self.keys.all_tasks, 0, -1))]

    def count(self, state: TaskState | None) -> int:
        """Number of tasks in ``state`` (``None``: all tasks)."""
        if state is None:
            return self._one(lambda c: c.llen(self.keys.all_tasks))
        coll = self.collection(state)
        if state in _LIST_STATES:
            return self._one(lambda c: c.llen(coll))
        return self._one(lambda c: c.scard(coll))

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Tasks per state and workers per state, one consistent snapshot (MULTI)."""
        pipe = self.client.pipeline(transaction=True)
        for state in TaskState:
            coll = self.collection(state)
            pipe.llen(coll) if state in _LIST_STATES else pipe.scard(coll)
        pipe.hvals(self.keys.worker_states)
        *tasks, workers = self._run(pipe)
        by_state = {s.value: 0 for s in WorkerState}
        for state in workers:
            by_state[decode(state)] = by_state.get(decode(state), 0) + 1
        return {s.value: n for s, n in zip(TaskState, tasks)}, by_state

    def are_members(self, state: TaskState, keys: Sequence[str]) -> list[bool]:
        """For each key, whether it is in the (set) collection of ``state``."""
        if not keys:
            return []
        coll = self.collection(state)
        return [bool(x) for x in self._one(lambda c: c.smismember(coll, list(keys)))]

    def progress(self, keys: Sequence[str], cursor: int) -> tuple[set[str], int, int]:
        """For waiting on tasks, in one round trip: which of ``keys`` are finished (among
        those finished since ``cursor``) or failed, the new cursor, and how many workers run.
        """
        pipe = self.client.pipeline(transaction=True)
        pipe.lrange(self.keys.finished, cursor, -1)
        if keys:
            pipe.smismember(self.keys.failed, list(keys))
        pipe.hvals(self.keys.worker_states)
        replies = self._run(pipe)
        finished = {decode(k) for k in replies[0]}
        settled = {k for k in keys if k in finished}
        if keys:
            settled.update(k for k, failed in zip(keys, replies[1]) if failed)
        running = sum(1 for s in replies[-1] if decode(s) == _RUNNING)
        return settled, cursor + len(replies[0]), running
