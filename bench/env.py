"""The measuring environment: a private redis-server, CPU pinning, round-trip time and
CPU accounting from /proc (Linux)."""

from __future__ import annotations

import datetime
import os
import platform
import socket
import statistics
import time
from typing import Any

import redis

import rush


def all_cores() -> set[int]:
    """Every CPU this machine has (not just the ones this process may use now)."""
    return set(range(os.cpu_count() or 1))


def default_core() -> int:
    """The core W1-W3 run on: the last one (core 0 tends to take more interrupts)."""
    return max(all_cores())


class Placement:
    """Pins this process and the redis-server child together, or lets them float."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.pinned_core: int | None = None

    def pin(self, core: int) -> None:
        """This process and redis-server on the same ``core``."""
        os.sched_setaffinity(0, {core})
        os.sched_setaffinity(self.server_pid, {core})
        self.pinned_core = core

    def unpin(self) -> None:
        """Both free to run on every core (children started afterwards inherit this)."""
        os.sched_setaffinity(0, all_cores())
        os.sched_setaffinity(self.server_pid, all_cores())
        self.pinned_core = None

    def describe(self) -> str:
        if self.pinned_core is None:
            return "unpinned (scheduler's choice)"
        return f"bench process and redis-server pinned to core {self.pinned_core}"


def ping_rtt_us(config: rush.RedisConfig, n: int = 2000, reps: int = 3) -> float:
    """Median round trip of a PING, in microseconds: the physical unit of every figure."""
    client = redis.Redis(host=config.host, port=config.port)
    try:
        client.ping()
        samples = []
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(n):
                client.ping()
            samples.append((time.perf_counter() - t0) / n * 1e6)
        return statistics.median(samples)
    finally:
        client.close()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def machine_cpu_busy() -> tuple[float, float]:
    """(busy seconds, total seconds) summed over all cores since boot (from /proc/stat)."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)  # idle + iowait
    return (sum(parts) - idle) / ticks, sum(parts) / ticks


class CpuMeter:
    """CPU use of redis-server (fraction of one core) and of the machine (fraction of all
    cores) between ``start()`` and ``stop()``."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._redis0 = process_cpu_seconds(self.server_pid)
        self._busy0, self._total0 = machine_cpu_busy()

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._t0
        redis_cpu = process_cpu_seconds(self.server_pid) - self._redis0
        busy, total = machine_cpu_busy()
        return {"redis_cpu_frac": redis_cpu / wall if wall > 0 else 0.0,
                "machine_cpu_frac": (busy - self._busy0) / max(total - self._total0, 1e-9)}


def machine_info() -> dict[str, Any]:
    """Date, host and software versions for the report."""
    import pandas as pd

    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), platform.processor())
    except OSError:
        model = platform.processor()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "cpu_model": model,
        "cores": os.cpu_count(),
        "loadavg_at_start": os.getloadavg()[0],
        "python": platform.python_version(),
        "redis_py": redis.__version__,
        "pandas": pd.__version__,
        "rush": rush.__version__,
    }
