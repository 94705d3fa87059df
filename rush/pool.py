"""The workers a controller started: their processes, engine futures and launches.

``WorkerPool`` starts, stops, watches and restarts workers for a ``Rush`` controller
(which validates the arguments first), and reaps every process it started, at the
latest when the interpreter exits.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import socket
import subprocess
import tempfile
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ._process import host_identity, kill, process_gone
from .config import RedisConfig
from .connection import answers
from .errors import RushConnectionError
from .launchers import local, remote, script
from .registry import WorkerRegistry
from .start_args import place
from .states import CONTROLLER_EXITED_MESSAGE, KILLED_MESSAGE, LOST_MESSAGE, WorkerState
from .store import TaskStore
from .worker_ids import new_worker_id
from .worker_options import WorkerOptions

logger = logging.getLogger("rush")

_RUNNING = WorkerState.RUNNING.value


@dataclass(frozen=True)
class Launch:
    """How this controller started a worker, so it can start it again."""

    kind: str  # "local" or "remote"
    args_id: str  # the start arguments it runs
    options: WorkerOptions
    supervise: bool = True
    executor: Any = None


class WorkerPool:
    """Starts, stops, watches and restarts the workers of one controller."""

    def __init__(self, network_id: str, config: RedisConfig, store: TaskStore,
                 registry: WorkerRegistry) -> None:
        self.network_id = network_id
        self.config = config
        self.store = store
        self.registry = registry
        self.processes: dict[str, subprocess.Popen] = {}
        self.futures: dict[str, Any] = {}
        self._launches: dict[str, Launch] = {}
        self._starting: set[str] = set()  # launched, not yet seen registered
        self._log_dir: Path | None = None
        ref = weakref.ref(self)

        def reap_at_exit() -> None:
            pool = ref()
            if pool is not None:
                pool.reap()

        self._atexit = reap_at_exit
        atexit.register(self._atexit)

    def use(self, store: TaskStore, registry: WorkerRegistry) -> None:
        """Go on with the layers of the controller's new connection."""
        self.store, self.registry = store, registry

    # -- starting ------------------------------------------------------------------

    def store_start_args(self, blob: bytes, n: int) -> tuple[str, list[str]]:
        """Store pickled start arguments (sealed by the network's serializer); returns their
        id and ``n`` new worker ids pointed at them."""
        args_id, stored = place(blob, self.registry.serializer, None, None)
        worker_ids = [new_worker_id() for _ in range(n)]
        self.registry.store_start_args(args_id, stored, worker_ids)
        return args_id, worker_ids

    def start_local(self, worker_ids: Sequence[str], args_id: str, options: WorkerOptions,
                    supervise: bool) -> None:
        """Start one local process per worker id, running start arguments ``args_id``."""
        launch = Launch("local", args_id, options, supervise=supervise)
        for worker_id in worker_ids:
            self._start_local(worker_id, _incarnation(), launch)

    def _start_local(self, worker_id: str, incarnation: str, launch: Launch) -> None:
        self.processes[worker_id] = local.start_process(
            self.network_id, worker_id, incarnation, launch.args_id, self.config,
            launch.options, launch.supervise, self._private_log_dir())
        self._launches[worker_id] = launch
        self._starting.add(worker_id)

    def _private_log_dir(self) -> Path:
        if self._log_dir is None:  # mkdtemp makes it readable by its owner only (0700)
            self._log_dir = Path(tempfile.mkdtemp(prefix="rush-workers-"))
        return self._log_dir

    def start_remote(self, worker_ids: Sequence[str], args_id: str, options: WorkerOptions,
                     executor: Any) -> None:
        """Submit one engine task per worker id, running start arguments ``args_id``."""
        self._warn_if_oversubscribed(executor, len(worker_ids))
        launch = Launch("remote", args_id, options, executor=executor)
        for worker_id in worker_ids:
            self._submit_remote(worker_id, _incarnation(), launch)

    def _submit_remote(self, worker_id: str, incarnation: str, launch: Launch) -> None:
        token = self.registry.new_launch_token(worker_id)
        self.futures[worker_id] = remote.submit(launch.executor, self.network_id, worker_id,
                                                incarnation, launch.args_id, self.config,
                                                launch.options, token)
        self._launches[worker_id] = launch

    def _warn_if_oversubscribed(self, executor: Any, n: int) -> None:
        available = remote.slots(executor)
        busy = sum(1 for w, f in self.futures.items()
                   if not f.done() and self._launches[w].executor is executor)
        if available is not None and busy + n > available:
            logger.warning("starting %d remote worker(s) with %d already running on an engine "
                           "with %d slot(s): the rest wait until a slot frees up", n, busy, available)

    def script_command(self, args_id: str, options: WorkerOptions, python: str = "python") -> str:
        """The shell command of a script worker running start arguments ``args_id`` (logged
        with the password and the secret redacted)."""
        command, redacted = script.worker_command(self.network_id, args_id, self.config,
                                                  options, python)
        logger.info("worker script: %s", redacted)
        return command

    def check_start_failures(self, registered: set[str]) -> None:
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

    def terminate(self, worker_ids: Sequence[str] | None) -> None:
        """Raise the terminate flag of these running workers (``None``: all)."""
        ids = self._running_among(worker_ids, self.registry.states())
        # the flag outlives registration: a worker still starting leaves at once
        self.registry.request_terminate(ids)

    def kill(self, worker_ids: Sequence[str] | None) -> None:
        """Kill these running workers (``None``: all) now: state ``killed``, their running
        and pending tasks fail."""
        states = self.registry.states()
        ids = self._running_among(worker_ids, states)
        condition = {"message": KILLED_MESSAGE}
        # mark killed first (one step for all): from now on Redis refuses the workers'
        # writes, so a kill that takes a moment to land cannot leave a task stuck in running
        self.store.stop_workers(ids, WorkerState.KILLED, condition)
        self._stop_processes(ids)
        for worker_id in ids:
            if worker_id not in states:
                self._record_killed_unregistered(worker_id, condition)

    def _stop_processes(self, worker_ids: Sequence[str]) -> None:
        """Kill the processes of workers already marked stopped: the kill channel (read by
        a heartbeat), then the process handle or the engine."""
        self.registry.send_kill(worker_ids)
        for worker_id in worker_ids:
            self._kill_handle(worker_id)

    def _running_among(self, worker_ids: Sequence[str] | None, states: dict[str, str]) -> list[str]:
        """The running workers among ``worker_ids`` (``None``: all), including those this
        controller launched that have not registered yet; warns about the others."""
        starting = self._unregistered(states)
        if worker_ids is None:
            return [w for w, s in states.items() if s == _RUNNING] + starting
        running = []
        for worker_id in dict.fromkeys(worker_ids):
            state = states.get(worker_id)
            if state == _RUNNING or worker_id in starting:
                running.append(worker_id)
            else:
                logger.warning("worker %s is %s: skipped", worker_id,
                               "unknown" if state is None else state)
        return running

    def still_starting(self, states: dict[str, str]) -> list[str]:
        """Workers this controller launched that are not in ``states`` (not registered
        yet) and whose process or future has not ended."""
        return self._unregistered(states)

    def _unregistered(self, states: dict[str, str]) -> list[str]:
        """Workers this controller launched that have not registered yet and still run:
        a kill right after a start must reach them too."""
        return [w for w in self._launches if w not in states and not self._handle_dead(w)]

    def _record_killed_unregistered(self, worker_id: str, condition: dict) -> None:
        """A worker killed while it was starting (its process is gone now): it may have
        registered in between (then stop it like the others), else record it killed."""
        if self.store.stop_worker(worker_id, WorkerState.KILLED, condition) is None:
            process = self.processes.get(worker_id)
            self.registry.mark_unregistered(
                worker_id, WorkerState.KILLED, process.pid if process else 0,
                socket.gethostname() if process else "", self._launch_kind(worker_id) == "remote")

    def _kill_handle(self, worker_id: str) -> None:
        process = self.processes.get(worker_id)
        if process is not None:
            kill(process)
        future = self.futures.get(worker_id)
        if future is not None:
            _cancel(future)

    # -- lost workers --------------------------------------------------------------

    def detect_lost(self, restart_local_workers: bool) -> list[str]:
        """Mark running workers that died, or whose task ran past its timeout (killing
        them), lost and settle their tasks; returns their ids. ``restart_local_workers``
        also restarts this controller's local workers that were already lost (their own
        crash, their heartbeat's timeout) once their process has ended.

        Dead means: its process handle or future says so, its process on this host is
        gone, or its heartbeat expired."""
        view = self.registry.sweep()
        running = {r.worker_id: r for r in view if r.state == _RUNNING}
        lost = self._stop_timed_out(list(running))
        here = host_identity()
        dead = [w for w, r in running.items() if w not in lost and (
            self._handle_dead(w)
            or (here and r.host == here and process_gone(r.pid, r.started))
            or (r.heartbeat and not r.beating))]
        condition = {"message": LOST_MESSAGE}
        for worker_id in self.store.stop_workers(dead, WorkerState.LOST, condition):
            lost.append(worker_id)
            tail = self._stderr_tail(worker_id) or self._future_error(worker_id)
            logger.warning("worker %s is lost%s", worker_id,
                           f"; its stderr ends with:\n{tail}" if tail else "")
        stranded = self.store.sweep_pending(condition)
        if stranded.failed or stranded.requeued:
            logger.warning("settled %d task(s) left pending by stopped workers (failed: %s; "
                           "back in the queue: %s)", len(stranded.failed) + len(stranded.requeued),
                           ", ".join(stranded.failed), ", ".join(stranded.requeued))
        if restart_local_workers:
            ended = [r.worker_id for r in view if r.state == WorkerState.LOST.value
                     and self._handle_dead(r.worker_id)]
            to_restart = [w for w in dict.fromkeys(lost + ended) if self._launch_kind(w) == "local"]
            if to_restart:
                self.restart(to_restart)
        return lost

    def _stop_timed_out(self, running: Sequence[str]) -> list[str]:
        """Mark lost and kill the workers whose task runs past its timeout; their ids."""
        stopped = []
        for worker_id, key, timeout in self.store.timed_out(running):
            if worker_id in stopped:
                continue
            if self.store.stop_timed_out(worker_id, key, timeout) is not None:
                stopped.append(worker_id)
                logger.warning("worker %s is lost: task %s ran past its timeout of %g s; "
                               "killing it", worker_id, key, timeout)
        self._stop_processes(stopped)
        return stopped

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

    def restart(self, worker_ids: Sequence[str]) -> list[str]:
        """Start the same worker ids again with the same loop and arguments."""
        ids = list(dict.fromkeys(worker_ids))
        states = self.registry.states()
        unknown = [w for w in ids if w not in states]
        if unknown:
            raise ValueError(f"unknown worker ids: {', '.join(unknown)}")
        foreign = [w for w in ids if w not in self._launches]
        if foreign:
            raise ValueError(
                f"cannot restart {', '.join(foreign)}: not started by this controller (script "
                "workers cannot be restarted; run the command of worker_script() again)")
        alive = [w for w in ids if states[w] == _RUNNING]
        if alive:
            self.kill(alive)
        # a new incarnation for each id, running from now on: the old processes (should
        # one outlive its kill) can no longer write, nor touch the new one's keys
        incarnations = {w: _incarnation() for w in ids}
        self.registry.set_running(incarnations)
        for worker_id, incarnation in incarnations.items():
            self._restart_one(worker_id, incarnation)
        return ids

    def _restart_one(self, worker_id: str, incarnation: str) -> None:
        launch = self._launches[worker_id]
        old = self.processes.pop(worker_id, None)
        if old is not None:
            # SIGKILL with whatever it started (a frozen worker's heartbeat too); not
            # SIGTERM: on SIGTERM a worker marks its id lost, which now belongs to the
            # new incarnation (which the old one could not touch anyway)
            kill(old)
        self.futures.pop(worker_id, None)
        if launch.kind == "local":
            self._start_local(worker_id, incarnation, launch)
        else:
            self._submit_remote(worker_id, incarnation, launch)

    # -- cleaning up ---------------------------------------------------------------

    def kill_all(self) -> None:
        """Kill every running worker of the network and every process this controller
        started, and forget them."""
        self.kill(None)
        self.reap(kill_unsupervised=True)
        for future in self.futures.values():
            _cancel(future)
        self.processes.clear()
        self.futures.clear()
        self._launches.clear()
        self._starting.clear()

    def reap(self, kill_unsupervised: bool = False) -> None:
        """Kill this controller's supervised worker processes that still run (all of them
        with ``kill_unsupervised``) and reap every one that ended.

        Supervised workers end because their controller does: they are marked lost first,
        their tasks failed with ``"Controller of the worker exited"``."""
        supervised: list[str] = []
        unsupervised: list[str] = []
        for worker_id, process in self.processes.items():
            launch = self._launches.get(worker_id)
            if process.poll() is None:
                (supervised if launch is None or launch.supervise else unsupervised).append(worker_id)
        self._mark_controller_exited(supervised)
        for worker_id in supervised + (unsupervised if kill_unsupervised else []):
            kill(self.processes[worker_id])
        if self._log_dir is not None and all(p.poll() is not None for p in self.processes.values()):
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    def _mark_controller_exited(self, worker_ids: Sequence[str]) -> None:
        # at exit Redis may be gone already: ask once, rather than retry for each worker
        if not worker_ids or not answers(self.config, timeout=1.0):
            return
        condition = {"message": CONTROLLER_EXITED_MESSAGE}
        try:
            self.store.stop_workers(worker_ids, WorkerState.LOST, condition)
        except RushConnectionError as e:  # at exit: the processes must go all the same
            logger.warning("could not mark the workers of this controller lost: %s", e)

    def close(self) -> None:
        """Reap the supervised workers; the pool is not used afterwards."""
        self.reap()
        atexit.unregister(self._atexit)


def _incarnation() -> str:
    """A token for one start of a worker id."""
    return uuid.uuid4().hex


def _cancel(future: Any) -> None:
    """Cancel an engine future that has not ended. Its engine may be gone (a Dask client
    closed with its ``with`` block): its workers are then gone too, nothing to cancel."""
    if future.done():
        return
    try:
        future.cancel()
    except Exception as e:  # e.g. Dask's "IOLoop is closed"
        logger.info("could not cancel a remote worker's future (%s: %s); its engine is gone",
                    type(e).__name__, e)
