"""The controller's side of worker lifecycle: start, stop, find lost, restart, read logs.

Mixed into ``Rush``. Every start method validates all its arguments before it stores
anything or starts any process.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import socket
import subprocess
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from . import log_records
from ._process import kill, reap
from .launchers import local, remote, script
from .plan import check_n_workers, plan_value
from .serialization import dumps
from .start_args import caller_frame, check_packages, pack, place, resolve_globals
from .startup import LOST_MESSAGE
from .states import WorkerState
from .validation import id_list
from .worker_ids import new_worker_id
from .worker_options import WorkerOptions

if TYPE_CHECKING:
    import pandas as pd
    import redis

    from .config import RedisConfig
    from .keys import NetworkKeys
    from .registry import WorkerRegistry
    from .store import TaskStore

logger = logging.getLogger("rush")

KILLED_MESSAGE = "Worker was killed"
STOP_TYPES = ("kill", "terminate")


@dataclass(frozen=True)
class Launch:
    """How this controller started a worker, so it can start it again."""

    kind: str  # "local" or "remote"
    options: WorkerOptions
    supervise: bool = True
    executor: Any = None


class WorkerLifecycle:
    """Starting, stopping, watching and restarting workers; their logs."""

    processes: dict[str, subprocess.Popen]
    futures: dict[str, Any]
    if TYPE_CHECKING:  # provided by Rush, which this class is mixed into
        keys: NetworkKeys
        _client: redis.Redis
        _store: TaskStore
        _registry: WorkerRegistry

        @property
        def network_id(self) -> str: ...

        @property
        def config(self) -> RedisConfig: ...

        @property
        def worker_ids(self) -> list[str]: ...

    def _init_lifecycle(self) -> None:
        self._launches: dict[str, Launch] = {}
        self._starting: set[str] = set()  # launched, not yet seen registered
        self._log_dir: Path | None = None
        self._log_cursor: dict[str, int] = {}
        ref = weakref.ref(self)

        def reap_at_exit() -> None:
            controller = ref()
            if controller is not None:
                controller._reap_workers()

        self._atexit = reap_at_exit
        atexit.register(self._atexit)

    # -- starting ------------------------------------------------------------------

    def _n_workers(self, n_workers: Any) -> int:
        n = n_workers if n_workers is not None else plan_value("n_workers")
        if n is None:
            raise ValueError("give n_workers, or set it with rush_plan(n_workers=...)")
        return check_n_workers(n)

    def _store_start_args(self, worker_loop: Callable, n: int, globals_: Any, packages: Any,
                          kwargs: dict[str, Any], frame_depth: int) -> list[str]:
        """Validate and store the start arguments; returns new worker ids pointed at them."""
        resolved = resolve_globals(globals_, caller_frame(frame_depth))
        blob = pack(worker_loop, kwargs, resolved, check_packages(packages))
        args_id, stored = place(blob, self.keys, None, None)
        worker_ids = [new_worker_id() for _ in range(n)]
        self._registry.store_start_args(args_id, stored, worker_ids)
        return worker_ids

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
        worker_ids = self._store_start_args(worker_loop, n, globals, packages, kwargs, 2)
        launch = Launch("local", options, supervise=bool(supervise))
        for worker_id in worker_ids:
            self._start_local(worker_id, launch)
        logger.info("started %d local worker(s)", n)
        return worker_ids

    def _start_local(self, worker_id: str, launch: Launch) -> None:
        self.processes[worker_id] = local.start_process(
            self.network_id, worker_id, self.config, launch.options, launch.supervise,
            self._private_log_dir())
        self._launches[worker_id] = launch
        self._starting.add(worker_id)

    def _private_log_dir(self) -> Path:
        if self._log_dir is None:
            self._log_dir = Path(tempfile.mkdtemp(prefix="rush-workers-"))
        return self._log_dir

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
        executor = remote.check_executor(executor if executor is not None else remote.default_executor())
        options = remote.with_heartbeat(WorkerOptions.checked(
            lgr_thresholds, lgr_buffer_size, heartbeat_period, heartbeat_expire, message_log,
            output_log))
        worker_ids = self._store_start_args(worker_loop, n, globals, packages, kwargs, 2)
        self._warn_if_oversubscribed(executor, n)
        launch = Launch("remote", options, executor=executor)
        for worker_id in worker_ids:
            self._submit_remote(worker_id, launch)
        logger.info("submitted %d remote worker(s)", n)
        return worker_ids

    start_workers = start_remote_workers

    def _warn_if_oversubscribed(self, executor: Any, n: int) -> None:
        available = remote.slots(executor)
        busy = sum(1 for w, f in self.futures.items()
                   if not f.done() and self._launches[w].executor is executor)
        if available is not None and busy + n > available:
            logger.warning("starting %d remote worker(s) with %d already running on an engine "
                           "with %d slot(s): the rest wait until a slot frees up", n, busy, available)

    def worker_script(self, worker_loop: Callable, globals: Any = None,
                      packages: Sequence[str] | None = None,
                      lgr_thresholds: dict[str, str] | None = None,
                      heartbeat_period: float | None = None, heartbeat_expire: float | None = None,
                      message_log: str | None = None, output_log: str | None = None,
                      **kwargs: Any) -> str:
        """Store the start arguments and return a POSIX shell command that starts one worker
        wherever it runs (every value shell-quoted). It is logged with the password redacted.

        Without a heartbeat such a worker can only be found lost by nobody and killed only
        through Redis; give ``heartbeat_period`` to have both.
        """
        options = WorkerOptions.checked(lgr_thresholds, None, heartbeat_period, heartbeat_expire,
                                        message_log, output_log)
        self._store_start_args(worker_loop, 0, globals, packages, kwargs, 2)
        command, redacted = script.worker_command(self.network_id, self.config, options)
        logger.info("worker script: %s", redacted)
        return command

    # -- waiting for start-up -------------------------------------------------------

    def _check_start_failures(self, registered: set[str]) -> None:
        """Raise if a local worker process exited before it registered (e.g. a bad import)."""
        self._starting -= registered
        for worker_id in self._starting:
            process = self.processes.get(worker_id)
            if process is not None and process.poll() is not None:
                self._starting.discard(worker_id)
                raise RuntimeError(
                    f"local worker {worker_id} exited with code {process.returncode} before "
                    f"registering; its stderr ends with:\n{self._stderr_tail(worker_id)}")

    def _stderr_tail(self, worker_id: str) -> str:
        launch = self._launches.get(worker_id)
        if launch is None or launch.kind != "local":
            return ""
        return local.tail(local.stderr_path(worker_id, launch.options, self._private_log_dir()))

    # -- stopping ------------------------------------------------------------------

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
        states = self._registry.states()
        ids = self._running_among(id_list("worker_ids", worker_ids), states)
        if type == "terminate":
            # the flag outlives registration: a worker still starting leaves at once
            self._registry.request_terminate(ids)
            return
        condition = dumps({"message": KILLED_MESSAGE})
        for worker_id in ids:
            # mark killed first: from now on Redis refuses the worker's writes, so a kill
            # that takes a moment to land cannot leave a task stuck in running
            self._store.stop_worker(worker_id, WorkerState.KILLED.value, condition)
        self._registry.send_kill(ids)
        for worker_id in ids:
            self._kill_handle(worker_id)
        for worker_id in ids:
            if worker_id not in states:
                self._record_killed_unregistered(worker_id, condition)

    def _running_among(self, worker_ids: list[str] | None, states: dict[str, str]) -> list[str]:
        """The running workers among ``worker_ids`` (``None``: all), including those this
        controller launched that have not registered yet; warns about the others."""
        starting = self._unregistered(states)
        if worker_ids is None:
            return [w for w, s in states.items() if s == WorkerState.RUNNING.value] + starting
        running = []
        for worker_id in dict.fromkeys(worker_ids):
            state = states.get(worker_id)
            if state == WorkerState.RUNNING.value or worker_id in starting:
                running.append(worker_id)
            else:
                logger.warning("worker %s is %s: skipped", worker_id,
                               "unknown" if state is None else state)
        return running

    def _unregistered(self, states: dict[str, str]) -> list[str]:
        """Workers this controller launched that have not registered yet and still run:
        ``stop_workers`` right after a start must reach them too."""
        return [w for w in self._launches if w not in states and not self._handle_dead(w)]

    def _record_killed_unregistered(self, worker_id: str, condition: bytes) -> None:
        """A worker killed while it was starting (its process is gone now): it may have
        registered in between (then stop it like the others), else record it killed."""
        if self._store.stop_worker(worker_id, WorkerState.KILLED.value, condition) is None:
            process = self.processes.get(worker_id)
            self._registry.mark_unregistered(
                worker_id, WorkerState.KILLED.value, process.pid if process else 0,
                socket.gethostname() if process else "", self._launch_kind(worker_id) == "remote")

    def _kill_handle(self, worker_id: str) -> None:
        process = self.processes.get(worker_id)
        if process is not None:
            kill(process)
        future = self.futures.get(worker_id)
        if future is not None:
            future.cancel()

    # -- lost workers --------------------------------------------------------------

    def detect_lost_workers(self, restart_local_workers: bool = False) -> list[str]:
        """Find running workers that died: local ones by their process handle, remote ones
        by their future, others by an expired heartbeat. They become ``"lost"`` and their
        running and pending tasks fail with ``"Worker has crashed or was killed"``; a lost
        local worker's stderr tail is logged. Returns the ids found lost in this call.
        """
        info = self._registry.info()
        running = {r["worker_id"]: r for r in info if r["state"] == WorkerState.RUNNING.value}
        dead = [w for w in running if self._handle_dead(w)]
        watched = [w for w, r in running.items() if r["heartbeat"] and w not in dead]
        alive = self._registry.heartbeats_alive(watched)
        dead += [w for w, ok in zip(watched, alive) if not ok]
        condition = dumps({"message": LOST_MESSAGE})
        lost = [w for w in dead
                if self._store.stop_worker(w, WorkerState.LOST.value, condition) is not None]
        for worker_id in lost:
            tail = self._stderr_tail(worker_id) or self._future_error(worker_id)
            logger.warning("worker %s is lost%s", worker_id,
                           f"; its stderr ends with:\n{tail}" if tail else "")
        stranded = self._store.sweep_pending(condition)
        if stranded:
            logger.warning("failed %d task(s) left pending by stopped workers: %s",
                           len(stranded), ", ".join(stranded))
        if restart_local_workers:
            to_restart = [w for w in lost if self._launch_kind(w) == "local"]
            if to_restart:
                self.restart_workers(to_restart)
        return lost

    def _future_error(self, worker_id: str) -> str:
        future = self.futures.get(worker_id)
        if future is None or not future.done() or future.cancelled():
            return ""
        try:
            error = future.exception(timeout=1)
        except Exception as e:  # the engine could not even tell (e.g. a lost scheduler)
            error = e
        return "" if error is None else f"{type(error).__name__}: {error}"

    def _launch_kind(self, worker_id: str) -> str | None:
        launch = self._launches.get(worker_id)
        return None if launch is None else launch.kind

    def _handle_dead(self, worker_id: str) -> bool:
        process = self.processes.get(worker_id)
        if process is not None:
            return process.poll() is not None
        future = self.futures.get(worker_id)
        return future is not None and future.done()

    # -- restarting ----------------------------------------------------------------

    def restart_workers(self, worker_ids: str | Sequence[str]) -> list[str]:
        """Start the same worker ids again, with the same loop and arguments (killing any
        that still run); their state goes back to ``"running"``. Only workers this
        controller started can be restarted (script workers: run their command again)."""
        ids = list(dict.fromkeys(id_list("worker_ids", worker_ids) or []))
        states = self._registry.states()
        unknown = [w for w in ids if w not in states]
        if unknown:
            raise ValueError(f"unknown worker ids: {', '.join(unknown)}")
        foreign = [w for w in ids if w not in self._launches]
        if foreign:
            raise ValueError(
                f"cannot restart {', '.join(foreign)}: not started by this controller (script "
                "workers cannot be restarted; run the command of worker_script() again)")
        alive = [w for w in ids if states[w] == WorkerState.RUNNING.value]
        if alive:
            self.stop_workers("kill", alive)
        self._registry.set_running(ids)
        for worker_id in ids:
            self._restart_one(worker_id)
        return ids

    def _restart_one(self, worker_id: str) -> None:
        launch = self._launches[worker_id]
        old = self.processes.pop(worker_id, None)
        if old is not None:
            reap(old, timeout=1)
        self.futures.pop(worker_id, None)
        if launch.kind == "local":
            self._start_local(worker_id, launch)
        else:
            self._submit_remote(worker_id, launch)

    def _submit_remote(self, worker_id: str, launch: Launch) -> None:
        token = remote.new_launch_token(self._client, self.keys, worker_id)
        self.futures[worker_id] = remote.submit(launch.executor, self.network_id, worker_id,
                                                self.config, launch.options, token)
        self._launches[worker_id] = launch

    # -- logs ----------------------------------------------------------------------

    def read_log(self, worker_ids: str | Sequence[str] | None = None,
                 time_difference: bool = False) -> "pd.DataFrame":
        """Every log record the workers stored: ``worker_id, level, timestamp`` (UTC),
        ``logger, caller, msg`` (+ ``time_difference``, seconds since the worker's previous
        record)."""
        ids = id_list("worker_ids", worker_ids) or self.worker_ids
        raw = self._registry.read_logs(ids, [0] * len(ids))
        per_worker = {w: log_records.parse(r) for w, r in zip(ids, raw)}
        return log_records.log_frame(per_worker, time_difference)

    def print_log(self) -> None:
        """Emit the log records not printed before, through their original Python logger,
        as ``[worker_id] [timestamp] msg`` (timestamp in UTC)."""
        ids = self.worker_ids
        starts = [self._log_cursor.get(w, 0) for w in ids]
        for worker_id, start, raw in zip(ids, starts, self._registry.read_logs(ids, starts)):
            for record in log_records.parse(raw):
                log_records.emit(worker_id, record)
            self._log_cursor[worker_id] = start + len(raw)

    # -- cleaning up ---------------------------------------------------------------

    def _kill_all_workers(self) -> None:
        """Kill every running worker of the network and every process this controller
        started, and forget them."""
        self.stop_workers("kill")
        self._reap_workers(kill_unsupervised=True)
        for future in self.futures.values():
            future.cancel()
        self.processes.clear()
        self.futures.clear()
        self._launches.clear()
        self._starting.clear()

    def _reap_workers(self, kill_unsupervised: bool = False) -> None:
        """Kill this controller's supervised worker processes that still run (all of them
        with ``kill_unsupervised``) and reap every one that ended."""
        for worker_id, process in list(self.processes.items()):
            launch = self._launches.get(worker_id)
            supervised = launch is None or launch.supervise
            if process.poll() is None and (supervised or kill_unsupervised):
                kill(process)
        if self._log_dir is not None and all(p.poll() is not None for p in self.processes.values()):
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    def _close_lifecycle(self) -> None:
        self._reap_workers()
        atexit.unregister(self._atexit)
