"""Decentralized Optuna on rush: ``rush.optuna.optimize(objective, n_trials, n_workers=4)``.

Every worker runs its own in-memory Optuna study (``NetworkStorage``), kept in sync with
the others through the rush network: no shared database, no lock, no central scheduler.
Needs the ``optuna`` extra (``pip install 'rush-redis[optuna]'``); ``import rush`` does not
import this package.
"""

from __future__ import annotations

from .optimizer import optimize
from .storage import NetworkStorage, WorkerDone
from .worker import optuna_worker

__all__ = ["NetworkStorage", "WorkerDone", "optimize", "optuna_worker"]
