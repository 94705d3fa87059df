"""W1-W3: rush in one process against the hand-written baseline of ``bench.bare``.

Every repetition runs on a fresh network (set up and deleted outside the timed part),
so both sides see collections of the same size. W1 and W2 also run rush with a network
secret (``rush_signed``: every payload signed and checked, see ``rush.serialization``),
alternating with the others, for the cost of signing (``w1_signed_ratio``, ...).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any, Callable

import redis

import rush
from bench.bare import Bare
from bench.env import process_cpu_seconds
from bench.timing import alternate, median, paired_ratio, ratio

XS = {"x1": 0.5, "x2": 1.5}
YS = {"y": 2.0}
#: The network secret of the signed contenders.
SECRET = "bench-network-secret"


def _net(tag: str) -> str:
    return f"bench-{tag}-{uuid.uuid4().hex[:8]}"


class _Side:
    """Fresh-network plumbing shared by the rush and bare contenders."""

    def __init__(self, config: rush.RedisConfig) -> None:
        self.config = config
        self.signed = replace(config, secret=SECRET)
        self.client = redis.Redis(host=config.host, port=config.port)

    def rush_worker(self, tag: str, signed: bool = False) -> rush.RushWorker:
        return rush.RushWorker(_net(tag), config=self.signed if signed else self.config)

    def bare(self, tag: str) -> Bare:
        return Bare(self.client, _net(tag), "bare_worker_00000000")

    def close(self) -> None:
        self.client.close()


class _Cpu:
    """CPU seconds per task of this process (client) and of redis-server, per contender:
    less noisy than wall time, and they say which side a difference comes from."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.client: dict[str, list[float]] = {}
        self.server: dict[str, list[float]] = {}

    def _server_s(self) -> float:
        return process_cpu_seconds(self.server_pid) if self.server_pid else 0.0

    def timed(self, name: str, n: int, setup: Callable[[], Any], body: Callable[[Any], None],
              teardown: Callable[[Any], None]) -> float:
        """Seconds per task of ``body(state)``; setup and teardown are not timed."""
        state = setup()
        try:
            r0, c0 = self._server_s(), time.process_time()
            t0 = time.perf_counter()
            body(state)
            elapsed = time.perf_counter() - t0
            self.client.setdefault(name, []).append((time.process_time() - c0) / n)
            self.server.setdefault(name, []).append((self._server_s() - r0) / n)
            return elapsed / n
        finally:
            teardown(state)

    def summary(self, prefix: str) -> dict[str, float]:
        out = {}
        for name, values in self.client.items():
            out[f"{prefix}_{name}_client_cpu_us"] = median(values) * 1e6
            if self.server_pid:
                out[f"{prefix}_{name}_redis_cpu_us"] = median(self.server[name]) * 1e6
        return out


def _drop_worker(w: rush.RushWorker) -> None:
    w.reset()
    w.close()


# -- W1 ------------------------------------------------------------------------------

def w1(config: rush.RedisConfig, n: int, reps: int, prefix: str = "w1",
       pipeline_variant: bool = True, server_pid: int | None = None) -> dict[str, Any]:
    """Decentralized loop: ``push_running_tasks([xs])`` then ``finish_tasks(keys, [ys])``."""
    side = _Side(config)
    cpu = _Cpu(server_pid)

    def rush_body(w: rush.RushWorker) -> None:
        for _ in range(n):
            keys = w.push_running_tasks([XS])
            w.finish_tasks(keys, [YS])

    contenders = {
        "rush": lambda: cpu.timed("rush", n, lambda: side.rush_worker("w1"), rush_body,
                                  _drop_worker),
        "bare": lambda: cpu.timed("bare", n, lambda: side.bare("w1"), lambda b: b.w1(n, XS, YS),
                                  Bare.delete),
        "rush_signed": lambda: cpu.timed("rush_signed", n,
                                         lambda: side.rush_worker("w1s", signed=True),
                                         rush_body, _drop_worker),
    }
    if pipeline_variant:
        contenders["bare_pipeline"] = lambda: cpu.timed(
            "bare_pipeline", n, lambda: side.bare("w1p"), lambda b: b.w1_pipeline(n, XS, YS), Bare.delete)
    try:
        s = alternate(contenders, reps)
    finally:
        side.close()
    out = {
        f"{prefix}_rush_us": median(s["rush"]) * 1e6,
        f"{prefix}_bare_us": median(s["bare"]) * 1e6,
        f"{prefix}_ratio_vs_bare": ratio(median(s["rush"]), median(s["bare"])),
        f"{prefix}_paired_ratio": paired_ratio(s["rush"], s["bare"]),
        **_signed(prefix, s),
        **cpu.summary(prefix),
        f"_samples_{prefix}": {k: [x * 1e6 for x in v] for k, v in s.items()},
    }
    if pipeline_variant:
        out[f"{prefix}_bare_pipeline_us"] = median(s["bare_pipeline"]) * 1e6
    return out


