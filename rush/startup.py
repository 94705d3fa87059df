"""What a worker process does: ``start_worker`` reads the start arguments, runs the loop
in a ``RushWorker`` and records how it ended."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from typing import Any

from .config import RedisConfig, env_url
from .errors import WorkerStoppedError
from .plan import check_buffer_size, check_thresholds
from .validation import positive_number

logger = logging.getLogger("rush")

LOST_MESSAGE = "Worker has crashed or was killed"
_SUPERVISION_INTERVAL = 1.0


def check_heartbeat(period: Any, expire: Any) -> tuple[float | None, float | None]:
    """Validate heartbeat options: seconds, floats allowed, expire >= period, default 3 x period."""
    if period is None:
        if expire is not None:
            raise ValueError("heartbeat_expire needs heartbeat_period")
        return None, None
    period = positive_number("heartbeat_period", period, allow_zero=False)
    expire = 3 * period if expire is None else positive_number("heartbeat_expire", expire)
    if expire < period:
        raise ValueError(f"heartbeat_expire ({expire:g}) must be >= heartbeat_period ({period:g})")
    return period, expire


def check_log_dir(name: str, path: Any) -> str | None:
    """An existing directory for message_log/output_log, else ``ValueError``."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path")
    if not os.path.isdir(path):
        raise ValueError(f"{name} {os.fspath(path)!r} is not an existing directory")
    return os.fspath(path)


def start_worker(network_id: str, worker_id: str | None = None, config: RedisConfig | None = None,
                 lgr_thresholds: dict[str, str] | None = None, lgr_buffer_size: int = 0,
                 heartbeat_period: float | None = None, heartbeat_expire: float | None = None,
                 message_log: str | None = None, output_log: str | None = None,
                 remote: bool = False, supervisor_pid: int | None = None) -> str:
    """Run one worker of ``network_id`` in this process until its loop ends; returns its id.

    Reads the start arguments the controller stored, imports ``packages``, puts
    ``globals`` into the loop's namespace, runs ``worker_loop(worker, **kwargs)`` and then
    marks the worker terminated. A loop that raises marks the worker lost (its tasks fail)
    and re-raises. Raises ``RuntimeError`` when the network has no start arguments.
    """
    from .worker_ids import new_worker_id

    worker_id = worker_id or new_worker_id()
    period, expire = check_heartbeat(heartbeat_period, heartbeat_expire)
    thresholds = check_thresholds(lgr_thresholds) if lgr_thresholds else None
    check_buffer_size(lgr_buffer_size)
    _redirect("message_log", message_log, "message", worker_id, sys.stderr)
    _redirect("output_log", output_log, "output", worker_id, sys.stdout)
    if supervisor_pid is not None:
        _watch_supervisor(supervisor_pid)
    if config is None:
        url = env_url()
        config = RedisConfig(url=url) if url else RedisConfig()

    from .worker import RushWorker

    worker = RushWorker(network_id, config=config, worker_id=worker_id, heartbeat_period=period,
                        heartbeat_expire=expire, remote=remote, _register=False)
    try:
        args = worker._read_start_args()
        for package in args["packages"]:
            importlib.import_module(package)
        loop = args["worker_loop"]
        getattr(loop, "__globals__", {}).update(args["globals"])
        worker._register()
        handler = worker._install_log_handler(thresholds, lgr_buffer_size) if thresholds else None
        try:
            _run_loop(worker, loop, args["kwargs"])
        finally:
            if handler is not None and thresholds:
                from .log_records import uninstall

                uninstall(handler, thresholds)
        return worker.worker_id
    finally:
        worker._stop_heartbeat()
        worker.close()


def _run_loop(worker: Any, loop: Any, kwargs: dict[str, Any]) -> None:
    try:
        loop(worker, **kwargs)
    except WorkerStoppedError:
        logger.info("worker %s was stopped", worker.worker_id)
    except (Exception, KeyboardInterrupt) as e:
        logger.error("worker %s: the loop raised %s: %s", worker.worker_id, type(e).__name__, e)
        worker._mark_lost(f"{LOST_MESSAGE}: {type(e).__name__}: {e}")
        raise
    worker.set_terminated()


def _redirect(name: str, folder: str | None, prefix: str, worker_id: str, stream: Any) -> None:
    """Send this process's stderr/stdout to ``<folder>/<prefix>_<worker_id>.log``."""
    folder = check_log_dir(name, folder)
    if folder is None:
        return
    path = os.path.join(folder, f"{prefix}_{worker_id}.log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    stream.flush()
    os.dup2(fd, stream.fileno())
    os.close(fd)


def _watch_supervisor(pid: int) -> None:
    """End this process when the controller that supervises it is gone (a backup for the
    parent-death signal, which Linux sends when the *thread* that started us ends)."""

    def watch() -> None:
        while True:
            if os.getppid() != pid:
                os._exit(70)
            threading.Event().wait(_SUPERVISION_INTERVAL)

    threading.Thread(target=watch, name="rush-supervision", daemon=True).start()
