"""W5: the tools a user would pick instead, on the same trivial work.

- Optuna with its Redis journal storage (``JournalStorage(JournalRedisBackend(url))``),
  random sampler, a trivial objective; 1 process, and 2 processes sharing the study.
- RQ: enqueue N trivial jobs, then a burst ``Worker`` (forks a work horse per job) or a
  burst ``SimpleWorker`` (runs jobs in-process) drains the queue. The worker's fixed
  start/stop cost (a burst on the empty queue) is subtracted.
- Dask distributed: ``LocalCluster(n_workers=2, threads_per_worker=1)``,
  ``client.map`` of a trivial function (Dask does not use Redis).

Every peer that talks to Redis is given the private server's URL, never 6379.
A peer that is not installed is skipped (its keys are absent from the results).
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import time
import uuid
from typing import Any

import rush


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def trivial(x: int) -> int:
    """The job/task of every peer."""
    return x + 1


def _objective(trial: Any) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    return x * x


# -- Optuna ----------------------------------------------------------------------------

def _optuna_storage(url: str):
    from optuna.storages import JournalStorage

    try:
        from optuna.storages.journal import JournalRedisBackend  # optuna >= 4.0
    except ImportError:
        from optuna.storages import JournalRedisStorage as JournalRedisBackend  # optuna 3.x

    return JournalStorage(JournalRedisBackend(url, prefix="bench-optuna"))


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _optuna_child(url: str, study_name: str, n_trials: int, go, ready, results) -> None:
    import optuna

    _quiet_optuna()
    study = optuna.load_study(study_name=study_name, storage=_optuna_storage(url),
                              sampler=optuna.samplers.RandomSampler())
    ready.put(1)
    if not go.wait(120):
        results.put(None)
        return
    study.optimize(_objective, n_trials=n_trials)
    results.put(time.monotonic())


def _wait_ready(procs: list, ready, timeout: float) -> None:
    """One message per process on ``ready``; fail early if a process died."""
    import queue

    deadline = time.monotonic() + timeout
    got = 0
    while got < len(procs):
        try:
            ready.get(timeout=0.5)
            got += 1
        except queue.Empty:
            dead = [p.exitcode for p in procs if not p.is_alive()]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"Optuna child processes did not get ready "
                                   f"(exit codes {dead})") from None


def optuna_trials(url: str, n_trials: int, processes: int) -> float:
    """Seconds per trial with ``processes`` processes sharing one study."""
    import optuna

    _quiet_optuna()
    name = f"bench-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=_optuna_storage(url),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    if processes == 1:
        study.optimize(_objective, n_trials=5)  # warm-up: imports, first log reads
        t0 = time.monotonic()
        study.optimize(_objective, n_trials=n_trials)
        return (time.monotonic() - t0) / n_trials
    ctx = multiprocessing.get_context("spawn")
    go, ready, results = ctx.Event(), ctx.Queue(), ctx.Queue()
    per = n_trials // processes
    procs = [ctx.Process(target=_optuna_child, args=(url, name, per, go, ready, results))
             for _ in range(processes)]
    for p in procs:
        p.start()
    try:
        _wait_ready(procs, ready, timeout=120)
        t0 = time.monotonic()
        go.set()
        ends = [results.get(timeout=600) for _ in procs]
        if None in ends:
            raise RuntimeError("an Optuna child process never got the start signal")
        return (max(ends) - t0) / (per * processes)
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
                p.join()


# -- RQ ----------------------------------------------------------------------------------

def rq_jobs(config: rush.RedisConfig, n_jobs: int, simple: bool) -> dict[str, float]:
    """Seconds per job: enqueue ``n_jobs`` then drain them with a burst worker."""
    import redis
    from rq import Queue, SimpleWorker, Worker

    conn = redis.Redis(host=config.host, port=config.port)
    q = Queue(f"bench-{uuid.uuid4().hex[:8]}", connection=conn)
    cls = SimpleWorker if simple else Worker
    logging.getLogger("rq.worker").setLevel(logging.WARNING)
    try:
        # A burst worker has a fixed cost (registration, ~1 s joining its pub/sub thread
        # at teardown): measured on the empty queue and subtracted, in RQ's favour.
        t0 = time.perf_counter()
        cls([q], connection=conn).work(burst=True, logging_level="WARNING")
        fixed = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(n_jobs):
            q.enqueue(trivial, i)
        t1 = time.perf_counter()
        worker = cls([q], connection=conn)
        worker.work(burst=True, logging_level="WARNING")
        t2 = time.perf_counter()
        if len(q) != 0:
            raise RuntimeError(f"RQ left {len(q)} jobs in the queue")
        return {"enqueue_s": (t1 - t0) / n_jobs, "total_s": (t2 - t0 - fixed) / n_jobs,
                "fixed_s": fixed}
    finally:
        q.empty()
        conn.close()


# -- Dask ----------------------------------------------------------------------------------

def dask_map(n_tasks: int) -> float:
    """Seconds per task of ``client.map(trivial, range(n))`` on a 2-worker LocalCluster."""
    from dask.distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.gather(client.map(trivial, range(10), key=[f"warm-{i}" for i in range(10)]))
        t0 = time.perf_counter()
        futures = client.map(trivial, range(n_tasks))
        client.gather(futures)
        return (time.perf_counter() - t0) / n_tasks


# -- all of them -------------------------------------------------------------------------

def run(config: rush.RedisConfig, placement, core: int | None, n: dict[str, int],
        log=print) -> dict[str, Any]:
    """Every installed peer. In-process ones (Optuna 1p, RQ) run pinned like W1/W2;
    multi-process ones (Optuna 2p, Dask) run unpinned."""
    out: dict[str, Any] = {}
    url = config.url
    in_process = []
    if installed("optuna"):
        in_process.append(("peer_optuna_1p_us",
                           lambda: optuna_trials(url, n["optuna"], processes=1)))
    if installed("rq"):
        def rq_simple() -> float:
            r = rq_jobs(config, n["rq_simple"], simple=True)
            out["peer_rq_simple_enqueue_us"] = r["enqueue_s"] * 1e6
            out["peer_rq_worker_fixed_s"] = r["fixed_s"]
            return r["total_s"]

        def rq_fork() -> float:
            r = rq_jobs(config, n["rq_fork"], simple=False)
            out["peer_rq_burst_enqueue_us"] = r["enqueue_s"] * 1e6
            return r["total_s"]

        in_process += [("peer_rq_simple_us", rq_simple), ("peer_rq_burst_us", rq_fork)]
    if core is not None:
        placement.pin(core)
    for key, fn in in_process:
        log(f"  {key} ...")
        out[key] = fn() * 1e6
    placement.unpin()
    if installed("optuna"):
        log("  peer_optuna_2p_us ...")
        out["peer_optuna_2p_us"] = optuna_trials(url, n["optuna"], processes=2) * 1e6
    if installed("distributed"):
        log("  peer_dask_us ...")
        out["peer_dask_us"] = dask_map(n["dask"]) * 1e6
    out["peers_skipped"] = [m for m in ("optuna", "rq", "distributed") if not installed(m)]
    return out
