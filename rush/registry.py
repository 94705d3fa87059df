"""The worker registry: the one layer through which the worker records of a network are
read and written: registrations, states, terminate flags, kill channels, heartbeats,
launch tokens, start arguments, logs and crashes; the network's entry in the
server-wide index of networks (``keys.NETWORKS``); and the server settings a controller
shows (INFO, the snapshot schedule)."""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from typing import Any, Iterator, NamedTuple, Sequence

import redis
import redis.cluster

from ._process import host_identity, process_start
from .connection import translate_errors
from .errors import RushError
from .keys import NETWORKS
from .layer import NetworkLayer, decode
from .states import WorkerState

logger = logging.getLogger("rush")

#: How long a kill signal nobody read stays in Redis.
KILL_SIGNAL_TTL_SECONDS = 3600
#: How long an unused launch token stays valid.
LAUNCH_TOKEN_TTL_SECONDS = 7 * 24 * 3600
#: Fields of a worker's registration hash, in ``worker_info`` order (state comes last),
#: then where its process runs (``host``: ``_process.host_identity``; ``started``: its
#: ``_process.process_start``), so a controller on the same host can tell it is gone.
INFO_FIELDS = ("pid", "remote", "hostname", "heartbeat", "registered", "host", "started")


#: Registration fields a sweep for lost workers reads (``WorkerRegistry.sweep``).
SWEEP_FIELDS = ("pid", "heartbeat", "host", "started")


class SweepRow(NamedTuple):
    """A worker as a sweep for lost workers sees it (``WorkerRegistry.sweep``)."""

    worker_id: str
    state: str
    pid: int
    heartbeat: bool  # it runs a heartbeat
    host: str  # ``_process.host_identity`` of where it runs
    started: int | None  # ``_process.process_start`` of its process
    beating: bool  # its heartbeat key exists


class Beat(NamedTuple):
    """Reply of a heartbeat's beat (``WorkerRegistry.beat``)."""

    status: str  # "ok", "stale" (another incarnation runs) or "gone" (no network)
    due: tuple[str, float] | None  # after "ok": the earliest deadline of the worker's
    #                                tasks, (task key, seconds from now), if any


def _beat(reply: list) -> Beat:
    status, key, seconds = (decode(x) for x in reply)
    return Beat(status, (key, float(seconds)) if key else None)


class WorkerActivity(NamedTuple):
    """Signs of life of a worker (``WorkerRegistry.activity``)."""

    heartbeat_idle: int | None  # seconds since its heartbeat key was refreshed; None: no key
    log_length: int  # records in its log


