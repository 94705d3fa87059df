"""O1 (formerly W6): rush.optuna against Optuna's own way to share a study between processes.

Per-trial overhead: ``RandomSampler`` on a trivial objective (one float param), run by
the same number of processes (1 and 2) each way:

- rush.optuna: ``rush.optuna.optimize(..., n_workers=p)`` (p local worker processes);
- Optuna's ``JournalStorage`` on Redis (``JournalRedisBackend``, the same private
  redis-server) and on a file (``JournalFileBackend``), p spawned processes each running
  ``study.optimize`` on the shared study (a fresh journal per run).

The figure is the same for all: time from the moment every process runs trials to the
last trial's end, per trial, from the trials' own timestamps. The first trial of each
process waits at a barrier until all processes got there (process start-up and imports
are not counted) and is left out.

Sync cost: a worker's ``NetworkStorage`` that holds 10,000 trials reads 10, 100, 1,000
new ones; the cost grows with the new trials, not with the 10,000 (a cold sync of all
10,000 is shown next to it).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from typing import Any, Callable

import rush
from bench.timing import alternate, median, ratio

_passed_barrier = False


def _quiet() -> None:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def trivial(folder: str, processes: int, trial: Any) -> float:
    """x**2; the first trial of each process waits until ``processes`` processes run."""
    global _passed_barrier
    x = trial.suggest_float("x", -5.0, 5.0)
    if not _passed_barrier:
        open(os.path.join(folder, str(os.getpid())), "w").close()
        deadline = time.monotonic() + 120
        while len(os.listdir(folder)) < processes and time.monotonic() < deadline:
            time.sleep(0.001)  # other processes are still importing
        _passed_barrier = True
        trial.set_user_attr("barrier", True)
    return x * x


def steady_us_per_trial(trials: list) -> float:
    """Microseconds per trial from the end of the last barrier trial to the last trial's
    end, over the trials that started in that window."""
    barrier_end = max(t.datetime_complete for t in trials if t.user_attrs.get("barrier"))
    steady = [t for t in trials if t.datetime_start >= barrier_end]
    end = max(t.datetime_complete for t in steady)
    return (end - barrier_end).total_seconds() / len(steady) * 1e6


# -- rush.optuna --------------------------------------------------------------------

def rush_optuna_us(config: rush.RedisConfig, n_trials: int, processes: int) -> float:
    import optuna

    import rush.optuna

    _quiet()
    with tempfile.TemporaryDirectory() as folder:
        study = rush.optuna.optimize(_partial(folder, processes), n_trials=n_trials,
                                     n_workers=processes,
                                     sampler=optuna.samplers.RandomSampler(), config=config)
    return steady_us_per_trial(study.trials)


def _partial(folder: str, processes: int) -> Callable[[Any], float]:
    import functools

    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers may lack bench/
    return functools.partial(trivial, folder, processes)


# -- Optuna's journal storage -------------------------------------------------------

def _journal(spec: tuple[str, str], name: str):
    """The journal storage of study ``name``: ``("redis", url)`` or ``("file", folder)``;
    a log of its own, so no run replays another run's log."""
    from optuna.storages import JournalStorage

    kind, where = spec
    if kind == "redis":
        try:
            from optuna.storages.journal import JournalRedisBackend  # optuna >= 4.0
        except ImportError:
            from optuna.storages import JournalRedisStorage as JournalRedisBackend
        return JournalStorage(JournalRedisBackend(where, prefix=name))
    try:
        from optuna.storages.journal import JournalFileBackend  # optuna >= 4.0
    except ImportError:
        from optuna.storages import JournalFileStorage as JournalFileBackend
    return JournalStorage(JournalFileBackend(os.path.join(where, f"{name}.log")))


def _journal_child(spec: tuple[str, str], study_name: str, folder: str, processes: int,
                   n_trials: int) -> None:
    import optuna

    _quiet()
    study = optuna.load_study(study_name=study_name, storage=_journal(spec, study_name),
                              sampler=optuna.samplers.RandomSampler())
    study.optimize(lambda trial: trivial(folder, processes, trial), n_trials=n_trials)


