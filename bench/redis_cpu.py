"""W6: redis-server CPU per task, and the one-round-trip worker steps (W1-step, W2-step).

The CPU figures come from ``INFO cpu`` (``used_cpu_sys + used_cpu_user``, the server's own
``getrusage``) of the bench's private server, read before and after each timed loop: the
work one task costs Redis, whatever else the machine runs. ``1e6 / µs per task`` is the
ceiling of tasks/s one Redis core could serve with that loop.

The loops, alternating, each on a fresh network (set up and deleted outside the timed part):

- ``w1_two_calls``: ``push_running_tasks([xs])`` + ``finish_tasks(keys, [ys])`` (W1);
- ``w1_step``: ``finish_and_push_running_tasks(keys, [ys], [xs])``, one call per task;
- ``w1_bare``: the bare two-round-trip floor of W1 (``bench.bare``, rush's scripts by hand);
- ``w2_two_calls``, ``w2_step``, ``w2_bare``: the same for the queue loop (W2: ``push_tasks``
  of n tasks, then ``pop_task`` + ``finish_tasks``, or ``finish_and_pop_task``).

``w1_step_ratio_vs_bare`` is the wall time per task of ``w1_step`` over ``w1_bare``.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import redis

import rush
from bench.bare import Bare
from bench.timing import alternate, median, paired_ratio, ratio
from bench.workloads import XS, YS, _net

LOOPS = ("w1_two_calls", "w1_step", "w1_bare", "w2_two_calls", "w2_step", "w2_bare")


class RedisCpu:
    """CPU seconds redis-server used so far, from its ``INFO cpu``."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def seconds(self) -> float:
        info = self.client.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def _w1_two_calls(w: rush.RushWorker, n: int) -> None:
    for _ in range(n):
        keys = w.push_running_tasks([XS])
        w.finish_tasks(keys, [YS])


def _w1_step(w: rush.RushWorker, n: int) -> None:
    keys = w.push_running_tasks([XS])
    for _ in range(n - 1):
        keys = w.finish_and_push_running_tasks(keys, [YS], [XS])
    w.finish_tasks(keys, [YS])


def _w2_two_calls(ctrl: rush.Rush, w: rush.RushWorker, n: int) -> None:
    ctrl.push_tasks([XS] * n)
    for _ in range(n):
        task = w.pop_task()
        w.finish_tasks([task["key"]], [YS])


def _w2_step(ctrl: rush.Rush, w: rush.RushWorker, n: int) -> None:
    ctrl.push_tasks([XS] * n)
    task = w.pop_task()
    while task is not None:
        task = w.finish_and_pop_task(task["key"], [YS], timeout=0)


class _Loops:
    """Each loop on a fresh network, timed: wall seconds per task (returned) and Redis CPU
    seconds per task (kept in ``cpu``)."""

    def __init__(self, config: rush.RedisConfig, n: int) -> None:
        self.config, self.n = config, n
        self.client = redis.Redis(host=config.host, port=config.port)
        self.meter = RedisCpu(self.client)
        self.cpu: dict[str, list[float]] = {name: [] for name in LOOPS}

    def _timed(self, name: str, body: Callable[[], None]) -> float:
        c0 = self.meter.seconds()
        t0 = time.perf_counter()
        body()
        elapsed = time.perf_counter() - t0
        self.cpu[name].append((self.meter.seconds() - c0) / self.n)
        return elapsed / self.n

    def rush(self, name: str, loop: Callable[..., None], queue: bool) -> float:
        w = rush.RushWorker(_net(name), config=self.config)
        ctrl = rush.Rush(w.network_id, config=self.config) if queue else None
        try:
            args = (ctrl, w) if queue else (w,)
            elapsed = self._timed(name, lambda: loop(*args, self.n))
            if w.n_finished_tasks != self.n or w.n_running_tasks or w.n_queued_tasks:
                raise RuntimeError(f"W6 {name}: expected {self.n} finished tasks")
            return elapsed
        finally:
            if ctrl is not None:
                ctrl.close()
            w.reset()
            w.close()

    def bare(self, name: str, queue: bool) -> float:
        b = Bare(self.client, _net(name), "bare_worker_00000000")
        try:
            if queue:
                return self._timed(name, lambda: (b.w2_push(self.n, XS), b.w2_drain(self.n, YS)))
            return self._timed(name, lambda: b.w1(self.n, XS, YS))
        finally:
            if self.client.llen(b.finished) != self.n:
                raise RuntimeError(f"W6 {name}: expected {self.n} finished tasks")
            b.delete()

    def close(self) -> None:
        self.client.close()


def run(config: rush.RedisConfig, n: int, reps: int) -> dict[str, Any]:
    """The six loops, alternating ``reps`` times; keys ``w6_*``, ``w1_step_*``,
    ``w2_step_*``."""
    loops = _Loops(config, n)
    try:
        s = alternate({
            "w1_two_calls": lambda: loops.rush("w1_two_calls", _w1_two_calls, queue=False),
            "w1_step": lambda: loops.rush("w1_step", _w1_step, queue=False),
            "w1_bare": lambda: loops.bare("w1_bare", queue=False),
            "w2_two_calls": lambda: loops.rush("w2_two_calls", _w2_two_calls, queue=True),
            "w2_step": lambda: loops.rush("w2_step", _w2_step, queue=True),
            "w2_bare": lambda: loops.bare("w2_bare", queue=True),
        }, reps)
    finally:
        loops.close()
    cpu_us = {name: median(v) * 1e6 for name, v in loops.cpu.items()}
    out: dict[str, Any] = {
        "w6_redis_cpu_us_w1": cpu_us["w1_step"],
        "w6_redis_cpu_us_w2": cpu_us["w2_step"],
        "w6_ceiling_tasks_per_s": 1e6 / max(cpu_us["w1_step"], cpu_us["w2_step"]),
    }
    for name in LOOPS:
        out[f"w6_redis_cpu_us_{name}"] = cpu_us[name]
        out[f"w6_ceiling_tasks_per_s_{name}"] = ratio(1e6, cpu_us[name])
    for w in ("w1", "w2"):
        step, two, bare = s[f"{w}_step"], s[f"{w}_two_calls"], s[f"{w}_bare"]
        out.update({
            f"{w}_step_us": median(step) * 1e6,
            f"{w}_two_calls_us": median(two) * 1e6,
            f"{w}_step_bare_us": median(bare) * 1e6,
            f"{w}_step_ratio_vs_bare": ratio(median(step), median(bare)),
            f"{w}_step_paired_ratio": paired_ratio(step, bare),
            f"{w}_step_ratio_vs_two_calls": ratio(median(step), median(two)),
        })
    out["_samples_w6"] = {name: [x * 1e6 for x in v] for name, v in s.items()}
    out["_samples_w6_redis_cpu"] = {name: [x * 1e6 for x in v] for name, v in loops.cpu.items()}
    return out


def per_task_from_fractions(results: dict[str, Any]) -> dict[str, float]:
    """Redis CPU µs per task of the workloads measured as a fraction of a core over a run
    (W4: ``w4_redis_cpu_<n>`` at ``w4_tasks_per_s_<n>``), as ``w6_redis_cpu_us_w4_<n>``."""
    out = {}
    for key, frac in results.items():
        if key.startswith("w4_redis_cpu_"):
            n = key.removeprefix("w4_redis_cpu_")
            rate = results.get(f"w4_tasks_per_s_{n}")
            if rate:
                out[f"w6_redis_cpu_us_w4_{n}"] = frac * 1e6 / rate
    return out
