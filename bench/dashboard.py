"""The dashboard at scale (``rush dashboard``, the ``dashboard`` extra).

- ``dashboard_load_100k_s``: from starting a dashboard (nothing cached) on a network of
  100,000 finished tasks until a page has its full data: the HTML, the full state
  (counters, workers, the trace of every task) and the first page of tasks, over HTTP
  from a real uvicorn. ``dashboard_load_100k_warm_s``: the same for a second page while
  the network is watched already. (plotly.js, 4.6 MB, is cached by the browser.)
- ``dashboard_update_ms``: one live update after 1,000 new finished tasks on that network:
  the watch's refresh (reads the new tasks only) plus the delta a page gets.
  ``dashboard_update_at_1k_ms``: the same on a network of 1,000 tasks (the cost follows
  the new tasks, not the network's size).
- ``dashboard_redis_cpu_overhead_pct``: extra redis-server CPU per task while a page
  watches a W4 run (2 local workers): runs watched and unwatched alternate, and Redis's
  CPU seconds per finished task are compared. A watching page is an event-stream client
  plus a request for the page of tasks every second, as the page's script does. On two
  busy cores this A/B figure is noisy, so the cost is also counted directly:
  ``dashboard_redis_read_us_per_task`` is redis-server's CPU per new task of the live
  updates above (each refresh: its few round trips and the 1,000 new tasks), and
  ``dashboard_redis_read_pct_of_w4`` that cost against a W4 task's. Redis's CPU is its
  main thread's, read with nanosecond precision from ``/proc/<pid>/schedstat``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any, Callable

import rush
from bench.env import process_cpu_seconds
from bench.scaling import CHECK_EVERY, RUN_DEADLINE_S, _register_by_value, w4_loop
from bench.timing import median
from bench.workloads import _fill_finished

#: Workers of the watched W4 runs.
W4_WORKERS = 2


def redis_cpu_seconds(pid: int) -> float:
    """CPU time of redis-server's main thread (it runs every command), in ns precision
    from ``/proc/<pid>/schedstat``; the process's clock ticks where that is missing."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return process_cpu_seconds(pid)


def installed() -> str | None:
    """Why the dashboard cannot be measured here (None: it can)."""
    try:
        import rush.dashboard

        rush.dashboard.require()
        import httpx  # noqa: F401
    except ImportError as e:
        return str(e)
    return None


def _network(tag: str) -> str:
    return f"bench-dash-{tag}-{uuid.uuid4().hex[:8]}"


def _page_data(server: Any, network_id: str) -> tuple[float, int]:
    """Seconds until a page has its data (HTML, full state, first page of tasks), and
    the number of tasks in its trace."""
    import httpx

    base = server.url.split("/networks/")[0]
    params = {"token": server.token}
    n = -1
    t0 = time.perf_counter()
    with httpx.Client(timeout=120) as client:
        for path in ("", "/api/networks/" + network_id, f"/api/networks/{network_id}/tasks"):
            response = client.get(base + (path or f"/networks/{network_id}"), params=params)
            response.raise_for_status()
            if path.startswith("/api/networks/") and not path.endswith("tasks"):
                n = len(response.json()["trace"]["values"])
    return time.perf_counter() - t0, n


def load(config: rush.RedisConfig, n: int, reps: int, log: Callable[[str], None]) -> dict[str, Any]:
    """``dashboard_load_100k_s`` (cold) and ``..._warm_s``; keeps the network for
    ``update``."""
    import rush.dashboard

    worker = rush.RushWorker(_network("load"), config=config)
    t0 = time.perf_counter()
    _fill_finished(worker, n)
    log(f"  filled {n:,} finished tasks in {time.perf_counter() - t0:.1f} s")
    cold, warm = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        with rush.dashboard.start(config, worker.network_id) as server:
            started = time.perf_counter() - t0
            seconds, got = _page_data(server, worker.network_id)
            if got != n:
                raise RuntimeError(f"the dashboard's trace has {got} tasks, expected {n}")
            cold.append(started + seconds)
            warm.append(_page_data(server, worker.network_id)[0])
    return {"worker": worker, "dashboard_n": n, "dashboard_load_100k_s": median(cold),
            "dashboard_load_100k_warm_s": median(warm),
            "_samples_dashboard_load_100k_s": cold, "_samples_dashboard_load_100k_warm_s": warm}


