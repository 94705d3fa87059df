"""W8: a network of 1,000,000 finished tasks (``n``; fewer with --quick).

- ``w8_fetch_1m_s``: ``fetch_finished_tasks()`` on a new controller (cold, every field).
- ``w8_floor_s``: the floor, the same data read and decoded without a DataFrame: the
  finished list, then pipelined HMGETs of every field (20,000 hashes per round trip,
  rush's own read chunk) and each payload unpickled (worker ids decoded); nothing kept.
  ``w8_fetch_1m_ratio_vs_floor`` = rush / floor, medians of alternating runs (goal <= 1.5).
- ``w8_fetch_1m_peak_mem_ratio``: peak memory of the fetch over the size of the DataFrame
  it returns (goal <= 2). Measured in a fresh process: its resident set just before the
  call is subtracted from its peak resident set during the call (``VmHWM``, reset
  through ``/proc/self/clear_refs`` first); the frame's size is
  ``memory_usage(deep=True)``.
- ``w8_reset_max_block_ms``: the longest command (slow log, every command over 1 ms) of
  ``reset()`` of the network while the server is otherwise idle (goal <= 100 ms);
  ``w8_reset_s`` its wall time.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
import uuid
from typing import Any, Callable

import redis

import rush
from bench.timing import alternate, median, ratio

FIELDS = ("xs", "ys", "xs_extra", "ys_extra", "worker_id", "condition")
CHUNK = 20_000


def fill(w: rush.RushWorker, n: int, batch: int = 5000) -> None:
    """``n`` finished tasks with xs, ys and worker_id, created in batches."""
    done = 0
    while done < n:
        m = min(batch, n - done)
        keys = w.push_running_tasks([{"x1": float(done + i), "x2": -float(i)} for i in range(m)])
        w.finish_tasks(keys, [{"y": float(i) * 0.5} for i in range(m)])
        done += m


def floor(client: redis.Redis, keys: Any) -> int:
    """Read and decode every finished task without building a frame; returns the count."""
    finished = client.lrange(keys.finished, 0, -1)
    prefix = keys.task_prefix.encode()
    loads = pickle.loads
    count = 0
    for at in range(0, len(finished), CHUNK):
        pipe = client.pipeline(transaction=False)
        for key in finished[at:at + CHUNK]:
            pipe.hmget(prefix + key, FIELDS)
        for xs, ys, xs_extra, ys_extra, worker_id, condition in pipe.execute():
            for raw in (xs, ys, xs_extra, ys_extra, condition):
                if raw is not None:
                    loads(raw)
            if worker_id is not None:
                worker_id.decode()
            count += 1
    return count


_MEMORY_CHILD = """
import json, sys
import pandas
import rush

def status(name):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024

ctrl = rush.Rush({network!r}, config=rush.RedisConfig(host={host!r}, port={port}))
ctrl.fetch_finished_tasks(fields=["xs"])  # warm: imports and first-call caches
ctrl.reset_cache()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak resident set starts again from here
before = status("VmRSS")
df = ctrl.fetch_finished_tasks()
peak = status("VmHWM")
print(json.dumps({{"rows": len(df), "before": before, "peak": peak,
                   "frame": int(df.memory_usage(deep=True).sum())}}))
"""


def peak_memory(config: rush.RedisConfig, network_id: str) -> dict[str, int]:
    """The fetch's memory, measured in a fresh process (see the module docstring)."""
    code = _MEMORY_CHILD.format(network=network_id, host=config.host, port=config.port)
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    return json.loads(done.stdout.strip().splitlines()[-1])


def reset_blocking(client: redis.Redis, ctrl: rush.Rush) -> tuple[float, float]:
    """(wall seconds of ``ctrl.reset()``, longest command in ms from the slow log)."""
    old = client.config_get("slowlog-*")
    client.config_set("slowlog-log-slower-than", 1000)
    client.config_set("slowlog-max-len", 100_000)
    client.slowlog_reset()
    try:
        t0 = time.perf_counter()
        ctrl.reset()
        wall = time.perf_counter() - t0
        entries = client.slowlog_get(100_000)
        longest = max((e["duration"] for e in entries), default=0) / 1000
    finally:
        for name, value in old.items():
            client.config_set(name, value)
    return wall, longest


def run(config: rush.RedisConfig, n: int, reps: int, log: Callable[[str], None] = lambda m: None
        ) -> dict[str, Any]:
    """The W8 figures (see the module docstring)."""
    client = redis.Redis(host=config.host, port=config.port)
    w = rush.RushWorker(f"bench-w8-{uuid.uuid4().hex[:8]}", config=config)
    try:
        t0 = time.perf_counter()
        fill(w, n)
        fill_s = time.perf_counter() - t0
        log(f"W8: {n:,} finished tasks made in {fill_s:.1f} s")

        def cold_rush() -> float:
            with rush.Rush(w.network_id, config=config) as ctrl:
                t0 = time.perf_counter()
                df = ctrl.fetch_finished_tasks()
                elapsed = time.perf_counter() - t0
            if len(df) != n:
                raise RuntimeError(f"W8 fetched {len(df)} rows, expected {n}")
            return elapsed

        def cold_floor() -> float:
            t0 = time.perf_counter()
            got = floor(client, w.keys)
            elapsed = time.perf_counter() - t0
            if got != n:
                raise RuntimeError(f"W8 floor read {got} tasks, expected {n}")
            return elapsed

        s = alternate({"rush": cold_rush, "floor": cold_floor}, reps)
        mem = peak_memory(config, w.network_id)
        log(f"W8: fetch {median(s['rush']):.2f} s, floor {median(s['floor']):.2f} s; "
            f"peak {(mem['peak'] - mem['before']) / 2**20:.0f} MiB for a frame of "
            f"{mem['frame'] / 2**20:.0f} MiB")
        ctrl = rush.Rush(w.network_id, config=config)
        reset_s, longest_ms = reset_blocking(client, ctrl)
        ctrl.close()
        return {
            "w8_n": n,
            "w8_fill_s": fill_s,
            "w8_fetch_1m_s": median(s["rush"]),
            "w8_floor_s": median(s["floor"]),
            "w8_fetch_1m_ratio_vs_floor": ratio(median(s["rush"]), median(s["floor"])),
            "w8_frame_mib": mem["frame"] / 2**20,
            "w8_peak_mem_mib": (mem["peak"] - mem["before"]) / 2**20,
            "w8_fetch_1m_peak_mem_ratio": ratio(mem["peak"] - mem["before"], mem["frame"]),
            "w8_reset_s": reset_s,
            "w8_reset_max_block_ms": longest_ms,
            "_samples_w8": s,
        }
    finally:
        w.reset()
        w.close()
        client.close()
