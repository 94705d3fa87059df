"""What a worker process does: read its start arguments, register, run the loop in a
``RushWorker`` (with its heartbeat and log handler), and record how it ended.

``start_worker`` is the entry point of ``rush worker`` (local and script workers) and
of users who run a worker themselves; ``run_remote_worker`` is what a distributed
engine runs for a remote worker.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import signal
import sys
import threading
import uuid
from dataclasses import replace
from typing import Any, Iterator

from . import logs
from ._process import kill_descendants
from .config import RedisConfig
from .connection import check_connection
from .errors import NoStartArgumentsError, RushNetworkLostError, WorkerStoppedError
from .plan import resolve_config
from .registry import WorkerRegistry
from .start_args import unpack
from .states import CONTROLLER_EXITED_MESSAGE, LOST_MESSAGE, WorkerState
from .store import TaskStore
from .validation import check_network_id, check_start_args_id
from .worker import RushWorker
from .worker_ids import new_worker_id
from .worker_options import WorkerOptions

logger = logging.getLogger("rush")

_SUPERVISION_INTERVAL = 1.0


def start_worker(network_id: str, worker_id: str | None = None, config: RedisConfig | None = None,
                 lgr_thresholds: dict[str, str] | None = None, lgr_buffer_size: int = 0,
                 heartbeat_period: float | None = None, heartbeat_expire: float | None = None,
                 message_log: str | None = None, output_log: str | None = None,
                 remote: bool = False, supervisor_pid: int | None = None) -> str:
    """Run one worker of ``network_id`` in this process until its loop ends; returns its id.

    Reads the start arguments the controller stored, imports ``packages``, puts
    ``globals`` into the loop's namespace, runs ``worker_loop(worker, **kwargs)`` and then
    marks the worker terminated. A loop that raises records its crash (``worker_errors``,
    an ERROR log record), marks the worker lost (its tasks fail with the exception's type,
    message and traceback, or go back to the queue while they have retries left) and
    re-raises. Without ``config``, Redis is found as ``rsh()`` finds it. Raises
    ``RuntimeError`` (``NoStartArgumentsError``) when the network has no start arguments.
    """
    options = WorkerOptions.checked(lgr_thresholds, lgr_buffer_size, heartbeat_period,
                                    heartbeat_expire, message_log, output_log)
    return run_worker(network_id, worker_id or new_worker_id(), resolve_config(config), options,
                      remote, supervisor_pid)


def run_remote_worker(network_id: str, worker_id: str, incarnation: str, config: RedisConfig,
                      options: WorkerOptions, token: str, start_args: str | None = None
                      ) -> str | None:
    """What the engine runs for a remote worker: ``run_worker`` once per launch.

    Returns ``None`` without starting when the launch token was already used (an
    engine's re-run of a task whose process died) or voided (the worker was killed).
    """
    check_connection(config)
    registry = WorkerRegistry.connect(network_id, config)
    try:
        first_run = registry.consume_launch_token(worker_id, token)
    finally:
        registry.close()
    if not first_run:
        logger.warning("worker %s: this launch was already used (an engine re-run?) or the "
                       "worker was killed; not starting", worker_id)
        return None
    return run_worker(network_id, worker_id, config, options, remote=True,
                      incarnation=incarnation, start_args=start_args)


def run_worker(network_id: str, worker_id: str, config: RedisConfig, options: WorkerOptions,
               remote: bool = False, supervisor_pid: int | None = None,
               incarnation: str | None = None, start_args: str | None = None) -> str:
    """Run one worker with validated ``options``; returns its id. ``incarnation`` is the
    token of this start of the id (the controller's, for workers it launched);
    ``start_args`` the id of the start arguments it was launched with (else its own, else
    the network's latest).

    In the main thread of a process, a SIGTERM marks the worker lost before the process
    ends; with ``supervisor_pid`` (a local worker of that controller process), the worker
    also ends, lost, when the controller is gone (message ``"Controller of the worker
    exited"``), and leaves SIGINT to the controller. Either way the processes its loop
    started end with it.
    """
    check_network_id(network_id)
    if start_args is not None:
        check_start_args_id(start_args)
    _redirect(options.message_log, "message", worker_id, sys.stderr)
    _redirect(options.output_log, "output", worker_id, sys.stdout)
    in_main = threading.current_thread() is threading.main_thread()
    incarnation = incarnation or uuid.uuid4().hex
    with Supervision(network_id, worker_id, incarnation, config, supervisor_pid) if in_main \
            else contextlib.nullcontext():
        return _run(network_id, worker_id, incarnation, config, options, remote, start_args)


def _run(network_id: str, worker_id: str, incarnation: str, config: RedisConfig,
         options: WorkerOptions, remote: bool, start_args: str | None) -> str:
    check_connection(config)
    registry = WorkerRegistry.connect(network_id, config)
    try:
        loop, kwargs = _prepare(network_id, worker_id, registry, start_args)
        worker = RushWorker(network_id, config=config, worker_id=worker_id,
                            heartbeat_period=options.heartbeat_period,
                            heartbeat_expire=options.heartbeat_expire, remote=remote,
                            incarnation=incarnation)
        try:
            with _logging_to_redis(registry, worker_id, options):
                _run_loop(worker, loop, kwargs)
        finally:
            worker.close()
        return worker_id
    finally:
        registry.close()


def _prepare(network_id: str, worker_id: str, registry: WorkerRegistry,
             args_id: str | None) -> tuple[Any, dict]:
    """The loop and its kwargs, with ``packages`` imported and ``globals`` in place."""
    stored = registry.start_args(worker_id, args_id)
    if stored is None:
        which = f"start arguments {args_id}" if args_id else "start arguments"
        raise NoStartArgumentsError(
            f"network {network_id!r} has no {which} for worker {worker_id!r}: start "
            "workers with a controller's start_local_workers(), start_remote_workers() or "
            "worker_script(), which store them first")
    args = unpack(*stored, registry.serializer)
    for package in args["packages"]:
        importlib.import_module(package)
    loop = args["worker_loop"]
    getattr(loop, "__globals__", {}).update(args["globals"])
    return loop, args["kwargs"]


@contextlib.contextmanager
def _logging_to_redis(registry: WorkerRegistry, worker_id: str,
                      options: WorkerOptions) -> Iterator[None]:
    """Records of the loggers in ``lgr_thresholds`` go to the worker's log meanwhile."""
    thresholds = options.lgr_thresholds
    if not thresholds:
        yield
        return
    push = functools.partial(registry.push_logs, worker_id)
    handler = logs.install(push, thresholds, options.lgr_buffer_size)
    try:
        yield
    finally:
        logs.uninstall(handler, thresholds)


def _run_loop(worker: RushWorker, loop: Any, kwargs: dict[str, Any]) -> None:
    try:
        loop(worker, **kwargs)
    except WorkerStoppedError:
        logger.info("worker %s was stopped", worker.worker_id)
        _end_what_the_loop_started(worker)
        return
    except RushNetworkLostError as e:
        logger.error("worker %s stops: %s", worker.worker_id, e)
        raise
    except (Exception, KeyboardInterrupt) as e:
        try:
            worker.record_crash(e)
        except Exception as failure:  # e.g. Redis is gone: the loop's error matters more
            logger.error("worker %s: could not record the crash of its loop: %s",
                         worker.worker_id, failure)
        raise
    if not worker.set_terminated():  # it saw terminated because it was killed, or lost
        _end_what_the_loop_started(worker)


def _end_what_the_loop_started(worker: RushWorker) -> None:
    """A stopped worker takes down the processes its loop started (as a kill through its
    handle or its heartbeat would, had it come first)."""
    kill_descendants(spare={worker.heartbeat_pid})


def _redirect(folder: str | None, prefix: str, worker_id: str, stream: Any) -> None:
    """Send this process's stderr/stdout to ``<folder>/<prefix>_<worker_id>.log`` (made
    readable by its owner only, 0600, when new)."""
    if folder is None:
        return
    path = os.path.join(folder, f"{prefix}_{worker_id}.log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    stream.flush()
    os.dup2(fd, stream.fileno())
    os.close(fd)


class Supervision:
    """Ends a worker process in a true state when it is stopped from outside.

    Used as a context around the worker's run, in the main thread. A SIGTERM (also what
    Linux sends a supervised local worker when its controller dies: the parent-death
    signal) wakes a thread that marks the worker lost, failing its running and pending
    tasks, on a connection of its own (the main thread may be in the middle of a command
    on the worker's, or in a long computation that delays Python's signal handlers), and
    then ends the process. With a supervisor, the thread also checks every second that
    the controller is still the parent (the parent-death signal is only set up when the
    controller starts workers from its main thread) and leaves SIGINT to the controller.
    """

    def __init__(self, network_id: str, worker_id: str, incarnation: str, config: RedisConfig,
                 supervisor_pid: int | None) -> None:
        self.network_id, self.worker_id, self.config = network_id, worker_id, config
        self.incarnation = incarnation
        self.supervisor_pid = supervisor_pid
        self._wake = threading.Event()
        self._over = False  # the run ended normally: the thread leaves quietly
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "Supervision":
        self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, lambda *_: self._wake.set())
        if self.supervisor_pid is not None:
            self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
        threading.Thread(target=self._watch, name="rush-supervision", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._over = True
        self._wake.set()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _controller_gone(self) -> bool:
        return self.supervisor_pid is not None and os.getppid() != self.supervisor_pid

    def _watch(self) -> None:
        while not self._wake.wait(_SUPERVISION_INTERVAL) and not self._controller_gone():
            pass
        if self._over:
            return
        gone = self._controller_gone()
        try:
            self._mark_lost(CONTROLLER_EXITED_MESSAGE if gone else LOST_MESSAGE)
        finally:
            kill_descendants()  # what the loop started (and the heartbeat) end with it
            os._exit(70 if gone else 128 + signal.SIGTERM)

    def _mark_lost(self, message: str) -> None:
        # a short retry: a process that must end does not wait out a long Redis outage
        config = replace(self.config, retry_seconds=min(self.config.retry_seconds, 3.0))
        try:
            store = TaskStore.connect(self.network_id, config)
        except Exception:  # a bad config: nothing to record, the sweeps will find the worker
            return
        try:
            store.stop_worker(self.worker_id, WorkerState.LOST, {"message": message},
                              self.incarnation)
        except Exception as e:  # best effort on the way out: say why on stderr
            print(f"rush worker {self.worker_id}: could not record its end: {e}",
                  file=sys.stderr, flush=True)
        finally:
            store.close()