def update(config: rush.RedisConfig, worker: rush.RushWorker, n_new: int, reps: int,
           server_pid: int) -> tuple[list[float], float]:
    """Milliseconds of one refresh plus the delta of a page, after ``n_new`` new tasks;
    and redis-server's CPU per new task of those refreshes, in us."""
    from rush.dashboard.watch import NetworkWatch

    watch = NetworkWatch(worker.network_id, config, idle_seconds=0.0)  # its thread stays idle
    try:
        watch.refresh()
        version, _ = watch.message(None, None)
        samples = []
        redis_seconds = 0.0
        total = worker.n_finished_tasks
        for _ in range(reps):
            _fill_finished(worker, n_new, start=total)
            total += n_new
            redis0 = redis_cpu_seconds(server_pid)
            t0 = time.perf_counter()
            watch.refresh()
            version, text = watch.message(version, None)
            samples.append((time.perf_counter() - t0) * 1000)
            redis_seconds += redis_cpu_seconds(server_pid) - redis0
            delta = json.loads(text)
            if delta["type"] != "delta" or len(delta["trace"]["values"]) != n_new:
                raise RuntimeError("the dashboard's update is not the delta of the new tasks")
        return samples, redis_seconds / (reps * n_new) * 1e6
    finally:
        watch.close()


