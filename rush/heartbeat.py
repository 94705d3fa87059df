"""The heartbeat process of a worker: ``python -m rush.heartbeat``.

It keeps the worker's heartbeat key alive (expiry ``heartbeat_expire``), blocks on the
worker's kill channel between refreshes, SIGKILLs the worker when a kill signal arrives,
and exits when the worker dies (parent-death signal plus a check of its parent pid), so
a dead worker's key expires and the controller finds it lost.

It beats for one incarnation of the worker id: when the worker was found lost and its id
started anew, the old heartbeat learns it at its next beat ("stale"), ends its own
worker and exits, touching nothing of the new incarnation; kill signals name the
incarnation they are for. When the network vanished ("gone"), it just exits.

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
import time
from typing import Sequence

from ._process import die_with_parent, kill_tree
from .config import RedisConfig, config_environment, config_from_environment
from .connection import connect
from .keys import NetworkKeys
from .layer import Epoch
from .registry import Beat, WorkerRegistry
from .scripts import Scripts
from .store import TaskStore
from .waiting import MAX_BLOCK_SECONDS, MIN_BLOCK_SECONDS


def start_heartbeat(network_id: str, worker_id: str, incarnation: str, epoch: str,
                    config: RedisConfig, period: float, expire: float) -> subprocess.Popen:
    """Start the heartbeat process of this (worker) process."""
    env = dict(os.environ, **config_environment(config))
    # the parent-death signal follows the thread that forks (a Dask task runs in a thread):
    # only ask for it from the main thread; the loop's parent-pid check covers the rest
    in_main = threading.current_thread() is threading.main_thread()
    return subprocess.Popen(
        [sys.executable, "-m", "rush.heartbeat", network_id, worker_id, incarnation, epoch,
         str(os.getpid()), repr(float(period)), repr(float(expire))],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        preexec_fn=(lambda: die_with_parent(signal.SIGTERM)) if in_main else None,
        # outside the worker's process group: a kill of the group must not take the
        # heartbeat down before it has deleted its key
        close_fds=True, start_new_session=True)


class Heartbeat:
    """The heartbeat of one incarnation of a worker (the worker process is our parent)."""

    def __init__(self, registry: WorkerRegistry, store: TaskStore, worker_id: str,
                 incarnation: str, worker_pid: int, period: float, expire: float) -> None:
        self.registry = registry
        self.store = store
        self.worker_id = worker_id
        self.incarnation = incarnation
        self.worker_pid = worker_pid
        self.period = period
        self.expire = expire

    def run(self) -> int:
        """Beat until the worker dies, a kill signal for it comes, a task of it runs past
        its timeout, or it is replaced. Each period is one request: the block on the kill
        channel and, the moment it ends, the next beat."""
        status = "ok"
        try:
            beat = self._beat()
            status = beat.status
            while status == "ok" and self._worker_alive():
                status = self._enforce_timeouts(beat.due)
                if status != "ok":
                    break
                status, beat = self._wait_for_kill(self._until_next_deadline(beat.due))
            if status == "timed out":
                kill_tree(self.worker_pid)
            if status == "stale":
                # this incarnation was found lost and its id started anew: end it, and
                # touch nothing of the new one
                kill_tree(self.worker_pid)
            return 0
        finally:
            if status in ("ok", "killed", "timed out"):  # the controller sees it at once
                self._forget()

    def _worker_alive(self) -> bool:
        return os.getppid() == self.worker_pid

    def _beat(self) -> Beat:
        return self.registry.beat(self.worker_id, self.incarnation, self.expire)

    def _enforce_timeouts(self, due: tuple[str, float] | None) -> str:
        """"timed out" when a task of the worker runs past its deadline (``due``, as the
        latest beat read it): the worker is marked lost now, in the step that fails (or
        requeues) the task."""
        if due is None or due[1] > 0:
            return "ok"
        key = due[0]
        raw = self.store.read_hashes([key], ["timeout"])[0][0]
        if raw is None:
            return "ok"
        settled = self.store.stop_timed_out(self.worker_id, key, float(raw), self.incarnation)
        return "ok" if settled is None else "timed out"

    def _until_next_deadline(self, due: tuple[str, float] | None) -> float:
        """How long to wait for a kill signal: one period, or less when a task's deadline
        comes first."""
        return self.period if due is None or due[1] <= 0 else min(self.period, due[1])

    def _wait_for_kill(self, seconds: float) -> tuple[str, Beat]:
        """Block on the kill channel for ``seconds``, in short blocks (one BLPOP longer
        than the client's socket timeout would time out and be retried, and the key never
        refreshed), checking between them that the worker lives; the last block carries
        the next beat. Returns "ok" to go on (with that beat), "killed", or what a beat
        says when a signal for another incarnation came."""
        no_beat = Beat("ok", None)  # only returned when the loop ends without beating
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            block = min(max(remaining, MIN_BLOCK_SECONDS), MAX_BLOCK_SECONDS)
            beat: Beat | None = None
            if remaining <= MAX_BLOCK_SECONDS:
                target, beat = self.registry.wait_then_beat(
                    self.worker_id, self.incarnation, block, self.expire)
            else:
                target = self.registry.wait_for_kill(self.worker_id, block)
            if target == self.incarnation:
                kill_tree(self.worker_pid)
                return "killed", no_beat
            if target is not None:  # for another incarnation: which one is stale?
                beat = beat or self._beat()
                if beat.status == "stale":
                    self.registry.resend_kill(self.worker_id, target)
                if beat.status != "ok":
                    return beat.status, beat
            if beat is not None:
                return beat.status, beat
            if not self._worker_alive():
                return "ok", no_beat

    def _forget(self) -> None:
        try:
            self.registry.heartbeat("forget", self.worker_id, self.incarnation)
        except Exception:  # best effort: the key expires anyway
            pass


def main(argv: Sequence[str] | None = None) -> int:
    network_id, worker_id, incarnation, epoch, pid, period, expire = \
        list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config = config_from_environment()
    if config is None:
        print("rush.heartbeat: RUSH_REDIS_URL is not set", file=sys.stderr)
        return 2
    client = connect(config)
    keys, scripts, shared = NetworkKeys(network_id), Scripts(client), Epoch(epoch)
    registry = WorkerRegistry(client, keys, scripts, config)
    store = TaskStore(client, keys, scripts, config)
    registry.shared_epoch = store.shared_epoch = shared
    try:
        return Heartbeat(registry, store, worker_id, incarnation, int(pid), float(period),
                         float(expire)).run()
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
