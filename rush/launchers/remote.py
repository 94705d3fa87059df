"""Remote workers: each worker is one long-running task of a distributed engine.

The engine is any object with ``submit(fn, *args, **kwargs) -> future``: a
``dask.distributed.Client`` (``LocalCluster``, ``SSHCluster``, dask-jobqueue ...) or a
``concurrent.futures`` executor. rush has no scheduler of its own.

An engine may re-run a task whose process died (Dask does, up to its allowed failures).
Such a re-run must not bring the worker back by itself: every submission carries a
one-time launch token, which the first run consumes; a re-run finds it gone and returns
without registering (the controller then sees the future done and the worker lost).
"""

from __future__ import annotations

import logging
from typing import Any

from ..config import RedisConfig
from ..plan import plan_value
from ..worker_options import WorkerOptions

logger = logging.getLogger("rush")

#: Heartbeat period of remote workers when none is given (seconds; expiry 3 x period).
REMOTE_HEARTBEAT_PERIOD = 1.0


def default_executor() -> Any:
    """The plan's executor, else the current Dask client; else a ``RuntimeError`` saying
    how to get one."""
    executor = plan_value("executor")
    if executor is not None:
        return executor
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):  # no Dask, or no client started
        pass
    raise RuntimeError(
        "no executor for remote workers: start a Dask client first "
        "(from dask.distributed import Client, LocalCluster; client = Client(LocalCluster())), "
        "pass executor=... (any object with submit(), e.g. a concurrent.futures executor), "
        "or set one with rush_plan(executor=...)")


def slots(executor: Any) -> int | None:
    """How many tasks the engine runs at once, when it says."""
    scheduler_info = getattr(executor, "scheduler_info", None)
    if callable(scheduler_info):
        try:
            workers = scheduler_info()["workers"].values()
            return sum(int(w.get("nthreads", 1)) for w in workers)
        except Exception:  # an engine we cannot ask: no warning rather than a wrong one
            return None
    n = getattr(executor, "_max_workers", None)
    return n if isinstance(n, int) else None


def submit(executor: Any, network_id: str, worker_id: str, incarnation: str, args_id: str,
           config: RedisConfig, options: WorkerOptions, token: str) -> Any:
    """Submit one worker running start arguments ``args_id`` to the engine (``token``: its
    one-time launch token); returns its future. The config (password and secret included)
    travels as an argument of the task, by the engine's own channel."""
    # The one import inside a function that closes a circle (worker_process -> worker ->
    # controller -> pool -> here): the engine must be handed the worker's entry point,
    # which runs a RushWorker, which is a Rush, which starts workers through this module.
    from ..worker_process import run_remote_worker

    kwargs: dict[str, Any] = {}
    if type(executor).__module__.startswith("distributed"):
        kwargs = {"pure": False, "key": f"rush-worker-{worker_id}-{token[:8]}"}
    return executor.submit(run_remote_worker, network_id, worker_id, incarnation, config,
                           options, token, args_id, **kwargs)
