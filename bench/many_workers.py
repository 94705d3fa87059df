"""W7: a network of 1,000 registered workers with heartbeats.

The workers are registered through the worker registry exactly as a worker process
registers itself (``register_worker.lua``, heartbeat key set in the same step, this
host's identity, the pid of a live process). Their heartbeats are the library's own
``rush.heartbeat.Heartbeat`` loop, at the real period (1 s, expiry 3 s, the default of
remote workers), but 1,000 of them run as threads of one helper process (each with its
own Redis connection) rather than as 1,000 processes: on 2 cores the processes' start-up
alone would take minutes. Redis sees the same clients and the same requests either way.
Two things differ from a real heartbeat process, both outside Redis: a thread's "is my
worker alive" check is a flag, and a kill signal ends the thread instead of SIGKILLing a
worker process.

Figures (controller in this process, pandas imported first; medians of ``reps``):

- ``w7_worker_info_ms``: ``Rush.worker_info`` (goal <= 50 ms);
- ``w7_detect_lost_ms``: ``detect_lost_workers()`` while every worker beats (goal <= 50 ms);
- ``w7_stop_workers_ms``: ``stop_workers(type="kill")`` of all of them (goal <= 200 ms):
  once while every heartbeat runs, then on fresh registrations (heartbeat keys, no
  beats), median of up to 5;
- ``w7_reset_ms``: ``reset()`` of a network of 1,000 running workers, median of up to 5
  (goal <= 200 ms);
- ``w7_heartbeat_redis_cpu_pct``: redis-server CPU (``INFO cpu``, user + sys) while the
  heartbeats run, minus the same server idle over an equal window, in % of one core
  (goal <= 2 %). redis-server is pinned to one core, the heartbeat host to the other(s).
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Callable

import redis

import rush
from bench import env
from rush.config import config_environment, config_from_environment

#: Heartbeat period and expiry of the simulated workers (remote workers' default).
PERIOD_S = 1.0
EXPIRE_S = 3.0


def _redis_cpu_s(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def redis_cpu_pct(client: redis.Redis, seconds: float) -> float:
    """redis-server CPU over the next ``seconds``, in % of one core (from ``INFO cpu``)."""
    c0, t0 = _redis_cpu_s(client), time.monotonic()
    time.sleep(seconds)  # the window being measured
    return 100 * (_redis_cpu_s(client) - c0) / (time.monotonic() - t0)


def register(ctrl: rush.Rush, n: int, pid: int) -> list[str]:
    """Register ``n`` running workers with a heartbeat on ``ctrl``'s network, as worker
    processes do; ``pid`` is the process they are said to run in. Returns id:incarnation
    pairs."""
    registry = ctrl._registry
    hostname = socket.gethostname()
    pairs = []
    for i in range(n):
        worker_id, incarnation = f"w7-{i:05d}-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
        registry.register(worker_id, incarnation, pid, hostname, EXPIRE_S, remote=False)
        pairs.append(f"{worker_id}:{incarnation}")
    return pairs


class HeartbeatHost:
    """A helper process running one ``Heartbeat`` thread per worker."""

    def __init__(self, config: rush.RedisConfig) -> None:
        env = dict(os.environ, **config_environment(config))
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.many_workers"], env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self, network_id: str, epoch: str, pairs: list[str], timeout: float = 120) -> None:
        """Start the heartbeats; returns once each has beaten once."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{network_id} {epoch} {' '.join(pairs)}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()  # "ready" once every thread has beaten
        if line.strip() != "ready":
            raise RuntimeError(f"the heartbeat host did not start: {line!r}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)


def _timed(fn: Callable[[], Any], reps: int) -> tuple[float, list[float]]:
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), samples


def _stop_all(ctrl: rush.Rush, n: int) -> float:
    """Milliseconds of ``stop_workers(type="kill")`` of the network's ``n`` workers."""
    t0 = time.perf_counter()
    ctrl.stop_workers(type="kill")
    elapsed = (time.perf_counter() - t0) * 1000
    if ctrl.n_killed_workers != n:
        raise RuntimeError(f"W7: only {ctrl.n_killed_workers} of {n} workers were killed")
    return elapsed