class _Page:
    """What a browser tab on the page does to the dashboard: follow the event stream,
    and ask for the first page of tasks every second."""

    def __init__(self, server: Any, network_id: str) -> None:
        self._base = server.url.split("/networks/")[0]
        self._params = {"token": server.token}
        self._network_id = network_id
        self._stop = threading.Event()
        self.first = threading.Event()
        self.updates = 0
        self._threads = [threading.Thread(target=self._follow, daemon=True),
                         threading.Thread(target=self._tasks, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _follow(self) -> None:
        import httpx

        url = f"{self._base}/api/networks/{self._network_id}/events"
        with httpx.stream("GET", url, params=self._params, timeout=None) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and '"version"' in line:
                    self.updates += 1
                    self.first.set()
                if self._stop.is_set():
                    return

    def _tasks(self) -> None:
        import httpx

        with httpx.Client(timeout=60) as client:
            while not self._stop.wait(1.0):
                client.get(f"{self._base}/api/networks/{self._network_id}/tasks",
                           params=self._params)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


def _w4_run(config: rush.RedisConfig, server_pid: int, target: int, watched: bool
            ) -> dict[str, float]:
    """One W4 run of ``W4_WORKERS`` workers: redis-server CPU seconds per task, tasks/s."""
    import rush.dashboard

    ctrl = rush.rsh(_network("w4"), config=config)
    go_key = ctrl.keys.prefix + "bench_go"
    server = page = None
    try:
        ctrl.start_local_workers(w4_loop, n_workers=W4_WORKERS, go_key=go_key, target=target,
                                 xs={"x1": 0.5, "x2": 1.5}, ys={"y": 2.0},
                                 check_every=CHECK_EVERY, deadline_s=RUN_DEADLINE_S)
        ctrl.wait_for_workers(W4_WORKERS, timeout=120)
        if watched:
            server = rush.dashboard.start(config, ctrl.network_id)
            page = _Page(server, ctrl.network_id)
            if not page.first.wait(60):
                raise RuntimeError("the watching page got no update")
        redis0 = redis_cpu_seconds(server_pid)
        t0 = time.perf_counter()
        ctrl.connector.set(go_key, 1)
        deadline = t0 + RUN_DEADLINE_S
        done = 0
        while time.perf_counter() < deadline:
            done = ctrl.n_finished_tasks
            if done >= target:
                break
            time.sleep(0.01)  # poll the finished count, as W4 does
        elapsed = time.perf_counter() - t0
        redis_cpu = redis_cpu_seconds(server_pid) - redis0
        if done < target:
            raise RuntimeError(f"the W4 run finished only {done} of {target} tasks")
        if page is not None and page.updates < 2:
            raise RuntimeError("the watching page got no live update during the run")
        return {"redis_us_per_task": redis_cpu / done * 1e6, "tasks_per_s": done / elapsed}
    finally:
        if page is not None:
            page.close()
        if server is not None:
            server.stop()
        try:
            ctrl.stop_workers(type="kill")
        finally:
            ctrl.reset()
            ctrl.close()


def redis_overhead(config: rush.RedisConfig, server_pid: int, target: int, reps: int,
                   log: Callable[[str], None]) -> dict[str, Any]:
    """Watched and unwatched W4 runs, alternating; the extra Redis CPU per task."""
    _register_by_value()
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for rep in range(reps):
        for watched in ((False, True) if rep % 2 == 0 else (True, False)):
            runs[watched].append(_w4_run(config, server_pid, target, watched))
    plain = median([r["redis_us_per_task"] for r in runs[False]])
    seen = median([r["redis_us_per_task"] for r in runs[True]])
    rate_plain = median([r["tasks_per_s"] for r in runs[False]])
    rate_seen = median([r["tasks_per_s"] for r in runs[True]])
    log(f"  W4 x{W4_WORKERS}: redis {plain:.1f} us/task unwatched, {seen:.1f} watched")
    return {"dashboard_w4_redis_us_per_task": plain,
            "dashboard_w4_redis_us_per_task_watched": seen,
            "dashboard_redis_cpu_overhead_pct": (seen / plain - 1) * 100,
            "dashboard_w4_tasks_per_s": rate_plain,
            "dashboard_w4_tasks_per_s_watched": rate_seen,
            "_samples_dashboard_w4_redis_us_per_task":
                [r["redis_us_per_task"] for r in runs[False]],
            "_samples_dashboard_w4_redis_us_per_task_watched":
                [r["redis_us_per_task"] for r in runs[True]]}


def run(config: rush.RedisConfig, server_pid: int, sizes: dict[str, Any],
        log: Callable[[str], None]) -> dict[str, Any]:
    """Every dashboard figure (``dashboard_skipped`` when the extra is missing)."""
    missing = installed()
    if missing is not None:
        return {"dashboard_skipped": missing}
    n, reps = sizes["dash_n"], sizes["dash_reps"]
    log(f"dashboard: page load on {n:,} finished tasks, {reps} reps")
    out = load(config, n, reps, log)
    worker = out.pop("worker")
    try:
        samples, read_us = update(config, worker, sizes["dash_incr"], sizes["dash_update_reps"],
                                  server_pid)
        out["dashboard_update_ms"] = median(samples)
        out["_samples_dashboard_update_ms"] = samples
        out["dashboard_redis_read_us_per_task"] = read_us
    finally:
        worker.reset()
        worker.close()
    small = rush.RushWorker(_network("small"), config=config)
    try:
        _fill_finished(small, sizes["dash_incr"])
        samples, _ = update(config, small, sizes["dash_incr"], sizes["dash_update_reps"],
                            server_pid)
        out["dashboard_update_at_1k_ms"] = median(samples)
    finally:
        small.reset()
        small.close()
    log(f"dashboard: Redis CPU of a watched W4 run ({W4_WORKERS} workers, "
        f"{sizes['dash_w4_n']:,} tasks, {sizes['dash_w4_reps']} reps each way)")
    out.update(redis_overhead(config, server_pid, sizes["dash_w4_n"], sizes["dash_w4_reps"], log))
    out["dashboard_redis_read_pct_of_w4"] = \
        100 * out["dashboard_redis_read_us_per_task"] / out["dashboard_w4_redis_us_per_task"]
    return out
