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
import secrets
from typing import Any

from ..config import RedisConfig
from ..connection import connect
from ..keys import NetworkKeys
from ..worker_options import WorkerOptions

logger = logging.getLogger("rush")

#: Heartbeat period of remote workers when none is given (seconds; expiry 3 x period).
REMOTE_HEARTBEAT_PERIOD = 1.0
_TOKEN_TTL_SECONDS = 7 * 24 * 3600


def default_executor() -> Any:
    """The plan's executor, else the current Dask client; else a ``RuntimeError`` saying
    how to get one."""
    from ..plan import plan_value

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


def check_executor(executor: Any) -> Any:
    """An object with a callable ``submit``."""
    if not callable(getattr(executor, "submit", None)):
        raise TypeError(f"executor must have a submit(fn, *args, **kwargs) method, "
                        f"got {type(executor).__name__}")
    return executor


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


def with_heartbeat(options: WorkerOptions) -> WorkerOptions:
    """Remote workers run a heartbeat process by default (it is their kill channel)."""
    if options.heartbeat_period is not None:
        return options
    return WorkerOptions.checked(options.lgr_thresholds, options.lgr_buffer_size,
                                 REMOTE_HEARTBEAT_PERIOD, None, options.message_log,
                                 options.output_log)


def new_launch_token(client: Any, keys: NetworkKeys, worker_id: str) -> str:
    """Write a fresh one-time launch token for ``worker_id``."""
    token = secrets.token_hex(16)
    client.set(keys.launch(worker_id), token, ex=_TOKEN_TTL_SECONDS)
    return token


def submit(executor: Any, network_id: str, worker_id: str, config: RedisConfig,
           options: WorkerOptions, token: str) -> Any:
    """Submit one worker to the engine; returns its future."""
    kwargs: dict[str, Any] = {}
    if type(executor).__module__.startswith("distributed"):
        kwargs = {"pure": False, "key": f"rush-worker-{worker_id}-{token[:8]}"}
    return executor.submit(run_remote_worker, network_id, worker_id, config, options.kwargs(),
                           token, **kwargs)


def run_remote_worker(network_id: str, worker_id: str, config: RedisConfig,
                      options: dict[str, Any], token: str) -> str | None:
    """What the engine runs: consume the launch token, then ``start_worker``.

    Returns ``None`` without starting when the token was already used (an engine re-run).
    """
    from ..startup import start_worker

    client = connect(config)
    try:
        current = client.getdel(NetworkKeys(network_id).launch(worker_id))
    finally:
        client.close()
    if current is None or current.decode() != token:
        logging.getLogger("rush").warning(
            "worker %s: this launch was already used (an engine re-run?); not starting", worker_id)
        return None
    return start_worker(network_id, worker_id=worker_id, config=config, remote=True, **options)
