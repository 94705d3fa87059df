"""``optimize``: run an Optuna objective on rush workers and return the study.

The controller queues ``n_trials`` empty *slots* (tasks) and starts the workers; each
worker pops a slot before each trial (``optuna_worker``), so exactly ``n_trials`` trials
run however many workers race for them. Meanwhile the controller only watches: it
sweeps for lost workers (their trial fails), starts them again while slots are left, and
stops handing out slots at ``timeout``. At the end it reads every trial once and builds
an in-memory ``optuna.Study`` with their real timings.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any, Callable, Literal, Sequence, cast

import optuna

import rush

from . import records
from .worker import optuna_worker

logger = logging.getLogger("rush")

WORKER_TYPES = ("local", "remote")
DIRECTIONS = ("minimize", "maximize")
Direction = Literal["minimize", "maximize"]
#: How often the controller sweeps for lost workers while trials run.
SWEEP_SECONDS = 0.5
#: Shortest round of the controller's watch loop (it wakes on every finished trial).
MIN_ROUND_SECONDS = 0.05
#: Lost workers started again in a row without any trial ending before giving up, per worker.
RESTARTS_WITHOUT_PROGRESS = 3
#: How long workers get to leave their loop after the last trial, before they are killed.
END_GRACE_SECONDS = 10.0
#: Slot hashes read per round trip when the study is built.
READ_CHUNK = 10_000


def optimize(objective: Callable[[optuna.Trial], Any], n_trials: int,
             n_workers: int | None = None, sampler: optuna.samplers.BaseSampler | None = None,
             pruner: optuna.pruners.BasePruner | None = None, direction: str | None = None,
             directions: Sequence[str] | None = None, network_id: str | None = None,
             config: rush.RedisConfig | None = None, worker_type: str = "local",
             executor: Any = None, timeout: float | None = None) -> optuna.Study:
    """Optimize ``objective`` with ``n_trials`` trials on ``n_workers`` rush workers.

    Each worker runs an ordinary Optuna study in memory, synced with the network: before
    each ask it reads the trials other workers started or finished since its last sync
    (running ones with their params, so ``constant_liar`` and similar avoid duplicates),
    and each reported value goes through Redis, so a pruner sees every worker's values.
    Exactly ``n_trials`` trials complete, are pruned or fail. A trial whose objective
    raises is FAIL and its worker goes on; a worker that dies fails its trial and is
    started again while trials are left. Each worker reseeds its copy of ``sampler``.

    ``direction`` (default ``"minimize"``) or ``directions`` (several objectives).
    ``n_workers`` defaults to the plan's. ``worker_type`` ``"local"`` starts processes on
    this machine, ``"remote"`` tasks of ``executor`` (a Dask client or any object with
    ``submit``; default: the plan's, else the current Dask client). After ``timeout``
    seconds no new trial starts; running ones finish. ``network_id=None`` runs on a new
    network deleted at the end; a given network must be empty, and keeps the trials.

    Returns an in-memory ``optuna.Study`` with every trial (params with distributions,
    values, state, user attrs, intermediate values, real start and end times); the
    system attributes ``rush_worker_id`` and ``rush_key`` say where each trial ran.
    """
    dirs = _check_arguments(objective, n_trials, n_workers, sampler, pruner, direction,
                            directions, worker_type, executor, timeout)
    n = n_workers if n_workers is not None else _planned_workers()
    controller = _empty_network(network_id, config)
    try:
        slots = controller.push_tasks([{}] * n_trials)
        kwargs: dict[str, Any] = dict(objective=objective, slots=slots, directions=dirs,
                                      sampler=sampler, pruner=pruner,
                                      study_name=controller.network_id)
        if worker_type == "local":
            ids = controller.start_local_workers(optuna_worker, n_workers=n, **kwargs)
        else:
            ids = controller.start_remote_workers(optuna_worker, n_workers=n, executor=executor,
                                                  **kwargs)
    except BaseException:
        controller.reset()  # the network was empty: it is again
        controller.close()
        raise
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        lost_at = _watch(controller, ids, n_trials, deadline)
        _let_workers_end(controller)
        return _build_study(controller, slots, dirs, sampler, pruner, lost_at)
    finally:
        if network_id is None:
            controller.reset()  # a network nobody else knows: kill its workers, delete it
        elif controller.n_running_workers:
            controller.stop_workers()  # interrupted: the trials so far stay in the network
        controller.close()


def _empty_network(network_id: str | None, config: rush.RedisConfig | None) -> rush.Rush:
    """A controller of the network, which must have neither tasks nor workers."""
    controller = rush.rsh(network_id, config=config)
    try:
        if controller.n_tasks or controller.n_workers:
            raise ValueError(f"network {controller.network_id!r} already has tasks or workers: "
                             "give a new network_id, or reset() that network first")
    except BaseException:
        controller.close()
        raise
    return controller


def _check_arguments(objective: Any, n_trials: Any, n_workers: Any, sampler: Any, pruner: Any,
                     direction: Any, directions: Any, worker_type: Any, executor: Any,
                     timeout: Any) -> list[Direction]:
    """Every argument checked before anything is written; returns the directions."""
    if not callable(objective):
        raise TypeError(f"objective must be callable, not {type(objective).__name__}")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int):
        raise TypeError(f"n_trials must be an int, not {type(n_trials).__name__}")
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if n_workers is not None:
        if isinstance(n_workers, bool) or not isinstance(n_workers, int):
            raise TypeError(f"n_workers must be an int, not {type(n_workers).__name__}")
        if n_workers < 1:
            raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    if sampler is not None and not isinstance(sampler, optuna.samplers.BaseSampler):
        raise TypeError(f"sampler must be an optuna sampler, not {type(sampler).__name__}")
    if pruner is not None and not isinstance(pruner, optuna.pruners.BasePruner):
        raise TypeError(f"pruner must be an optuna pruner, not {type(pruner).__name__}")
    if worker_type not in WORKER_TYPES:
        raise ValueError(f"worker_type must be 'local' or 'remote', got {worker_type!r}")
    if executor is not None:
        if worker_type != "remote":
            raise ValueError("executor is for worker_type='remote'")
        if not callable(getattr(executor, "submit", None)):
            raise TypeError("executor must have a submit(fn, *args, **kwargs) method")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
    return _directions(direction, directions)


def _directions(direction: Any, directions: Any) -> list[Direction]:
    if direction is not None and directions is not None:
        raise ValueError("give direction or directions, not both")
    if directions is None:
        dirs = ["minimize" if direction is None else direction]
    elif isinstance(directions, str) or not isinstance(directions, (list, tuple)):
        raise TypeError("directions must be a list such as ['minimize', 'maximize']")
    else:
        dirs = list(directions)
    if not dirs:
        raise ValueError("directions must not be empty")
    names: list[Direction] = []
    for d in dirs:
        name = d.name.lower() if isinstance(d, optuna.study.StudyDirection) else d
        if name not in DIRECTIONS:
            raise ValueError(f"a direction is 'minimize' or 'maximize', got {d!r}")
        names.append(cast(Direction, name))
    return names


def _planned_workers() -> int:
    planned = rush.rush_config().get("n_workers")
    if planned is None:
        raise ValueError("give n_workers, or set it with rush.rush_plan(n_workers=...)")
    return planned


# -- watching the run ---------------------------------------------------------------

def _watch(controller: rush.Rush, ids: list[str], n_trials: int, deadline: float | None
           ) -> dict[str, datetime.datetime]:
    """Until every slot is taken and every trial has ended: sweep for lost workers and
    start them again while slots are left; empty the queue at the deadline. Returns when
    each lost worker was found lost (the end time of its trial)."""
    lost_at: dict[str, datetime.datetime] = {}
    registered = False
    ended_before, misses = 0, 0
    while True:
        started = time.monotonic()
        # blocks until a trial finishes or a sweep is due (the frame is not needed)
        controller.fetch_new_tasks(fields="worker_id", timeout=SWEEP_SECONDS)
        registered = registered or _all_registered(controller, ids)
        lost = controller.detect_lost_workers()
        now = datetime.datetime.now()
        lost_at.update((w, now) for w in lost)
        queued, running = controller.n_queued_tasks, controller.n_running_tasks
        if queued == 0 and running == 0:
            return lost_at
        if deadline is not None and time.monotonic() > deadline:
            controller.empty_queue()  # no new trial starts; running ones finish
            deadline = None
            continue
        ended = n_trials - queued - running
        if ended > ended_before:
            ended_before, misses = ended, 0
        if lost and queued:
            misses += len(lost)
            if misses > RESTARTS_WITHOUT_PROGRESS * len(ids):
                raise RuntimeError(
                    f"workers were lost {misses} times in a row without a trial ending: "
                    "see the log of logger 'rush' for their stderr")
            controller.restart_workers(lost)
        elif registered and controller.n_running_workers == 0:
            # read again: a trial may have ended, and its worker with it, since the counts
            # above were read; no trial can start once every worker has ended
            running = controller.n_running_tasks
            if running:
                raise RuntimeError(f"every worker has ended, but {running} trial(s) never did")
            controller.empty_queue()  # every worker stopped its study (e.g. the sampler did)
        rest = MIN_ROUND_SECONDS - (time.monotonic() - started)
        if rest > 0:
            time.sleep(rest)  # wakes on every finished trial: at most 20 rounds a second


def _all_registered(controller: rush.Rush, ids: list[str]) -> bool:
    """Whether every worker has registered; raises if a local one died before it did."""
    try:
        controller.wait_for_workers(worker_ids=ids, timeout=0)
    except TimeoutError:
        return False
    return True


def _let_workers_end(controller: rush.Rush) -> None:
    """Give the workers (each has just found no slot left) a moment to leave their loop,
    then kill any that did not."""
    deadline = time.monotonic() + END_GRACE_SECONDS
    while controller.n_running_workers and time.monotonic() < deadline:
        time.sleep(0.02)  # rush has no blocking wait for workers to end
    if controller.n_running_workers:
        controller.stop_workers()


# -- the study -----------------------------------------------------------------------

def _build_study(controller: rush.Rush, slots: list[str], directions: list[Direction],
                 sampler: optuna.samplers.BaseSampler | None,
                 pruner: optuna.pruners.BasePruner | None,
                 lost_at: dict[str, datetime.datetime]) -> optuna.Study:
    """Every trial of the network, in number order, in a new in-memory study."""
    now = datetime.datetime.now()
    trials = []
    for start in range(0, len(slots), READ_CHUNK):
        keys = slots[start:start + READ_CHUNK]
        for key, fields in zip(keys, controller.read_hashes(keys, records.FIELDS, flatten=False)):
            worker_id = fields.get("worker_id")
            trial = records.to_frozen(fields, lost_at.get(worker_id or "", now),
                                      {records.WORKER_ID_ATTR: worker_id, records.KEY_ATTR: key})
            if trial is not None:  # else a slot never popped: removed from the queue at the timeout
                trials.append(trial)
    study = optuna.create_study(directions=directions, sampler=sampler, pruner=pruner,
                                study_name=controller.network_id)
    study.add_trials(trials)
    return study