def _signed(prefix: str, s: dict[str, list[float]]) -> dict[str, float]:
    """The signed contender against rush without a secret, measured alternating with it."""
    return {
        f"{prefix}_signed_us": median(s["rush_signed"]) * 1e6,
        f"{prefix}_signed_ratio": ratio(median(s["rush_signed"]), median(s["rush"])),
        f"{prefix}_signed_paired_ratio": paired_ratio(s["rush_signed"], s["rush"]),
    }


# -- W2 ------------------------------------------------------------------------------

def w2(config: rush.RedisConfig, n: int, reps: int, server_pid: int | None = None
       ) -> dict[str, Any]:
    """Queue: ``push_tasks`` n tasks in one call, then n x (``pop_task`` + ``finish_tasks``)."""
    side = _Side(config)
    cpu = _Cpu(server_pid)
    push_share: dict[str, list[float]] = {"rush": [], "bare": [], "rush_signed": []}

    def rush_setup(signed: bool = False) -> tuple[rush.Rush, rush.RushWorker]:
        w = side.rush_worker("w2", signed)
        return rush.Rush(w.network_id, config=w.config), w

    def rush_body(state: tuple[rush.Rush, rush.RushWorker], name: str = "rush") -> None:
        ctrl, w = state
        t0 = time.perf_counter()
        ctrl.push_tasks([XS] * n)
        push_share[name].append(time.perf_counter() - t0)
        for _ in range(n):
            task = w.pop_task()
            w.finish_tasks([task["key"]], [YS])

    def rush_teardown(state: tuple[rush.Rush, rush.RushWorker]) -> None:
        ctrl, w = state
        if ctrl.n_queued_tasks or ctrl.n_finished_tasks != n:
            raise RuntimeError("W2 (rush) did not drain the queue")
        ctrl.close()
        _drop_worker(w)

    def bare_body(b: Bare) -> None:
        t0 = time.perf_counter()
        b.w2_push(n, XS)
        push_share["bare"].append(time.perf_counter() - t0)
        b.w2_drain(n, YS)

    def bare_teardown(b: Bare) -> None:
        if b.client.llen(b.queued) or b.client.llen(b.finished) != n:
            raise RuntimeError("W2 (bare) did not drain the queue")
        b.delete()

    try:
        s = alternate({
            "rush": lambda: cpu.timed("rush", n, rush_setup, rush_body, rush_teardown),
            "bare": lambda: cpu.timed("bare", n, lambda: side.bare("w2"), bare_body,
                                      bare_teardown),
            "rush_signed": lambda: cpu.timed(
                "rush_signed", n, lambda: rush_setup(signed=True),
                lambda state: rush_body(state, "rush_signed"), rush_teardown),
        }, reps)
    finally:
        side.close()
    return {
        "w2_rush_us": median(s["rush"]) * 1e6,
        "w2_bare_us": median(s["bare"]) * 1e6,
        "w2_ratio_vs_bare": ratio(median(s["rush"]), median(s["bare"])),
        "w2_paired_ratio": paired_ratio(s["rush"], s["bare"]),
        "w2_rush_push_us": median(push_share["rush"]) / n * 1e6,
        "w2_bare_push_us": median(push_share["bare"]) / n * 1e6,
        "w2_signed_push_us": median(push_share["rush_signed"]) / n * 1e6,
        **_signed("w2", s),
        **cpu.summary("w2"),
        "_samples_w2": {k: [x * 1e6 for x in v] for k, v in s.items()},
    }


# -- W3 ------------------------------------------------------------------------------

def _fill_finished(w: rush.RushWorker, n: int, batch: int = 1000, start: int = 0) -> None:
    """``n`` finished tasks with xs, ys and worker_id, created in batches."""
    done = 0
    while done < n:
        m = min(batch, n - done)
        xss = [{"x1": float(start + done + i), "x2": -float(i)} for i in range(m)]
        keys = w.push_running_tasks(xss)
        w.finish_tasks(keys, [{"y": float(i) * 0.5} for i in range(m)])
        done += m