@translate_errors(lambda self: self.config)
class WorkerRegistry(NetworkLayer):
    """Reads and writes the worker records of one network.

    Invariants: a worker's state changes only from ``running`` (first writer wins: a
    worker ending normally cannot overwrite ``killed`` or ``lost``), and the step that
    changes it empties the worker's own queue into the shared one; a worker with a
    heartbeat has its key set in the same step that registers it, so no sweep sees it
    without one; a launch token is consumed at most once; a crash is recorded before the
    crashed worker is marked lost, so whoever sees it lost can read why. The server-wide
    index of networks is written apart from the network's own keys (another Cluster slot).
    """

    def register(self, worker_id: str, incarnation: str, pid: int, hostname: str,
                 heartbeat_expire: float | None, remote: bool) -> None:
        """Record a worker as running in ``incarnation`` (a token of this start of its id).

        Refused (``RushError``) while the id runs in another incarnation, or once it was
        killed: ``restart_workers`` is the way back. With a heartbeat, its key is set here
        too, so no sweep sees the worker before its first beat.
        """
        k = self.keys
        now = time.time()
        fields = {"worker_id": worker_id, "pid": pid, "hostname": hostname,
                  "heartbeat": int(heartbeat_expire is not None), "remote": int(remote),
                  "registered": now, "host": host_identity(), "started": process_start(pid) or ""}
        try:
            self._script(
                "register_worker",
                [k.worker_states, k.incarnations, k.worker(worker_id), k.heartbeat(worker_id),
                 k.kill(worker_id)],
                [worker_id, incarnation, WorkerState.RUNNING.value, WorkerState.KILLED.value,
                 "" if heartbeat_expire is None else int(heartbeat_expire * 1000), k.events,
                 *[x for item in fields.items() for x in item]])
        except redis.exceptions.ResponseError as e:
            if str(e).startswith("ALREADY_RUNNING"):
                raise RushError(f"worker id {worker_id!r} is already running on network "
                                f"{k.network_id!r}: give each worker its own id") from None
            if str(e).startswith("WAS_KILLED"):
                raise RushError(f"worker {worker_id!r} of network {k.network_id!r} was killed: "
                                "it cannot register again (restart_workers() starts it "
                                "anew)") from None
            raise
        self.announce(now)

    def announce(self, when: float | None = None) -> None:
        """Put the network into the server-wide index, with the time of its latest activity
        (a controller attached, a worker registered or crashed). A Redis user limited to
        the network's keys (``rush acl``) may not: then the network stays out of it."""
        if self._index_refused:
            return
        with self._index():
            self.client.zadd(NETWORKS,
                             {self.keys.network_id: time.time() if when is None else when})

    def forget_network(self) -> None:
        """Take the network out of the server-wide index (its keys were deleted)."""
        if self._index_refused:
            return
        with self._index():
            self.client.zrem(NETWORKS, self.keys.network_id)

    _index_refused = False  # this user may not write the index: no more tries

    @contextlib.contextmanager
    def _index(self) -> Iterator[None]:
        """The server-wide index is a convenience: a user without access to it goes on."""
        try:
            yield
        except redis.exceptions.NoPermissionError as e:
            self._index_refused = True
            logger.debug("network %r stays out of the index of networks (%s): %s",
                         self.keys.network_id, NETWORKS, e)

    def record_crash(self, worker_id: str, crash: str, log_record: str) -> None:
        """Store the JSON record of a worker's crash and the ERROR record of its log, in
        one step (whatever the worker's ``lgr_thresholds``)."""
        k = self.keys
        self._script("record_crash", [k.worker_errors, k.log(worker_id)],
                     [worker_id, crash, log_record, k.events])
        self.announce()

    def crashes(self) -> list[bytes]:
        """The JSON crash records of the network (one per crashed worker)."""
        return list(self._one(lambda c: c.hvals(self.keys.worker_errors)))

    def states(self) -> dict[str, str]:
        """worker_id -> state, for every registered worker."""
        states = self._one(lambda c: c.hgetall(self.keys.worker_states))
        return {decode(k): decode(v) for k, v in states.items()}

    def info(self) -> list[dict]:
        """One dict per worker (worker_id, pid, remote, hostname, heartbeat, state, and
        ``host``/``started`` of its process), in registration order."""
        flat = self._script("worker_info", [self.keys.worker_states, self.keys.epoch],
                            [self._read_epoch, self.keys.worker_prefix, "", *INFO_FIELDS])
        width = 2 + len(INFO_FIELDS)
        rows = []
        for i in range(0, len(flat), width):
            (worker_id, state, pid, remote, hostname, heartbeat, registered, host,
             started) = flat[i:i + width]
            rows.append({
                "worker_id": decode(worker_id), "pid": int(pid or 0),
                "remote": remote == b"1", "hostname": decode(hostname or b""),
                "heartbeat": heartbeat == b"1", "state": decode(state),
                "host": decode(host or b""), "started": int(started) if started else None,
                "_registered": float(registered or 0)})
        rows.sort(key=lambda r: r.pop("_registered"))
        return rows

    def sweep(self) -> list[SweepRow]:
        """What a sweep for lost workers needs of every worker, in one step: its state, the
        process it runs in, whether it has a heartbeat and whether its key exists."""
        flat = self._script("worker_info", [self.keys.worker_states, self.keys.epoch],
                            [self._read_epoch, self.keys.worker_prefix, self.keys.heartbeat(""),
                             *SWEEP_FIELDS])
        return [SweepRow(decode(flat[i]), decode(flat[i + 1]), int(flat[i + 2] or 0),
                         flat[i + 3] == b"1", decode(flat[i + 4] or b""),
                         int(flat[i + 5]) if flat[i + 5] else None, flat[i + 6] == 1)
                for i in range(0, len(flat), 7)]

    def mark_unregistered(self, worker_id: str, state: WorkerState, pid: int, hostname: str,
                          remote: bool) -> None:
        """Record a worker that was stopped before it registered (its process is gone) in
        ``state``; a worker that did register keeps its record (every write is HSETNX)."""
        k = self.keys
        fields = (("worker_id", worker_id), ("pid", pid), ("hostname", hostname),
                  ("heartbeat", 0), ("remote", int(remote)), ("registered", time.time()))
        self._script("mark_unregistered", [k.worker_states, k.worker(worker_id)],
                     [worker_id, WorkerState(state).value, k.events,
                      *[x for item in fields for x in item]])

    def set_terminated(self, worker_id: str, incarnation: str = "") -> bool:
        """Running -> terminated (only in ``incarnation``, when given), the tasks in its
        own queue going to the shared queue; a killed or lost worker stays so. True if it
        changed."""
        k = self.keys
        return bool(self._script(
            "set_worker_state",
            [k.worker_states, k.incarnations, k.own_queue(worker_id), k.queued, k.priority],
            [worker_id, incarnation, WorkerState.RUNNING.value, WorkerState.TERMINATED.value,
             k.events]))

    def request_terminate(self, worker_ids: Sequence[str]) -> None:
        """Raise the terminate flag of these workers (read by ``RushWorker.terminated``)."""
        if worker_ids:
            self.client.sadd(self.keys.terminate, *worker_ids)

    def send_kill(self, worker_ids: Sequence[str]) -> None:
        """Push a kill signal naming the current incarnation to the kill channel of each
        worker (read by its heartbeat), and void any unused launch token, so an engine run
        that starts only now stays out."""
        if worker_ids:
            k = self.keys
            self._script("send_kill", [k.incarnations],
                         [k.kill(""), k.launch(""), KILL_SIGNAL_TTL_SECONDS, *worker_ids])

    def heartbeat(self, action: str, worker_id: str, incarnation: str,
                  expire: float = 0.0) -> str:
        """``"beat"`` (refresh the heartbeat key for ``expire`` s) or ``"forget"`` (delete
        it), for one incarnation only. Returns ``"ok"``, ``"stale"`` (another incarnation
        of the id runs now) or ``"gone"`` (the network vanished)."""
        return self.beat(worker_id, incarnation, expire, action).status

    def beat(self, worker_id: str, incarnation: str, expire: float, action: str = "beat"
             ) -> Beat:
        """``heartbeat``, with the earliest deadline of the worker's tasks."""
        return _beat(self._script("heartbeat", *self._beat_call(action, worker_id,
                                                                incarnation, expire)))

    def _beat_call(self, action: str, worker_id: str, incarnation: str, expire: float
                   ) -> tuple[list[str], list]:
        k = self.keys
        return ([k.incarnations, k.epoch, k.heartbeat(worker_id), k.deadlines(worker_id)],
                [action, worker_id, incarnation, self.epoch, int(expire * 1000)])

    def wait_for_kill(self, worker_id: str, seconds: float) -> str | None:
        """Block up to ``seconds`` (keep it under the socket timeout) on the worker's kill
        channel: the incarnation a kill signal names, or ``None``."""
        got = self.client.blpop([self.keys.kill(worker_id)], timeout=seconds)
        return None if got is None else decode(got[1])

    def wait_then_beat(self, worker_id: str, incarnation: str, seconds: float, expire: float
                       ) -> tuple[str | None, Beat]:
        """``wait_for_kill``, then ``beat``, in one request: Redis runs the beat the moment
        the block ends, so a heartbeat costs one request per period, not two."""
        keys, args = self._beat_call("beat", worker_id, incarnation, expire)
        pipe = self.client.pipeline(transaction=False)
        pipe.blpop([self.keys.kill(worker_id)], timeout=seconds)
        self.scripts.queue(pipe, "heartbeat", keys, args)
        got, reply = pipe.execute(raise_on_error=False)
        if isinstance(got, Exception):
            raise got
        target = None if got is None else decode(got[1])
        if isinstance(reply, redis.exceptions.NoScriptError):  # a restarted server
            return target, self.beat(worker_id, incarnation, expire)
        if isinstance(reply, Exception):
            raise reply
        return target, _beat(reply)

    def resend_kill(self, worker_id: str, incarnation: str) -> None:
        """Put back a kill signal meant for another incarnation (its heartbeat reads it)."""
        self.client.lpush(self.keys.kill(worker_id), incarnation)

    def new_launch_token(self, worker_id: str) -> str:
        """Write a fresh one-time launch token for a remote worker and return it."""
        token = secrets.token_hex(16)
        self.client.set(self.keys.launch(worker_id), token, ex=LAUNCH_TOKEN_TTL_SECONDS)
        return token

    def consume_launch_token(self, worker_id: str, token: str) -> bool:
        """Take the launch token of a worker: True when it was ``token`` (this launch is
        the first run of its submission), False when it was used or voided."""
        current = self.client.getdel(self.keys.launch(worker_id))
        return current is not None and decode(current) == token

    def heartbeats_alive(self, worker_ids: Sequence[str]) -> list[bool]:
        """For each worker, whether its heartbeat key still exists."""
        if not worker_ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for worker_id in worker_ids:
            pipe.exists(self.keys.heartbeat(worker_id))
        return [bool(x) for x in self._run(pipe)]

    def terminate_state(self, worker_id: str) -> tuple[bool, str | None]:
        """The terminate flag and the state of a worker, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.sismember(self.keys.terminate, worker_id)
        pipe.hget(self.keys.worker_states, worker_id)
        flag, state = pipe.execute()
        return bool(flag), None if state is None else decode(state)

    def store_start_args(self, args_id: str, blob: bytes, worker_ids: Sequence[str]) -> None:
        """Store start arguments once (by content id) and point these workers at them."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.start_args_blob(args_id), blob)
        pipe.sadd(self.keys.start_args_ids, args_id)
        pipe.set(self.keys.start_args, args_id)
        if worker_ids:
            pipe.hset(self.keys.worker_start_args, mapping={w: args_id for w in worker_ids})
        pipe.execute()

    def start_args(self, worker_id: str, args_id: str | None = None
                   ) -> tuple[str, bytes] | None:
        """The id and stored value of the start arguments of a worker: those of
        ``args_id`` (the ones it was launched with), else its own, else the network's
        latest; ``None`` when there are none."""
        if args_id is None:
            pipe = self.client.pipeline(transaction=False)
            pipe.hget(self.keys.worker_start_args, worker_id)
            pipe.get(self.keys.start_args)
            own, latest = pipe.execute()
            found = own or latest
            if found is None:
                return None
            args_id = decode(found)
        blob = self.client.get(self.keys.start_args_blob(args_id))
        if blob is None:
            return None
        return args_id, blob.encode() if isinstance(blob, str) else blob

    def push_logs(self, worker_id: str, records: Sequence[str]) -> None:
        """Append JSON log records to a worker's log."""
        if records:
            self.client.rpush(self.keys.log(worker_id), *records)

    def read_logs(self, worker_ids: Sequence[str], starts: Sequence[int]) -> list[list[bytes]]:
        """Log records of each worker from its ``start`` index on (one pipeline)."""
        pipe = self.client.pipeline(transaction=False)
        for worker_id, start in zip(worker_ids, starts):
            pipe.lrange(self.keys.log(worker_id), start, -1)
        return self._run(pipe)

    def activity(self, worker_ids: Sequence[str]) -> list[WorkerActivity]:
        """For each worker, the seconds since its heartbeat key was last refreshed (Redis's
        idle time of the key, whole seconds; ``None`` without a key) and the length of its
        log (one pipeline). Neither read touches the keys: watching is not activity."""
        if not worker_ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for worker_id in worker_ids:
            pipe.object("idletime", self.keys.heartbeat(worker_id))
            pipe.llen(self.keys.log(worker_id))
        replies = pipe.execute(raise_on_error=False)
        # an error for the idle time: an LFU eviction policy keeps no idle times
        return [WorkerActivity(idle if isinstance(idle, int) else None,
                               length if isinstance(length, int) else 0)
                for idle, length in zip(replies[::2], replies[1::2])]

    def set_running(self, incarnations: dict[str, str]) -> None:
        """Mark workers running in a new incarnation (worker id -> token) before their
        restarted process registers: from now on the old incarnation's writes are refused."""
        if incarnations:
            ids = list(incarnations)
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(self.keys.worker_states, mapping={w: WorkerState.RUNNING.value for w in ids})
            pipe.hset(self.keys.incarnations, mapping=dict[Any, Any](incarnations))
            pipe.srem(self.keys.terminate, *ids)
            for worker_id in ids:
                # no heartbeat and no process until the new process registers (which sets
                # them in one step): else a sweep in between finds the old, expired key or
                # the old, dead pid and declares the restarting worker lost (and restarts
                # it again, and again)
                pipe.hset(self.keys.worker(worker_id), mapping={"heartbeat": 0, "host": ""})
            pipe.execute()

    # -- the server ----------------------------------------------------------------

    def server_info(self) -> dict[str, Any]:
        """The server's ``INFO``; on a cluster, that of the master holding the network."""
        return dict(self.client.info(**self._own_node()))

    def snapshot_schedule(self) -> str:
        """The server's ``save`` setting ("" = no snapshots)."""
        return decode(self._config_get("save"))

    def set_snapshot_schedule(self, schedule: str) -> None:
        """Set the server's ``save`` setting (on a cluster, every master's)."""
        kw: dict[str, Any] = {}
        if isinstance(self.client, redis.cluster.RedisCluster):
            kw = {"target_nodes": redis.cluster.RedisCluster.PRIMARIES}
        try:
            self.client.config_set("save", schedule, **kw)
        except redis.exceptions.ResponseError as e:
            raise RushError(f"Redis refused CONFIG SET save {schedule!r}: {e} (managed Redis "
                            "services often disable CONFIG; set the schedule there)") from None

    def _own_node(self) -> dict[str, Any]:
        """On a cluster, the keyword that sends a server command to the master holding the
        network's slot (else redis-py picks a node, or asks them all)."""
        if isinstance(self.client, redis.cluster.RedisCluster):
            return {"target_nodes": self.client.get_node_from_key(self.keys.epoch)}
        return {}

    def _config_get(self, name: str) -> str | bytes:
        try:
            return self.client.config_get(name, **self._own_node()).get(name) or ""
        except redis.exceptions.ResponseError as e:
            raise RushError(f"Redis refused CONFIG GET {name}: {e}") from None
