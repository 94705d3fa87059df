"""Example 2: Bayesian optimization with Optuna's TPE sampler on rush workers.

``rush.optuna.optimize`` runs an ordinary Optuna objective on several workers. Each worker
keeps its own Optuna study in memory, synced through Redis: it sees the trials the others
finished and the ones they are running (``constant_liar=True`` makes TPE avoid those), and
exactly ``n_trials`` trials run. The result is a plain ``optuna.Study``.

    python examples/optuna_tpe.py            # 4 workers, 200 trials
    python examples/optuna_tpe.py --quick    # 2 workers, 30 trials

Needs the optuna extra: ``pip install -e ".[optuna]"``.
"""

from __future__ import annotations

import argparse
import math
import time

import optuna

import rush.optuna


def objective(trial: optuna.Trial) -> float:
    """Branin, with a pause standing in for an expensive evaluation."""
    x1 = trial.suggest_float("x1", -5, 10)
    x2 = trial.suggest_float("x2", 0, 15)
    time.sleep(0.05)
    return ((x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 workers, 30 trials")
    args = p.parse_args(argv)
    n_workers, n_trials = (2, 30) if args.quick else (4, 200)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    # no network_id: a new network, deleted when optimize returns (its workers with it)
    study = rush.optuna.optimize(objective, n_trials=n_trials, n_workers=n_workers,
                                 sampler=optuna.samplers.TPESampler(constant_liar=True))
    df = study.trials_dataframe()
    print(f"{len(df)} trials on {df['system_attrs_rush_worker_id'].nunique()} workers")
    print(f"best value {study.best_value:.4f} (optimum 0.3979) at {study.best_params}")
    print(df.groupby("system_attrs_rush_worker_id")["duration"].agg(["count", "mean"]))


if __name__ == "__main__":
    main()