def journal_us(spec: tuple[str, str], n_trials: int, processes: int) -> float:
    """Per-trial microseconds of ``processes`` processes sharing one journal study."""
    import optuna

    _quiet()
    name = f"bench-{uuid.uuid4().hex[:8]}"
    storage = _journal(spec, name)
    optuna.create_study(study_name=name, storage=storage)
    ctx = multiprocessing.get_context("spawn")
    share, rest = divmod(n_trials, processes)
    with tempfile.TemporaryDirectory() as folder:
        procs = [ctx.Process(target=_journal_child,
                             args=(spec, name, folder, processes, share + (i < rest)))
                 for i in range(processes)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(600)
        failed = [p.exitcode for p in procs if p.exitcode != 0]
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    if failed:
        raise RuntimeError(f"Optuna journal processes failed (exit codes {failed})")
    return steady_us_per_trial(optuna.load_study(study_name=name, storage=storage).trials)


# -- sync cost ----------------------------------------------------------------------

def sync_cost(config: rush.RedisConfig, n_held: int, new: tuple[int, ...]) -> dict[str, float]:
    """Milliseconds of ``NetworkStorage.sync()`` bringing in ``k`` new trials for each ``k``
    in ``new``, once it holds ``n_held``; and of the cold sync of those ``n_held``."""
    import optuna

    import rush.optuna

    _quiet()
    network = f"bench-sync-{uuid.uuid4().hex[:8]}"
    total = n_held + sum(new)
    with tempfile.TemporaryDirectory() as folder:
        study = rush.optuna.optimize(_partial(folder, 2), n_trials=total, n_workers=2,
                                     sampler=optuna.samplers.RandomSampler(), config=config,
                                     network_id=network)
    slots = [t.system_attrs["rush_key"] for t in study.trials]
    out: dict[str, float] = {}
    with rush.rsh(network, config=config) as controller:
        try:
            storage = rush.optuna.NetworkStorage(controller, slots)
            optuna.create_study(storage=storage)
            t0 = time.perf_counter()
            storage.sync(n_held)
            out["optuna_sync_cold_ms"] = (time.perf_counter() - t0) * 1e3
            held = n_held
            for k in new:
                t0 = time.perf_counter()
                read = storage.sync(held + k)
                out[f"optuna_sync_new_{k}_ms"] = (time.perf_counter() - t0) * 1e3
                assert read == k, (read, k)
                held += k
        finally:
            controller.reset()
    return out


# -- all of it ----------------------------------------------------------------------

def run(config: rush.RedisConfig, n_trials: int, reps: int, n_held: int,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Overhead per trial with 1 and 2 processes (medians of ``reps`` alternating
    repetitions) and the sync cost."""
    out: dict[str, Any] = {}
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for p in (1, 2):
            log(f"  rush.optuna / journal-redis / journal-file, {p} process(es), "
                f"{reps} x {n_trials} trials")
            got = alternate({
                "rush": lambda: rush_optuna_us(config, n_trials, p),
                "journal_redis": lambda: journal_us(("redis", config.url), n_trials, p),
                "journal_file": lambda: journal_us(("file", folder), n_trials, p),
            }, reps)
            suffix = "" if p == 1 else "_2"
            for name, values in got.items():
                samples[f"optuna_{name}{suffix}"] = values
            out[f"optuna_overhead_us_per_trial{suffix}"] = median(got["rush"])
            out[f"optuna_journal_redis_us_per_trial{suffix}"] = median(got["journal_redis"])
            out[f"optuna_journal_file_us_per_trial{suffix}"] = median(got["journal_file"])
            out[f"optuna_ratio_vs_journal_redis{suffix}"] = ratio(
                median(got["journal_redis"]), median(got["rush"]))
            out[f"optuna_ratio_vs_journal_file{suffix}"] = ratio(
                median(got["journal_file"]), median(got["rush"]))
    log(f"  sync cost after {n_held:,} trials")
    new = (10, 100, 1000) if n_held >= 1000 else (1, 10, 100)
    sync = sync_cost(config, n_held, new)
    out.update(sync)
    out["optuna_sync_held"] = n_held
    out["optuna_sync_10k_new_ms"] = sync[f"optuna_sync_new_{new[0]}_ms"]
    out["optuna_sync_new_per_trial_us"] = {
        k: sync[f"optuna_sync_new_{k}_ms"] / k * 1e3 for k in new}
    out.update({f"_samples_{k}": v for k, v in samples.items()})
    return out
