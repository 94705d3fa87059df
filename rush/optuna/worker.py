"""The loop every ``rush.optuna`` worker runs: ``study.optimize`` on the worker's synced
study, whose every ``ask()`` pops a trial slot, until no slot is left."""

from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

import optuna

from .storage import NetworkStorage, WorkerDone


def optuna_worker(rush: Any, objective: Callable[[optuna.Trial], Any], slots: Sequence[str],
                  directions: Sequence[Literal["minimize", "maximize"]],
                  sampler: optuna.samplers.BaseSampler | None,
                  pruner: optuna.pruners.BasePruner | None, study_name: str) -> None:
    """Run trials of the network's study in this worker until every slot is taken, the
    worker is told to terminate, or the sampler stops the study.

    A trial whose objective raises is FAIL (its task fails with the exception as the
    condition) and the worker goes on, as ``study.optimize(catch=(Exception,))`` does.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if sampler is not None:
        sampler.reseed_rng()  # every worker got a copy of one sampler: no shared stream
    storage = NetworkStorage(rush, slots)
    study = optuna.create_study(storage=storage, sampler=sampler, pruner=pruner,
                                directions=list(directions), study_name=study_name)

    def evaluate(trial: optuna.Trial) -> Any:
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except BaseException as e:  # Optuna fails the trial (and re-raises a KeyboardInterrupt)
            storage.error = e
            raise

    try:
        study.optimize(evaluate, catch=(Exception,))
    except WorkerDone:
        pass