def _w3_signed(config: rush.RedisConfig, n: int, reps: int, plain_network: str
               ) -> dict[str, Any]:
    """Cold ``fetch_finished_tasks()`` of ``n`` tasks on a network with a secret (each of
    the 2n payloads checked before it is unpickled), alternating with the plain network."""
    signed = replace(config, secret=SECRET)
    w = rush.RushWorker(_net("w3s"), config=signed)
    try:
        _fill_finished(w, n)

        def cold(network_id: str, cfg: rush.RedisConfig) -> float:
            with rush.Rush(network_id, config=cfg) as ctrl:
                t0 = time.perf_counter()
                df = ctrl.fetch_finished_tasks()
                elapsed = time.perf_counter() - t0
            if len(df) < n:
                raise RuntimeError(f"W3 fetched {len(df)} rows, expected {n}")
            return elapsed * n / len(df)  # the plain network has the incremental tasks too

        s = alternate({"plain": lambda: cold(plain_network, config),
                       "signed": lambda: cold(w.network_id, signed)}, reps)
        return {"w3_signed_cold_s": median(s["signed"]),
                "w3_signed_ratio": ratio(median(s["signed"]), median(s["plain"])),
                "w3_signed_paired_ratio": paired_ratio(s["signed"], s["plain"])}
    finally:
        w.reset()
        w.close()


def w3(config: rush.RedisConfig, n: int, reps: int, n_incr: int = 1000) -> dict[str, Any]:
    """Fetch: ``fetch_finished_tasks()`` of ``n`` finished tasks on a new controller (cold),
    then after ``n_incr`` more (incremental); floor = pipelined HMGET + unpickle + frame."""
    client = redis.Redis(host=config.host, port=config.port)
    w = rush.RushWorker(_net("w3"), config=config)
    controllers: list[rush.Rush] = []
    try:
        t0 = time.perf_counter()
        _fill_finished(w, n)
        fill_s = time.perf_counter() - t0
        floor = Bare(client, w.network_id, w.worker_id)

        def cold_rush() -> float:
            ctrl = rush.Rush(w.network_id, config=config)  # a new controller: empty cache
            t0 = time.perf_counter()
            df = ctrl.fetch_finished_tasks()
            elapsed = time.perf_counter() - t0
            if len(df) != n:
                raise RuntimeError(f"W3 fetched {len(df)} rows, expected {n}")
            controllers.append(ctrl)
            return elapsed

        def cold_floor() -> float:
            t0 = time.perf_counter()
            df = floor.fetch_floor()
            elapsed = time.perf_counter() - t0
            if len(df) != n:
                raise RuntimeError(f"W3 floor fetched {len(df)} rows, expected {n}")
            return elapsed

        def cold_floor_lua() -> float:
            t0 = time.perf_counter()
            df = floor.fetch_lua()
            elapsed = time.perf_counter() - t0
            if len(df) != n:
                raise RuntimeError(f"W3 Lua floor fetched {len(df)} rows, expected {n}")
            return elapsed

        s = alternate({"rush": cold_rush, "floor": cold_floor, "floor_lua": cold_floor_lua},
                      reps)

        # Incremental: the last cold controller holds the cache; add n_incr tasks, re-fetch.
        ctrl = controllers[-1]
        for old in controllers[:-1]:
            old.close()
        incr: list[float] = []
        incr_floor: list[float] = []
        total = n
        for rep in range(reps):
            _fill_finished(w, n_incr, start=total)
            t0 = time.perf_counter()
            df = ctrl.fetch_finished_tasks()
            incr.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            floor.fetch_floor(start=total)
            incr_floor.append(time.perf_counter() - t0)
            total += n_incr
            if len(df) != total:
                raise RuntimeError(f"W3 incremental fetched {len(df)} rows, expected {total}")
        ctrl.close()
        cold = median(s["rush"])
        return {
            **_w3_signed(config, n, reps, w.network_id),
            "w3_n": n,
            "w3_fill_s": fill_s,
            "w3_cold_100k_s": cold,
            "w3_floor_s": median(s["floor"]),
            "w3_cold_ratio_vs_floor": ratio(cold, median(s["floor"])),
            "w3_paired_ratio": paired_ratio(s["rush"], s["floor"]),
            "w3_floor_lua_s": median(s["floor_lua"]),
            "w3_cold_ratio_vs_floor_lua": ratio(cold, median(s["floor_lua"])),
            "w3_incremental_1k_s": median(incr),
            "w3_incremental_floor_1k_s": median(incr_floor),
            "w3_incremental_pct_of_cold": 100 * ratio(median(incr), cold),
            "_samples_w3": {**s, "incremental": incr,
                            "incremental_floor": incr_floor},
        }
    finally:
        w.reset()
        w.close()
        client.close()
