"""``Rush``: the controller of a network, and the read methods shared with workers."""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, Sequence

import redis

from . import frames
from .config import RedisConfig
from .connection import (CLUSTER_OUTAGE_ERRORS, TRANSIENT_ERRORS, check_connection, cluster_outage,
                         connect, connection_error, permission_error, translate_errors)
from .crashes import Crash, CrashWatch, crash_frame, parse
from .keys import NetworkKeys
from .layer import Epoch
from .launchers.remote import REMOTE_HEARTBEAT_PERIOD, default_executor
from .logs import LogReader
from .plan import DEFAULT_MAX_VALUE_SIZE, plan_value, resolve_config
from .pool import WorkerPool
from .progress import Best, NetworkProgress, ProgressBar
from .registry import WorkerRegistry
from .scripts import Scripts
from .seeds import task_seeds
from .serialization import Serializer
from .start_args import pack, resolve_globals, user_frame
from .states import DEFAULT_CONDITION, REMOVED_MESSAGE, TASK_STATES, TaskState, WorkerState
from .errors import RushNetworkLostError
from .store import TaskStore, WriteReply
from .validation import (broadcast, check_executor, check_n_workers, check_network_id,
                         check_packages, check_schedule, check_timeout, dict_list, either,
                         field_list, id_list, key_list, matching, non_negative_int, per_task,
                         positive_number, priority_list, seed_list, states_list, value_list)
from .waiting import EventWaiter
from .worker_options import WorkerOptions

if TYPE_CHECKING:
    import subprocess
    from types import FrameType

    import pandas as pd

logger = logging.getLogger("rush")

ALL_FIELDS = ("xs", "ys", "xs_extra", "ys_extra", "worker_id", "condition")
QUEUED_FIELDS = ("xs", "xs_extra")
RUNNING_FIELDS = ("xs", "xs_extra", "worker_id")
FAILED_FIELDS = ("xs", "xs_extra", "worker_id", "condition")
WORKER_INFO_COLUMNS = ("worker_id", "pid", "remote", "hostname", "heartbeat", "state")
#: Task fields that hold a dict (``write_hashes`` checks them).
DICT_FIELDS = frozenset({"xs", "ys", "xs_extra", "ys_extra", "condition"})
STOP_TYPES = ("kill", "terminate")
#: Finished tasks read per Lua call: bounds how long one read blocks Redis.
READ_CHUNK = 20_000


def new_keys(n: int) -> list[str]:
    """``n`` fresh task keys (UUID4 strings)."""
    return [str(uuid.uuid4()) for _ in range(n)]


def _with_cache(controller: "Rush", error: RushNetworkLostError) -> RushNetworkLostError:
    """The error of a vanished network, with the finished tasks the controller cached."""
    if error.finished_tasks is not None:  # said already, by an inner call
        return error
    cached = max((frame for _, frame in controller._finished_cache.values()), key=len,
                 default=None)
    if cached is None:
        cached = frames.empty_frame(ALL_FIELDS)
    return RushNetworkLostError(
        f"{error}; {len(cached)} cached result(s) are still in this controller (the "
        "finished_tasks of this error). reset() starts the network afresh", cached)


