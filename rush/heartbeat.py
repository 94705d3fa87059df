"""The heartbeat process of a worker: ``python -m rush.heartbeat``.

It keeps the worker's heartbeat key alive (expiry ``heartbeat_expire``), blocks on the
worker's kill channel between refreshes, SIGKILLs the worker when a kill signal arrives,
and exits when the worker dies (parent-death signal plus a check of its parent pid), so
a dead worker's key expires and the controller finds it lost.

The Redis URL comes in the environment (``RUSH_REDIS_URL``), never on the command line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Sequence

from ._process import die_with_parent


def start_heartbeat(network_id: str, worker_id: str, url: str, period: float,
                    expire: float) -> subprocess.Popen:
    """Start the heartbeat process of this (worker) process."""
    env = dict(os.environ, RUSH_REDIS_URL=url)
    # the parent-death signal follows the thread that forks (a Dask task runs in a thread):
    # only ask for it from the main thread; the loop's parent-pid check covers the rest
    in_main = threading.current_thread() is threading.main_thread()
    return subprocess.Popen(
        [sys.executable, "-m", "rush.heartbeat", network_id, worker_id, str(os.getpid()),
         repr(float(period)), repr(float(expire))],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        preexec_fn=(lambda: die_with_parent(signal.SIGTERM)) if in_main else None,
        close_fds=True)


def run(network_id: str, worker_id: str, worker_pid: int, period: float, expire: float) -> int:
    """The heartbeat loop; returns the exit code."""
    from .config import RedisConfig
    from .connection import connect
    from .keys import NetworkKeys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    keys = NetworkKeys(network_id)
    client = connect(RedisConfig(url=os.environ["RUSH_REDIS_URL"]))
    beat, kill = keys.heartbeat(worker_id), keys.kill(worker_id)
    try:
        while os.getppid() == worker_pid:
            client.set(beat, worker_pid, px=int(expire * 1000))
            if _wait_for_kill(client, kill, period, worker_pid):
                os.kill(worker_pid, signal.SIGKILL)
                return 0
        return 0
    finally:
        _forget(client, beat)  # the worker is gone: let the controller see it at once
        client.close()


def _wait_for_kill(client, kill: str, period: float, worker_pid: int) -> bool:
    """Block on the kill channel for ``period`` s, in short blocks (one BLPOP longer than
    the client's socket timeout would time out and be retried, and the key never
    refreshed), checking between them that the worker lives. True when a kill came."""
    from .waiting import block_slices

    for block in block_slices(period):
        if client.blpop([kill], timeout=block) is not None:
            return True
        if os.getppid() != worker_pid:
            return False
    return False


def _forget(client, beat: str) -> None:
    try:
        client.delete(beat)
    except Exception:  # best effort: the key expires anyway
        pass


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    network_id, worker_id, pid, period, expire = args
    return run(network_id, worker_id, int(pid), float(period), float(expire))


if __name__ == "__main__":
    sys.exit(main())
