"""Optimization quality: does spreading TPE over rush workers cost anything?

TPE (``TPESampler(seed=s)``, Optuna's defaults otherwise) on Branin (2-D, minimum
0.397887) and Hartmann-6 (6-D, minimum -3.32237), for seeds 0..9: rush.optuna with 2
local workers against Optuna's own parallelism, ``study.optimize(n_jobs=2)`` (2 threads
on one in-memory study), and against 2 processes sharing a ``JournalStorage`` on a file
(Optuna's way to use two cores). Each evaluation sleeps 5 ms, standing in for a costly
objective, so that two evaluations run at once in every case. Every parallel sampler is
reseeded per process or thread (rush.optuna and the journal processes once, ``n_jobs``
before each trial), as Optuna does for ``n_jobs``. Reported: the median over seeds of the
best value after the same number of trials. Slow (minutes): ``python -m bench
--optuna-quality``.
"""

from __future__ import annotations

import math
import multiprocessing
import statistics
import tempfile
import time
from typing import Any, Callable

import rush

EVAL_SECONDS = 0.005

_HARTMANN_ALPHA = (1.0, 1.2, 3.0, 3.2)
_HARTMANN_A = ((10, 3, 17, 3.5, 1.7, 8), (0.05, 10, 17, 0.1, 8, 14),
               (3, 3.5, 1.7, 10, 17, 8), (17, 8, 0.05, 10, 0.1, 14))
_HARTMANN_P = ((1312, 1696, 5569, 124, 8283, 5886), (2329, 4135, 8307, 3736, 1004, 9991),
               (2348, 1451, 3522, 2883, 3047, 6650), (4047, 8828, 8732, 5743, 1091, 381))


def branin(trial: Any) -> float:
    x1 = trial.suggest_float("x1", -5, 10)
    x2 = trial.suggest_float("x2", 0, 15)
    time.sleep(EVAL_SECONDS)
    return ((x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def hartmann6(trial: Any) -> float:
    x = [trial.suggest_float(f"x{i}", 0, 1) for i in range(6)]
    time.sleep(EVAL_SECONDS)
    return -sum(alpha * math.exp(-sum(a * (xj - p * 1e-4) ** 2 for a, xj, p in zip(row, x, prow)))
                for alpha, row, prow in zip(_HARTMANN_ALPHA, _HARTMANN_A, _HARTMANN_P))


PROBLEMS: dict[str, tuple[Callable[[Any], float], float]] = {
    "branin": (branin, 0.397887),
    "hartmann6": (hartmann6, -3.32237),
}


def best_rush(config: rush.RedisConfig, objective: Callable, n_trials: int, seed: int) -> float:
    import optuna

    import rush.optuna

    study = rush.optuna.optimize(objective, n_trials=n_trials, n_workers=2, config=config,
                                 sampler=optuna.samplers.TPESampler(seed=seed))
    return study.best_value


def best_threads(objective: Callable, n_trials: int, seed: int) -> float:
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials, n_jobs=2)
    return study.best_value


def _quartiles(values: list[float]) -> list[float]:
    q1, _, q3 = (statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1
                 else values * 3)
    return [round(q1, 4), round(q3, 4)]


def _journal_child(path: str, name: str, problem: str, n_trials: int, seed: int) -> None:
    import optuna

    from bench.optuna_overhead import _journal, _quiet

    _quiet()
    sampler = optuna.samplers.TPESampler(seed=seed)
    sampler.reseed_rng()
    study = optuna.load_study(study_name=name, storage=_journal(("file", path), name),
                              sampler=sampler)
    study.optimize(PROBLEMS[problem][0], n_trials=n_trials)


def best_journal(problem: str, n_trials: int, seed: int) -> float:
    """Two spawned processes, n_trials/2 each, on one journal file."""
    import optuna

    from bench.optuna_overhead import _journal

    name = f"quality-{problem}-{seed}"
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        storage = _journal(("file", folder), name)
        optuna.create_study(study_name=name, storage=storage)
        procs = [ctx.Process(target=_journal_child,
                             args=(folder, name, problem, n_trials // 2 + (i < n_trials % 2), seed))
                 for i in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(600)
        if any(p.exitcode != 0 for p in procs):
            raise RuntimeError("an Optuna journal process failed")
        return optuna.load_study(study_name=name, storage=storage).best_value


def run(config: rush.RedisConfig, trials: dict[str, int], seeds: int,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    import sys

    import cloudpickle
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers may lack bench/
    out: dict[str, Any] = {}
    for name, (objective, optimum) in PROBLEMS.items():
        n = trials[name]
        log(f"  {name}: {seeds} seeds x {n} trials, rush.optuna 2 workers / Optuna n_jobs=2 "
            "/ journal file 2 processes")
        on_rush, on_threads, on_journal = [], [], []
        for seed in range(seeds):
            on_rush.append(best_rush(config, objective, n, seed))
            on_threads.append(best_threads(objective, n, seed))
            on_journal.append(best_journal(name, n, seed))
        out[f"optuna_quality_{name}_trials"] = n
        out[f"optuna_quality_{name}_optimum"] = optimum
        out[f"optuna_quality_{name}_rush_median"] = statistics.median(on_rush)
        out[f"optuna_quality_{name}_njobs_median"] = statistics.median(on_threads)
        out[f"optuna_quality_{name}_rush_quartiles"] = _quartiles(on_rush)
        out[f"optuna_quality_{name}_njobs_quartiles"] = _quartiles(on_threads)
        out[f"optuna_quality_{name}_journal_median"] = statistics.median(on_journal)
        out[f"optuna_quality_{name}_journal_quartiles"] = _quartiles(on_journal)
        out[f"_samples_optuna_quality_{name}_journal"] = on_journal
        out[f"_samples_optuna_quality_{name}_rush"] = on_rush
        out[f"_samples_optuna_quality_{name}_njobs"] = on_threads
    return out