# translation covers what bypasses the store too: pub/sub waits, print
@translate_errors(lambda self: self._config, on_lost=_with_cache)
class Rush:
    """The controller of a rush network (``rsh()`` makes one).

    It reads task and worker state from Redis, creates tasks, and starts, watches and
    stops workers. Every property is at most one Redis round trip.
    """

    _finished_cache: dict[tuple[str, ...], tuple[int, Any]]  # fields -> (cursor, frame)
    _new_cursor: int  # position in the finished list of fetch_new_tasks
    #: A controller checks on every read that the network is still there; a worker
    #: learns it from its next write (its reads stay single commands).
    _guard_reads = True
    _ANNOUNCES = True  # a controller puts its network into the server's index on connect

    def __init__(self, network_id: str | None = None, config: RedisConfig | None = None,
                 seed: int | None = None) -> None:
        self._network_id = check_network_id(network_id) if network_id is not None else str(uuid.uuid4())
        self._seed = None if seed is None else non_negative_int("seed", seed)
        self._seed_position = 0  # tasks pushed so far by this controller (with a seed)
        self._config = resolve_config(config)
        check_connection(self._config)
        self.keys = NetworkKeys(self._network_id)
        #: writes and reads every payload of the network (signed with the config's secret)
        self._serializer = Serializer(self.keys, self._config.secret)
        self._pool: WorkerPool | None = None  # made when first needed: workers never need one
        self._epoch = Epoch()
        try:
            self._connect()
            self._store.look()  # the network as it is now: if its data vanish, we notice
        except redis.exceptions.NoPermissionError as e:  # a user of another network
            raise permission_error(self._config, e) from None
        except (*TRANSIENT_ERRORS, *CLUSTER_OUTAGE_ERRORS,
                redis.exceptions.RedisClusterException) as e:
            if not cluster_outage(e):
                raise
            # gone since check_connection, or (a cluster) the network's master is down
            raise connection_error(self._config, e) from None
        if self._ANNOUNCES:
            self._registry.announce()
        self._logs = LogReader()
        self._crash_watch = CrashWatch()
        self.reset_cache()

    def _connect(self) -> None:
        self._client = connect(self._config)
        scripts = Scripts(self._client)
        scripts.load_all()
        self._store = TaskStore(self._client, self.keys, scripts, self._config, self._serializer)
        self._store.max_value_bytes = int(
            plan_value("max_value_size", DEFAULT_MAX_VALUE_SIZE) * 1024 * 1024)
        self._registry = WorkerRegistry(self._client, self.keys, scripts, self._config,
                                        self._serializer)
        self._waiter = EventWaiter(self._client, self.keys.events)
        for layer in (self._store, self._registry):
            layer.shared_epoch, layer.guard_reads = self._epoch, self._guard_reads
        if self._pool is not None:
            self._pool.use(self._store, self._registry)

    def _writer(self) -> tuple[str, str]:
        """Who writes tasks (worker id, incarnation): a controller."""
        return "", ""

    @property
    def _workers(self) -> WorkerPool:
        if self._pool is None:
            self._pool = WorkerPool(self._network_id, self._config, self._store, self._registry)
        return self._pool

    def reconnect(self) -> None:
        """Drop the connections and connect again (e.g. after a fork)."""
        self._waiter.close()
        self._client.close()
        self._connect()

    def close(self) -> None:
        """Kill the supervised worker processes of this controller (reaping them all) and
        close the Redis connections of this object."""
        if self._pool is not None:
            self._pool.close()
        self._waiter.close()
        self._client.close()

    def __enter__(self) -> "Rush":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- identity ------------------------------------------------------------------

    @property
    def network_id(self) -> str:
        """The id of the network."""
        return self._network_id

    @property
    def config(self) -> RedisConfig:
        """Where Redis is."""
        return self._config

    @property
    def connector(self) -> "redis.Redis":
        """The redis-py client."""
        return self._client

    @property
    def seed(self) -> int | None:
        """The seed the task seeds of this controller derive from (``rsh(seed=...)``)."""
        return self._seed

    # -- the server ----------------------------------------------------------------

    def redis_info(self) -> dict[str, Any]:
        """The server's ``INFO`` (version, memory, clients, persistence ...) as a dict; on
        a Redis Cluster, that of the master holding the network."""
        return self._registry.server_info()

    @property
    def snapshot_schedule(self) -> str:
        """Redis's ``save`` schedule: pairs of "seconds changes" (e.g. ``"60 1000"``: snapshot
        after 60 s if at least 1000 keys changed); ``""`` means no snapshots. Setting it
        (a str, or a list of ints) changes the server's setting (on a Redis Cluster: read
        from the master holding the network, set on every master)."""
        return self._registry.snapshot_schedule()

    @snapshot_schedule.setter
    def snapshot_schedule(self, schedule: str | Sequence[int]) -> None:
        self._registry.set_snapshot_schedule(check_schedule(schedule))

    # -- workers -------------------------------------------------------------------

    @property
    def worker_info(self) -> "pd.DataFrame":
        """One row per worker: ``worker_id, pid, remote, hostname, heartbeat, state``."""
        import pandas as pd

        rows = self._registry.info()
        df = pd.DataFrame.from_records(rows, columns=list(WORKER_INFO_COLUMNS))
        return df.astype({"pid": "int64", "remote": "bool", "heartbeat": "bool"})

    @property
    def worker_states(self) -> "pd.DataFrame":
        """One row per worker: ``worker_id, state``."""
        return self.worker_info[["worker_id", "state"]]

    @property
    def worker_errors(self) -> "pd.DataFrame":
        """One row per worker whose loop crashed: ``worker_id, timestamp`` (UTC), ``type,
        message`` (``"<Type>: <message>"``), ``traceback`` and ``task_key`` (the task it
        was on, or None); oldest first."""
        return crash_frame(self._crashes())

    def _crashes(self) -> list[Crash]:
        return parse(self._registry.crashes())

    def _report_crashes(self) -> None:
        """Warn (once per crash) about crashes of worker loops. They are read only when a
        worker event arrived since the last look (a crash publishes one)."""
        if self._waiter.take("workers"):
            self._crash_watch.report(self._crashes())

    def _raise_if_all_crashed(self, states: dict[str, str] | None = None) -> None:
        """Raise ``RushWorkerError`` when every worker has ended and one of them crashed
        (workers this controller started that have not registered yet still count)."""
        states = self._registry.states() if states is None else states
        if not states or any(s == WorkerState.RUNNING.value for s in states.values()):
            return
        if self._pool is not None and self._pool.still_starting(states):
            return
        crashes = self._crashes()
        if crashes:
            self._crash_watch.report(crashes)
            raise self._crash_watch.error(crashes)

    def _ids_in(self, state: WorkerState | None) -> list[str]:
        states = self._registry.states()
        return [w for w, s in states.items() if state is None or s == state.value]

    @property
    def worker_ids(self) -> list[str]:
        """Ids of every registered worker."""
        return self._ids_in(None)

    @property
    def running_worker_ids(self) -> list[str]:
        return self._ids_in(WorkerState.RUNNING)

    @property
    def terminated_worker_ids(self) -> list[str]:
        """Workers that ended normally (killed and lost ones are in their own lists)."""
        return self._ids_in(WorkerState.TERMINATED)

    @property
    def killed_worker_ids(self) -> list[str]:
        return self._ids_in(WorkerState.KILLED)

    @property
    def lost_worker_ids(self) -> list[str]:
        return self._ids_in(WorkerState.LOST)

    @property
    def n_workers(self) -> int:
        return len(self.worker_ids)

    @property
    def n_running_workers(self) -> int:
        return len(self.running_worker_ids)

    @property
    def n_terminated_workers(self) -> int:
        return len(self.terminated_worker_ids)

    @property
    def n_killed_workers(self) -> int:
        return len(self.killed_worker_ids)

    @property
    def n_lost_workers(self) -> int:
        return len(self.lost_worker_ids)

    def wait_for_workers(self, n: int | None = None, worker_ids: str | Sequence[str] | None = None,
                         timeout: float | None = None) -> None:
        """Block until ``n`` workers (of ``worker_ids``, if given) are registered.

        ``timeout`` defaults to the plan's ``start_worker_timeout`` (else forever);
        ``timeout=0`` checks once. Raises ``TimeoutError``, or ``RushWorkerError`` when
        every worker has ended and one of them crashed. Warns about crashed workers.
        """
        ids = id_list("worker_ids", worker_ids)
        if n is None and ids is None:
            raise ValueError("give n or worker_ids")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        if ids is not None and n is not None and n > len(ids):
            raise ValueError(f"n ({n}) is larger than len(worker_ids) ({len(ids)})")
        wanted = n if n is not None else len(ids or ())
        timeout = plan_value("start_worker_timeout") if timeout is None else timeout
        if timeout is not None:
            positive_number("timeout", timeout)

        def registered() -> int:
            states = self._registry.states()
            self._report_crashes()
            if self._pool is not None:
                self._pool.check_start_failures(set(states))
            n_registered = len(states) if ids is None else sum(w in states for w in ids)
            if n_registered < wanted:
                self._raise_if_all_crashed(states)
            return n_registered

        if not self._waiter.wait(lambda: registered() >= wanted, timeout):
            raise TimeoutError(f"{registered()} of {wanted} workers registered after {timeout} s")

    # -- starting workers ----------------------------------------------------------

    @property
    def processes(self) -> "dict[str, subprocess.Popen]":
        """worker id -> process handle of the local workers this controller started."""
        return self._workers.processes

    @property
    def futures(self) -> dict[str, Any]:
        """worker id -> engine future of the remote workers this controller started."""
        return self._workers.futures

    def start_local_workers(self, worker_loop: Callable, n_workers: int | None = None,
                            globals: Any = None, packages: Sequence[str] | None = None,
                            lgr_thresholds: dict[str, str] | None = None,
                            lgr_buffer_size: int | None = None,  # None: the plan's, else 0
                            supervise: bool = True, heartbeat_period: float | None = None,
                            heartbeat_expire: float | None = None, message_log: str | None = None,
                            output_log: str | None = None, **kwargs: Any) -> list[str]:
        """Start ``n_workers`` processes on this machine, each running
        ``worker_loop(worker, **kwargs)``; returns their ids. Call again to add workers.

        ``globals``: names of variables of the caller (or a dict) the loop needs;
        ``packages``: modules each worker imports first; ``lgr_thresholds``: loggers whose
        records go to Redis (``read_log``/``print_log``); ``supervise``: the workers die with
        this process, even on SIGKILL; ``message_log``/``output_log``: directories for each
        worker's stderr/stdout files.
        """
        n = self._n_workers(n_workers)
        options = WorkerOptions.checked(lgr_thresholds, lgr_buffer_size, heartbeat_period,
                                        heartbeat_expire, message_log, output_log)
        blob = _pack(worker_loop, kwargs, globals, packages, user_frame())
        args_id, worker_ids = self._workers.store_start_args(blob, n)
        self._workers.start_local(worker_ids, args_id, options, bool(supervise))
        logger.info("started %d local worker(s)", n)
        return worker_ids

    def start_remote_workers(self, worker_loop: Callable, n_workers: int | None = None,
                             executor: Any = None, globals: Any = None,
                             packages: Sequence[str] | None = None,
                             lgr_thresholds: dict[str, str] | None = None,
                             lgr_buffer_size: int | None = None, heartbeat_period: float | None = None,
                             heartbeat_expire: float | None = None,
                             message_log: str | None = None, output_log: str | None = None,
                             **kwargs: Any) -> list[str]:
        """Start ``n_workers`` workers as long-running tasks of a distributed engine;
        returns their ids.

        ``executor`` is anything with ``submit(fn, *args, **kwargs)``: a
        ``dask.distributed.Client`` (LocalCluster, SSHCluster, dask-jobqueue ...) or a
        ``concurrent.futures`` executor. Default: the plan's executor, else the current Dask
        client. Each worker runs a heartbeat process (default period 1 s), which is how
        ``stop_workers`` kills it and how a dead one is found lost. Other arguments as in
        ``start_local_workers``; message_log/output_log must exist where the workers run.
        """
        n = self._n_workers(n_workers)
        executor = check_executor(executor if executor is not None else default_executor())
        options = WorkerOptions.checked(
            lgr_thresholds, lgr_buffer_size, heartbeat_period, heartbeat_expire, message_log,
            output_log).with_default_heartbeat(REMOTE_HEARTBEAT_PERIOD)
        blob = _pack(worker_loop, kwargs, globals, packages, user_frame())
        args_id, worker_ids = self._workers.store_start_args(blob, n)
        self._workers.start_remote(worker_ids, args_id, options, executor)
        logger.info("submitted %d remote worker(s)", n)
        return worker_ids

    start_workers = start_remote_workers

    def worker_script(self, worker_loop: Callable, globals: Any = None,
                      packages: Sequence[str] | None = None,
                      lgr_thresholds: dict[str, str] | None = None,
                      heartbeat_period: float | None = None, heartbeat_expire: float | None = None,
                      message_log: str | None = None, output_log: str | None = None,
                      python: str = "python", **kwargs: Any) -> str:
        """Store the start arguments and return a POSIX shell command that starts one worker
        running them wherever it runs (every value shell-quoted), with the interpreter
        ``python``. Where Redis is (and the secret) are environment assignments in front of
        ``exec``, so no shell stays behind holding them in its argv. It is logged with the
        password and the secret redacted. Script workers register with ``remote=True``.

        Without a heartbeat such a worker can only be found lost by nobody and killed only
        through Redis; give ``heartbeat_period`` to have both.
        """
        if not isinstance(python, str) or not python.strip():
            raise TypeError("python must be the interpreter to run, e.g. 'python3'")
        options = WorkerOptions.checked(lgr_thresholds, None, heartbeat_period, heartbeat_expire,
                                        message_log, output_log)
        blob = _pack(worker_loop, kwargs, globals, packages, user_frame())
        args_id, _ = self._workers.store_start_args(blob, 0)
        return self._workers.script_command(args_id, options, python)

    def _n_workers(self, n_workers: Any) -> int:
        n = n_workers if n_workers is not None else plan_value("n_workers")
        if n is None:
            raise ValueError("give n_workers, or set it with rush_plan(n_workers=...)")
        return check_n_workers(n)

    # -- stopping and watching workers -----------------------------------------------

    def stop_workers(self, type: str = "kill", worker_ids: str | Sequence[str] | None = None) -> None:
        """Stop workers (``None``: all running ones).

        ``"kill"`` stops them now (process handle, engine, or kill channel to the heartbeat);
        they become ``"killed"`` and their running and pending tasks fail with
        ``"Worker was killed"``. ``"terminate"`` raises their terminate flag (read by
        ``worker.terminated``): they finish the current step and become ``"terminated"``.
        Ids that are not running are skipped with a warning.
        """
        if type not in STOP_TYPES:
            raise ValueError(f"type must be 'kill' or 'terminate', got {type!r}")
        ids = id_list("worker_ids", worker_ids)
        if type == "terminate":
            self._workers.terminate(ids)
        else:
            self._workers.kill(ids)

    def detect_lost_workers(self, restart_local_workers: bool = False) -> list[str]:
        """Find running workers that died: local ones by their process handle, remote ones
        by their future, others by an expired heartbeat; and workers whose task runs past
        its timeout (they are killed). Workers registered on this host whose process is
        gone are found too. They become ``"lost"`` and their running and pending tasks fail
        with ``"Worker has crashed or was killed"`` (a timed-out task with ``"Task timed
        out after s s"``), or go back to the queue while they have retries left; a lost
        local worker's stderr tail is logged. Warns about crashed workers. Returns the ids
        found lost in this call.

        ``restart_local_workers``: start again the local workers of this controller found
        lost now, and those that were already lost (a crashed loop, a timeout caught by the
        heartbeat) and whose process has ended.
        """
        lost = self._workers.detect_lost(bool(restart_local_workers))
        self._report_crashes()
        return lost

    def restart_workers(self, worker_ids: str | Sequence[str]) -> list[str]:
        """Start the same worker ids again, with the same loop and arguments (killing any
        that still run); their state goes back to ``"running"``. Only workers this
        controller started can be restarted (script workers: run their command again)."""
        return self._workers.restart(id_list("worker_ids", worker_ids) or [])

    def read_log(self, worker_ids: str | Sequence[str] | None = None,
                 time_difference: bool = False) -> "pd.DataFrame":
        """Every log record the workers stored: ``worker_id, level, timestamp`` (UTC),
        ``logger, caller, msg`` (+ ``time_difference``, seconds since the worker's previous
        record)."""
        ids = id_list("worker_ids", worker_ids) or self.worker_ids
        return self._logs.read(self._registry, ids, bool(time_difference))

    def print_log(self) -> None:
        """Emit the log records not printed before, through their original Python logger,
        as ``[worker_id] [timestamp] msg`` (timestamp in UTC)."""
        self._logs.print_new(self._registry, self.worker_ids)

    # -- task keys and counts ------------------------------------------------------

    @property
    def tasks(self) -> list[str]:
        """Every task key, in creation order."""
        return self._store.all_keys()

    def _keys_of(self, state: TaskState) -> list[str]:
        return self._store.keys_in([state])[state.value]

    @property
    def queued_tasks(self) -> list[str]:
        return self._keys_of(TaskState.QUEUED)

    @property
    def running_tasks(self) -> list[str]:
        return self._keys_of(TaskState.RUNNING)

    @property
    def finished_tasks(self) -> list[str]:
        return self._keys_of(TaskState.FINISHED)

    @property
    def failed_tasks(self) -> list[str]:
        return self._keys_of(TaskState.FAILED)

    @property
    def n_tasks(self) -> int:
        return self._store.count(None)

    @property
    def n_queued_tasks(self) -> int:
        return self._store.count(TaskState.QUEUED)

    @property
    def n_running_tasks(self) -> int:
        return self._store.count(TaskState.RUNNING)

    @property
    def n_finished_tasks(self) -> int:
        return self._store.count(TaskState.FINISHED)

    @property
    def n_failed_tasks(self) -> int:
        return self._store.count(TaskState.FAILED)

    def tasks_with_state(self, states: str | Sequence[str] = TASK_STATES) -> dict[str, list[str]]:
        """Keys per state, one consistent snapshot ("queued" includes the tasks waiting in
        workers' own queues)."""
        wanted = states_list("states", states, TASK_STATES)
        return self._store.keys_in([TaskState(s) for s in wanted], own_queues=True)

    @property
    def n_queued_priority_tasks(self) -> int:
        """Number of tasks waiting in workers' own queues (``push_priority_tasks``)."""
        return self._store.count_own_queues()

    def is_running_task(self, keys: str | Sequence[str]) -> bool | list[bool]:
        """Whether each key is running (a single key gives a single bool)."""
        return self._membership(TaskState.RUNNING, keys)

    def is_failed_task(self, keys: str | Sequence[str]) -> bool | list[bool]:
        """Whether each key has failed (a single key gives a single bool)."""
        return self._membership(TaskState.FAILED, keys)

    def _membership(self, state: TaskState, keys: str | Sequence[str]) -> bool | list[bool]:
        found = self._store.are_members(state, key_list("keys", keys))
        return found[0] if isinstance(keys, str) else found

    # -- creating tasks ------------------------------------------------------------

    def push_tasks(self, xss: Sequence[dict], xss_extra: Sequence[dict] | None = None,
                   seeds: Sequence[int] | None = None, timeouts: float | Sequence[float] | None = None,
                   max_retries: int | Sequence[int] | None = None, terminate_workers: bool = False,
                   extra: Sequence[dict] | None = None) -> list[str]:
        """Queue tasks with inputs ``xss``; returns their keys (workers ``pop_task()`` them).

        ``seeds``: one int per task (``pop_task`` returns it; see ``rush.task_seed``); a
        controller made with ``rsh(seed=...)`` derives them when not given.
        ``timeouts``: seconds (one for all, or one per task) a task may run before its
        worker is killed and the task fails (or is retried). ``max_retries``: how often (one
        for all, or per task) a task whose worker was lost or killed goes back to the queue
        before it fails. ``terminate_workers``: workers leave once the queue is empty
        (``worker.terminated_on_idle``).
        """
        xss = dict_list("xss", xss)
        n = len(xss)
        extras = matching("xss_extra", either("xss_extra", xss_extra, "extra", extra), n)
        if not isinstance(terminate_workers, bool):
            raise TypeError("terminate_workers must be a bool")
        fields, columns = ["xs", "xs_extra"], [xss, extras]
        if timeouts is not None:
            fields.append("timeout")
            columns.append(per_task("timeouts", timeouts, n, check_timeout))
        if max_retries is not None:
            fields.append("max_retries")
            columns.append(per_task("max_retries", max_retries, n, non_negative_int))
        explicit = None if seeds is None else seed_list(seeds, n)
        derived = self._with_seeds(fields, columns, explicit)
        keys = self._create_keys(TaskState.QUEUED, tuple(fields), columns)
        self._seed_position += derived
        if terminate_workers and keys:
            self._store.set_terminate_on_idle()
        return keys

    def push_priority_tasks(self, xss: Sequence[dict], xss_extra: Sequence[dict] | None = None,
                            priority: Sequence[str | None] | None = None,
                            extra: Sequence[dict] | None = None) -> list[str]:
        """Queue tasks for given workers: each goes to the own queue of the worker named in
        ``priority`` (one id per task), which that worker's ``pop_task`` serves before the
        shared queue; a worker that does not run (or ``None``) sends it to the shared
        queue. A worker blocked in ``pop_task`` sees a new task of its own queue within a
        second. Returns the keys."""
        xss = dict_list("xss", xss)
        n = len(xss)
        extras = matching("xss_extra", either("xss_extra", xss_extra, "extra", extra), n)
        if priority is None:
            raise TypeError("priority must be a list of worker ids, one per task")
        targets = priority_list(priority, n)
        if n == 0:
            return []
        fields, columns = ["xs", "xs_extra"], [xss, extras]
        derived = self._with_seeds(fields, columns, None)
        keys = new_keys(n)
        shared = self._store.create_priority(keys, targets, fields,
                                             _rows(self._serializer, keys, fields, columns))
        self._seed_position += derived
        redirected = len(shared) - targets.count("")
        if redirected:
            logger.info("%d priority task(s) went to the shared queue: their worker is not "
                        "running", redirected)
        return keys

    def _with_seeds(self, fields: list[str], columns: list[list], explicit: list[int] | None
                    ) -> int:
        """Add the tasks' ``seed`` column to ``fields``/``columns`` (in place): ``explicit``,
        else derived from the controller's seed and the tasks' positions. Returns how many
        positions the derived seeds take (0 when none), to count once the tasks exist."""
        if explicit is not None:
            fields.append("seed")
            columns.append(explicit)
            return 0
        if self._seed is None:
            return 0
        n = len(columns[0])
        fields.append("seed")
        columns.append(task_seeds(self._seed, self._seed_position, n))
        return n

    def push_finished_tasks(self, xss: Sequence[dict], yss: Sequence[dict],
                            xss_extra: Sequence[dict] | None = None,
                            yss_extra: Sequence[dict] | None = None) -> list[str]:
        """Create tasks that are already finished (e.g. results computed elsewhere)."""
        xss = dict_list("xss", xss)
        n = len(xss)
        yss = broadcast("yss", dict_list("yss", yss), n)
        columns = [xss, yss, matching("xss_extra", xss_extra, n), matching("yss_extra", yss_extra, n)]
        return self._create_keys(TaskState.FINISHED, ("xs", "ys", "xs_extra", "ys_extra"), columns)

    def push_failed_tasks(self, xss: Sequence[dict], xss_extra: Sequence[dict] | None = None,
                          conditions: Sequence[dict] | None = None) -> list[str]:
        """Create tasks that are already failed (default condition ``{"message": "Task failed"}``)."""
        xss = dict_list("xss", xss)
        n = len(xss)
        conds = matching("conditions", conditions, n, DEFAULT_CONDITION)
        columns = [xss, matching("xss_extra", xss_extra, n), conds]
        return self._create_keys(TaskState.FAILED, ("xs", "xs_extra", "condition"), columns)

    def _create(self, state: TaskState, fields: tuple[str, ...], columns: list[list]
                ) -> tuple[list[str], WriteReply | None]:
        """Create tasks; returns their keys and the store's reply (``None``: no task)."""
        n = len(columns[0])
        if n == 0:
            return [], None
        keys = new_keys(n)
        rows = _rows(self._serializer, keys, fields, columns)
        return keys, self._store.create(state, keys, fields, rows, *self._writer())

    def _create_keys(self, state: TaskState, fields: tuple[str, ...], columns: list[list]
                     ) -> list[str]:
        return self._create(state, fields, columns)[0]

    def empty_queue(self) -> list[str]:
        """Move every queued task to failed (message ``"Removed from queue"``)."""
        return self._store.empty_queue({"message": REMOVED_MESSAGE})

    # -- hashes --------------------------------------------------------------------

    def write_hashes(self, keys: str | Sequence[str] | None = None, **fields: Sequence[Any]
                     ) -> list[str]:
        """Write fields into task hashes; ``keys=None`` makes new keys. Returns the keys.

        Each field is a list of values, one per key (length 1 broadcasts): any picklable
        value (``write_hashes(timeout=[1])``), except that ``xs``, ``ys``, ``xs_extra``,
        ``ys_extra`` and ``condition`` hold dicts.
        """
        if not fields:
            raise ValueError("write_hashes needs at least one field, e.g. xs=[{...}]")
        columns = {name: dict_list(name, value) if name in DICT_FIELDS else value_list(name, value)
                   for name, value in fields.items()}
        if keys is None:
            n = max(len(c) for c in columns.values())
            keys_ = new_keys(n)
        else:
            keys_ = key_list("keys", keys)
            n = len(keys_)
        for name in columns:
            columns[name] = broadcast(name, columns[name], n, against="keys")
        names = tuple(columns)
        rows = _rows(self._serializer, keys_, names, [columns[f] for f in names])
        self._store.write_hashes(keys_, names, rows)
        return keys_

    def read_hashes(self, keys: str | Sequence[str], fields: str | Sequence[str],
                    flatten: bool = True) -> list[dict]:
        """The fields of each task hash: one dict per key. With ``flatten`` the inner names
        of dict fields are merged into one dict; else ``{field: value}``."""
        keys_ = key_list("keys", keys)
        names = field_list("fields", fields)
        replies = self._store.read_hashes(keys_, names)
        decoders = [self._serializer.decoder(name) for name in names]
        out = []
        for key, reply in zip(keys_, replies):
            rec: dict[str, Any] = {}
            for name, decode, raw in zip(names, decoders, reply):
                value = None if raw is None else decode(key, raw)
                if flatten and isinstance(value, dict):
                    rec.update(value)
                elif value is not None or not flatten:
                    rec[name] = value
            out.append(rec)
        return out

    def read_hash(self, key: str, fields: str | Sequence[str], flatten: bool = False) -> dict:
        """The fields of one task hash as ``{field: value}`` (``None`` for a missing field),
        as the R package returns them; ``flatten=True`` merges dict fields as
        ``read_hashes`` does."""
        if not isinstance(key, str):
            raise TypeError("key must be a str")
        return self.read_hashes([key], fields, flatten)[0]

    # -- fetching ------------------------------------------------------------------

    def _fetch(self, states: Sequence[TaskState], fields: Any, state_column: bool = False
               ) -> "pd.DataFrame":
        names = field_list("fields", fields)
        keys, counts, values, vanished = self._store.read(states, names, own_queues=state_column)
        frames.warn_vanished(vanished)
        extra: dict[str, Sequence[Any]] | None = None
        if state_column:
            extra = {"state": [s.value for s, c in zip(states, counts) for _ in range(c)]}
        return frames.frame(frames.columns(keys, names, values, self._serializer, extra))

    def fetch_tasks(self, fields: str | Sequence[str] = ALL_FIELDS) -> "pd.DataFrame":
        """Every task, in creation order."""
        names = field_list("fields", fields)
        keys, _, values, vanished = self._store.read_all(names)
        frames.warn_vanished(vanished)
        return frames.frame(frames.columns(keys, names, values, self._serializer))

    def fetch_queued_tasks(self, fields: str | Sequence[str] = QUEUED_FIELDS) -> "pd.DataFrame":
        """Queued tasks, oldest first."""
        return self._fetch([TaskState.QUEUED], fields)

    def fetch_priority_tasks(self, fields: str | Sequence[str] = QUEUED_FIELDS) -> "pd.DataFrame":
        """Tasks waiting in workers' own queues (``push_priority_tasks``)."""
        names = field_list("fields", fields)
        keys, values, vanished = self._store.read_own_queues(names)
        frames.warn_vanished(vanished)
        return frames.frame(frames.columns(keys, names, values, self._serializer))

    def fetch_running_tasks(self, fields: str | Sequence[str] = RUNNING_FIELDS) -> "pd.DataFrame":
        """Running tasks."""
        return self._fetch([TaskState.RUNNING], fields)

    def fetch_failed_tasks(self, fields: str | Sequence[str] = FAILED_FIELDS) -> "pd.DataFrame":
        """Failed tasks, with their ``condition``."""
        return self._fetch([TaskState.FAILED], fields)

    def fetch_tasks_with_state(self, fields: str | Sequence[str] = ALL_FIELDS,
                               states: str | Sequence[str] = TASK_STATES) -> "pd.DataFrame":
        """Tasks of ``states`` from one consistent snapshot, with a ``state`` column
        ("queued" includes the tasks waiting in workers' own queues)."""
        wanted = states_list("states", states, TASK_STATES)
        return self._fetch([TaskState(s) for s in wanted], fields, state_column=True)

    def fetch_finished_tasks(self, fields: str | Sequence[str] = ALL_FIELDS) -> "pd.DataFrame":
        """Finished tasks in finishing order. Cached: each finished task is read from Redis
        once; later calls read only the new ones (``reset_cache()`` drops the cache)."""
        names = field_list("fields", fields)
        cursor, cached = self._finished_cache.get(names, (0, None))
        cursor, new = self._read_finished(names, cursor)
        cached = frames.append(cached, new)
        self._finished_cache[names] = (cursor, cached)
        return cached.copy(deep=False)

    def fetch_new_tasks(self, fields: str | Sequence[str] = ALL_FIELDS, timeout: float = 0
                        ) -> "pd.DataFrame":
        """Tasks finished since the last call of this method. With ``timeout > 0`` it blocks
        until at least one arrives or the time is up (then an empty DataFrame), and warns
        about crashed workers."""
        names = field_list("fields", fields)
        positive_number("timeout", timeout)
        if timeout > 0:
            def arrived() -> bool:
                self._report_crashes()
                return self.n_finished_tasks > self._new_cursor

            self._waiter.wait(arrived, timeout)
        self._new_cursor, new = self._read_finished(names, self._new_cursor)
        return new

    def _read_finished(self, names: tuple[str, ...], cursor: int) -> tuple[int, "pd.DataFrame"]:
        # each chunk is decoded into the columns as it arrives: the raw replies of a large
        # read never pile up beside the frame
        builder = frames.ColumnsBuilder(names, self._serializer)
        while True:
            keys, _, values, vanished = self._store.read(
                [TaskState.FINISHED], names, cursor, cursor + READ_CHUNK - 1)
            frames.warn_vanished(vanished)
            builder.add(keys, values)
            del values
            got = len(keys) + len(vanished)
            cursor += got
            if got < READ_CHUNK:
                return cursor, frames.frame(builder.finish())

    def reset_cache(self) -> None:
        """Forget the cached finished tasks and the cursor of ``fetch_new_tasks``."""
        self._finished_cache = {}
        self._new_cursor = 0

    # -- waiting -------------------------------------------------------------------

    def wait_for_tasks(self, keys: str | Sequence[str], detect_lost_workers: bool = False,
                       timeout: float | None = None, progress: bool = False) -> None:
        """Block until every key is finished or failed, or no worker is running (workers
        this controller started count from their start).

        With ``detect_lost_workers`` it sweeps for lost workers while waiting (their tasks
        fail, so the wait ends). With ``progress`` it shows a progress bar (tasks done of
        ``keys``, rate, best value of the first numeric output). Warns about crashed
        workers. Raises ``TimeoutError`` after ``timeout`` seconds, and ``RushWorkerError``
        when tasks remain, every worker has ended and one of them crashed.
        """
        all_keys = key_list("keys", keys)
        remaining = set(all_keys)
        if timeout is not None:
            positive_number("timeout", timeout)
        cursor = 0
        bar = ProgressBar(len(remaining), Best()) if progress else None

        def done() -> bool:
            nonlocal cursor
            settled, cursor, n_running = self._store.progress(list(remaining), cursor)
            remaining.difference_update(settled)
            self._report_crashes()
            if bar is not None:
                self._show_settled(bar, settled, len(all_keys) - len(remaining))
            if remaining and n_running == 0:
                if self._pool is not None and self._pool.still_starting(self._registry.states()):
                    return False
                self._raise_if_all_crashed()
                return True
            return not remaining

        sweep = self.detect_lost_workers if detect_lost_workers else None
        try:
            if not self._waiter.wait(done, timeout, on_slice=sweep):
                raise TimeoutError(f"{len(remaining)} task(s) still not finished or failed "
                                   f"after {timeout} s")
        finally:
            if bar is not None:
                bar.close()

    def _show_settled(self, bar: ProgressBar, settled: set[str], done: int) -> None:
        if settled:
            keys = list(settled)
            outputs = self._store.read_hashes(keys, ("ys",))
            decode = self._serializer.decoder("ys")
            bar.best.update(decode(key, ys) for key, (ys,) in zip(keys, outputs) if ys is not None)
        bar.show(done)

    @contextlib.contextmanager
    def progress(self, total: int | None = None, objective: str | None = None,
                 minimize: bool = True, file: IO[str] | None = None) -> Iterator[None]:
        """Show a progress bar of the network while the ``with`` block runs (a user's own
        loop): tasks finished or failed out of ``total`` (default: every task created so
        far), rate, and the best value so far of ``objective`` (default: the first numeric
        output, minimized unless ``minimize=False``). A thread with its own connection
        follows the network's events; the bar goes to ``file`` (default stderr) or the
        notebook.
        """
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
            raise ValueError(f"total must be an int >= 0 or None, got {total!r}")
        if objective is not None and not isinstance(objective, str):
            raise TypeError("objective must be the name of an output field (str) or None")
        follower = NetworkProgress(self._network_id, self._config, total,
                                   Best(objective, bool(minimize)), file).start()
        try:
            yield
        finally:
            follower.stop()

    # -- housekeeping --------------------------------------------------------------

    def reset(self, workers: bool = True) -> None:
        """Kill all workers and delete every key of the network; ``workers=False`` deletes
        only the task data (workers, their registrations and logs stay)."""
        guard = self._guard_reads
        self._store.guard_reads = self._registry.guard_reads = False  # works on a lost network
        try:
            if workers:
                self._workers.kill_all()
            self._store.delete(workers=workers)
        finally:
            self._store.guard_reads = self._registry.guard_reads = guard
        if workers:
            self._epoch.value = ""  # the next call joins a new network under the same id
        self.reset_cache()
        if workers:
            self._registry.forget_network()
            self._logs.forget()

    def summary(self) -> dict[str, dict[str, int]]:
        """How many tasks and workers the network has, by state (one round trip):
        ``{"tasks": {"queued": n, ...}, "workers": {"running": n, ...}}``."""
        tasks, workers = self._store.counts()
        return {"tasks": tasks, "workers": workers}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} network_id={self._network_id!r} config={self._config!r}>"

    def __str__(self) -> str:
        counts = self.summary()["tasks"]
        running = self.running_worker_ids
        lines = [f"<{type(self).__name__}> network {self._network_id!r} at {self._config.redacted_url}",
                 f"  running workers: {len(running)}" + (f" ({', '.join(running[:8])}"
                                                         f"{' ...' if len(running) > 8 else ''})"
                                                         if running else ""),
                 "  tasks: " + ", ".join(f"{n} {s}" for s, n in counts.items())]
        return "\n".join(lines)


def _rows(serializer: Serializer, keys: Sequence[str], fields: Sequence[str],
          columns: list[list]) -> list[list]:
    """One row of encoded field values per task ``keys[i]`` (columns hold one value per
    task), each payload signed for its task and field."""
    encoders = [serializer.encoder(f) for f in fields]
    try:
        return [[enc(key, col[i]) for enc, col in zip(encoders, columns)]
                for i, key in enumerate(keys)]
    except TypeError:
        for name, enc, col in zip(fields, encoders, columns):  # say which field
            for key, value in zip(keys, col):
                try:
                    enc(key, value)
                except TypeError as e:
                    raise TypeError(f"field {name!r}: {e}") from None
        raise


def _pack(worker_loop: Callable, kwargs: dict[str, Any], globals_: Any, packages: Any,
          caller: "FrameType | None") -> bytes:
    """The pickled start arguments, validated (``globals`` names are looked up in the
    ``caller``'s frame)."""
    return pack(worker_loop, kwargs, resolve_globals(globals_, caller), check_packages(packages))
