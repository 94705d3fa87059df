"""W4: local worker processes (``Rush.start_local_workers``) running the W1 loop.

Workers register, then wait for a start signal so that start-up is not counted in the
throughput; the controller times from the signal until ``target`` tasks are finished.
CPU use of redis-server and of the machine during that window tells which of the two
saturates.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import rush
from bench.env import CpuMeter

#: Each worker checks the finished count every this many tasks (overshoot <= this x n).
CHECK_EVERY = 50
#: Safety bound of one worker count's run.
RUN_DEADLINE_S = 300.0


def w4_loop(rush, go_key: str, target: int, xs: dict, ys: dict, check_every: int,
            deadline_s: float) -> None:
    """The W1 loop in a worker process: wait for ``go_key``, then push/finish until the
    network has ``target`` finished tasks (or the deadline passes)."""
    import time as _time

    deadline = _time.monotonic() + deadline_s
    client = rush.connector
    while not client.exists(go_key):
        if _time.monotonic() > deadline:
            return
        _time.sleep(0.001)  # the controller has not given the start signal yet
    while _time.monotonic() < deadline:
        for _ in range(check_every):
            keys = rush.push_running_tasks([xs])
            rush.finish_tasks(keys, [ys])
        if rush.n_finished_tasks >= target:
            return


def _register_by_value() -> None:
    """Workers may not have ``bench`` on their path: ship the loop by value."""
    import sys

    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def run_one(config: rush.RedisConfig, server_pid: int, n_workers: int, target: int
            ) -> dict[str, float]:
    """One worker count: start-up seconds, tasks/s and CPU use."""
    ctrl = rush.rsh(f"bench-w4-{uuid.uuid4().hex[:8]}", config=config)
    go_key = ctrl.keys.prefix + "bench_go"
    meter = CpuMeter(server_pid)
    try:
        t0 = time.perf_counter()
        ctrl.start_local_workers(w4_loop, n_workers=n_workers, go_key=go_key, target=target,
                                 xs={"x1": 0.5, "x2": 1.5}, ys={"y": 2.0},
                                 check_every=CHECK_EVERY, deadline_s=RUN_DEADLINE_S)
        ctrl.wait_for_workers(n_workers, timeout=120)
        startup = time.perf_counter() - t0
        meter.start()
        t1 = time.perf_counter()
        ctrl.connector.set(go_key, 1)
        deadline = t1 + RUN_DEADLINE_S
        done = 0
        while time.perf_counter() < deadline:
            done = ctrl.n_finished_tasks
            if done >= target:
                break
            time.sleep(0.01)  # poll the finished count; one LLEN per 10 ms
        elapsed = time.perf_counter() - t1
        cpu = meter.stop()
        if done < target:
            raise RuntimeError(f"W4 with {n_workers} workers finished only {done} of {target} "
                               f"tasks in {RUN_DEADLINE_S} s")
        return {"startup_s": startup, "tasks_per_s": done / elapsed, **cpu}
    finally:
        try:
            ctrl.stop_workers(type="kill")
        finally:
            ctrl.reset()
            ctrl.close()


def w4(config: rush.RedisConfig, server_pid: int, worker_counts: list[int], target: int
       ) -> dict[str, Any]:
    """Every worker count in turn; keys ``w4_tasks_per_s_<n>``, ``w4_startup_<n>_s``..."""
    if not hasattr(rush.Rush, "start_local_workers"):
        return {"w4_skipped": "rush.Rush.start_local_workers does not exist yet"}
    _register_by_value()
    out: dict[str, Any] = {"w4_target_tasks": target}
    for n in worker_counts:
        r = run_one(config, server_pid, n, target)
        out[f"w4_tasks_per_s_{n}"] = r["tasks_per_s"]
        out[f"w4_startup_{n}_s"] = r["startup_s"]
        out[f"w4_redis_cpu_{n}"] = r["redis_cpu_frac"]
        out[f"w4_machine_cpu_{n}"] = r["machine_cpu_frac"]
    return out
