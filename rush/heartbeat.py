"""The heartbeat process of a worker: ``python -m rush.heartbeat``.

It keeps the worker's heartbeat key alive (expiry ``heartbeat_expire``), blocks on the
worker's kill channel between refreshes, SIGKILLs the worker when a kill signal arrives,
and exits when the worker dies (parent-death signal plus a check of its parent pid), so
a dead worker's key expires and the controller finds it lost.

It also enforces task timeouts with no controller: it wakes at the earliest deadline of
the worker's running tasks (at the latest one period after the task started), marks the
worker lost in the step that fails (or requeues) the task, and SIGKILLs the worker.

Where Redis is comes in the environment (``config_environment``), never on the command
line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Sequence

from ._process import die_with_parent
from .config import RedisConfig, config_environment, config_from_environment
from .connection import connect
from .keys import NetworkKeys
from .registry import WorkerRegistry
from .scripts import Scripts
from .store import TaskStore
from .waiting import block_slices


def start_heartbeat(network_id: str, worker_id: str, config: RedisConfig, period: float,
                    expire: float) -> subprocess.Popen:
    """Start the heartbeat process of this (worker) process."""
    env = dict(os.environ, **config_environment(config))
    # the parent-death signal follows the thread that forks (a Dask task runs in a thread):
    # only ask for it from the main thread; the loop's parent-pid check covers the rest
    in_main = threading.current_thread() is threading.main_thread()
    return subprocess.Popen(
        [sys.executable, "-m", "rush.heartbeat", network_id, worker_id, str(os.getpid()),
         repr(float(period)), repr(float(expire))],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        preexec_fn=(lambda: die_with_parent(signal.SIGTERM)) if in_main else None,
        close_fds=True)


def run(registry: WorkerRegistry, store: TaskStore, worker_id: str, worker_pid: int,
        period: float, expire: float) -> int:
    """The heartbeat loop; returns the exit code."""
    try:
        while os.getppid() == worker_pid:
            registry.beat(worker_id, worker_pid, expire)
            wait = period
            due = store.next_deadline(worker_id)
            if due is not None:
                key, seconds = due
                if seconds <= 0 and _time_out(store, worker_id, key):
                    os.kill(worker_pid, signal.SIGKILL)
                    return 0
                if seconds > 0:  # else a stale entry, now dropped: look again next period
                    wait = min(period, seconds)
            if _wait_for_kill(registry, worker_id, wait, worker_pid):
                os.kill(worker_pid, signal.SIGKILL)
                return 0
        return 0
    finally:
        _forget(registry, worker_id)  # the worker is gone: let the controller see it at once


def _time_out(store: TaskStore, worker_id: str, key: str) -> bool:
    """Mark the worker lost if task ``key`` still runs on it past its deadline (the task
    fails or is retried); True when it did."""
    raw = store.read_hashes([key], ["timeout"])[0][0]
    return raw is not None and store.stop_timed_out(worker_id, key, float(raw)) is not None


def _wait_for_kill(registry: WorkerRegistry, worker_id: str, period: float,
                   worker_pid: int) -> bool:
    """Block on the kill channel for ``period`` s, in short blocks (one BLPOP longer than
    the client's socket timeout would time out and be retried, and the key never
    refreshed), checking between them that the worker lives. True when a kill came."""
    for block in block_slices(period):
        if registry.wait_for_kill(worker_id, block):
            return True
        if os.getppid() != worker_pid:
            return False
    return False


def _forget(registry: WorkerRegistry, worker_id: str) -> None:
    try:
        registry.forget_heartbeat(worker_id)
    except Exception:  # best effort: the key expires anyway
        pass


def main(argv: Sequence[str] | None = None) -> int:
    network_id, worker_id, pid, period, expire = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config = config_from_environment()
    if config is None:
        print("rush.heartbeat: RUSH_REDIS_URL is not set", file=sys.stderr)
        return 2
    client = connect(config)
    keys, scripts = NetworkKeys(network_id), Scripts(client)
    registry = WorkerRegistry(client, keys, scripts, config)
    store = TaskStore(client, keys, scripts, config)
    try:
        return run(registry, store, worker_id, int(pid), float(period), float(expire))
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