def run(config: rush.RedisConfig, server_pid: int, n: int, window_s: float, reps: int,
        log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """The W7 figures (see the module docstring). redis-server is pinned to one core and
    the heartbeats to the others while it runs."""
    import pandas  # noqa: F401 - imported first: worker_info's goal is without the import

    client = redis.Redis(host=config.host, port=config.port)
    out: dict[str, Any] = {"w7_workers": n}
    host = HeartbeatHost(config)
    core = env.default_core()
    others = env.all_cores() - {core} or {core}
    os.sched_setaffinity(server_pid, {core})
    os.sched_setaffinity(host.pid, others)
    ctrl = rush.rsh(f"bench-w7-{uuid.uuid4().hex[:8]}", config=config)
    try:
        t0 = time.perf_counter()
        pairs = register(ctrl, n, host.pid)
        out["w7_register_s"] = time.perf_counter() - t0
        idle = redis_cpu_pct(client, window_s)
        log(f"W7: {n} workers registered in {out['w7_register_s']:.1f} s; starting heartbeats")
        host.start(ctrl.network_id, ctrl._store.epoch, pairs)
        time.sleep(PERIOD_S)  # let the first beats (all at once) spread out
        beating = redis_cpu_pct(client, window_s)
        out["w7_redis_cpu_idle_pct"] = idle
        out["w7_redis_cpu_beating_pct"] = beating
        out["w7_heartbeat_redis_cpu_pct"] = max(beating - idle, 0.0)
        ctrl.worker_info  # warm: the first call imports what pandas imports lazily
        out["w7_worker_info_ms"], s_info = _timed(lambda: ctrl.worker_info, reps)
        assert len(ctrl.worker_info) == n
        out["w7_detect_lost_ms"], s_detect = _timed(ctrl.detect_lost_workers, reps)
        if ctrl.n_running_workers != n:
            raise RuntimeError(f"W7: {n - ctrl.n_running_workers} workers were found lost")
        stops = [_stop_all(ctrl, n)]  # the first while every heartbeat runs
        resets = []
        for _ in range(min(reps, 5) - 1):  # more samples: fresh workers, keys but no beats
            ctrl.reset()
            register(ctrl, n, host.pid)
            stops.append(_stop_all(ctrl, n))
        for _ in range(min(reps, 5)):  # reset() of a network of n running workers
            ctrl.reset()
            register(ctrl, n, host.pid)
            t0 = time.perf_counter()
            ctrl.reset()
            resets.append((time.perf_counter() - t0) * 1000)
        out["w7_stop_workers_ms"] = statistics.median(stops)
        out["w7_reset_ms"] = statistics.median(resets)
        out["_samples_w7"] = {"worker_info_ms": s_info, "detect_lost_ms": s_detect,
                              "stop_workers_ms": stops, "reset_ms": resets}
        return out
    finally:
        host.stop()
        os.sched_setaffinity(server_pid, env.all_cores())
        ctrl.reset()
        ctrl.close()
        client.close()


# -- the heartbeat host (python -m bench.many_workers, run by HeartbeatHost) ---------------


def _host_main() -> int:
    from rush.connection import connect
    from rush.heartbeat import Heartbeat
    from rush.keys import NetworkKeys
    from rush.layer import Epoch
    from rush.registry import WorkerRegistry
    from rush.scripts import Scripts
    from rush.store import TaskStore
    import rush.heartbeat as heartbeat_module

    config = config_from_environment()
    assert config is not None
    network_id, epoch, *pairs = sys.stdin.readline().split()
    stops: dict[int, threading.Event] = {}

    def end_thread(pid: int) -> None:  # a kill signal ends the thread, not a process
        stops[pid].set()

    heartbeat_module.kill_tree = end_thread

    class ThreadHeartbeat(Heartbeat):
        def _worker_alive(self) -> bool:
            return not stops[self.worker_pid].is_set()

    started = threading.Barrier(len(pairs) + 1)

    def beat(index: int, worker_id: str, incarnation: str) -> None:
        client = connect(config)
        keys, scripts = NetworkKeys(network_id), Scripts(client)
        registry = WorkerRegistry(client, keys, scripts, config)
        store = TaskStore(client, keys, scripts, config)
        registry.shared_epoch = store.shared_epoch = Epoch(epoch)
        hb = ThreadHeartbeat(registry, store, worker_id, incarnation, index, PERIOD_S, EXPIRE_S)
        hb._beat()
        started.wait()
        try:
            hb.run()
        finally:
            client.close()

    threads = []
    for index, pair in enumerate(pairs):
        worker_id, incarnation = pair.split(":")
        stops[index] = threading.Event()
        threads.append(threading.Thread(target=beat, args=(index, worker_id, incarnation),
                                        daemon=True))
        threads[-1].start()
    started.wait()
    print("ready", flush=True)
    sys.stdin.read()  # until the bench closes our stdin or kills us
    return 0


if __name__ == "__main__":
    sys.exit(_host_main())
