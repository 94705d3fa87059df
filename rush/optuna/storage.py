"""``NetworkStorage``: the in-memory Optuna storage of one worker, kept in sync with the
rush network.

Every worker runs an ordinary Optuna study on this storage. The trial it runs itself
(the one ``study.ask()`` creates, bound to the slot the worker popped) is written to the
slot's task as it changes: params, intermediate values and attributes at once (so other
workers see running trials and their values), the end with ``finish_tasks`` or
``fail_tasks``. The trials of other workers are read by ``sync()`` before each ask and
after each reported value: only the trials this storage has not seen finish (new ones,
and those still running here), so a sync costs O(new + running), not O(all trials).

Local trial numbers are the network's: trial ``i`` is slot ``i``. ``sync`` adds trials in
number order (a trial another worker has popped but not written to yet is a RUNNING
trial without params, which later syncs fill in), so ``ask()`` gets the number of its
slot.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any, Sequence

from optuna.distributions import BaseDistribution
from optuna.storages import InMemoryStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from ..errors import WorkerStoppedError
from . import records

logger = logging.getLogger("rush")

#: Task hashes read per round trip by ``sync`` (bounds one reply on a first, full sync).
READ_CHUNK = 10_000


class WorkerDone(Exception):
    """``study.ask()`` has no trial for this worker: every trial slot of the network is
    taken, or the worker was told to terminate."""


def _placeholder(fields: dict[str, Any], now: datetime.datetime) -> FrozenTrial:
    """A trial without data for a slot no worker holds: FAIL when the slot was removed
    from the queue (a run's timeout), else RUNNING until a later sync sees it popped."""
    failed = fields.get("condition") is not None
    return FrozenTrial(number=-1, trial_id=-1, value=None, datetime_start=now,
                       state=TrialState.FAIL if failed else TrialState.RUNNING,
                       datetime_complete=now if failed else None, params={}, distributions={},
                       user_attrs={}, system_attrs={}, intermediate_values={})


class NetworkStorage(InMemoryStorage):
    """One worker's in-memory copy of the study of a rush network.

    ``rush`` is the worker's ``RushWorker`` (a controller's ``Rush`` is enough to read);
    ``slots`` are the task keys of the trial slots, in trial-number order. Each
    ``study.ask()`` pops the next free slot and runs its trial in it; with none left, or
    once the worker was told to terminate, it raises ``WorkerDone``.
    """

    def __init__(self, rush: Any, slots: Sequence[str]) -> None:
        super().__init__()
        self._rush = rush
        self._slots = list(slots)
        self._number = {key: i for i, key in enumerate(self._slots)}
        self._study_id: int | None = None
        self._open: set[int] = set()  # numbers of other workers' trials not finished here
        self._count = 0  # trials held here: numbers 0 .. count-1
        self._own: tuple[int, str] | None = None  # (trial id, key) of the running own trial
        self._written = False  # whether the own trial's fields reached the network yet
        #: The exception of the own trial's objective (the worker loop sets it), for the
        #: condition of the failed task.
        self.error: BaseException | None = None

    # -- the study ------------------------------------------------------------------

    def create_new_study(self, directions: Sequence[StudyDirection],
                         study_name: str | None = None) -> int:
        if self._study_id is not None:
            raise RuntimeError("a NetworkStorage holds one study")
        self._study_id = super().create_new_study(directions, study_name)
        return self._study_id

    # -- syncing -------------------------------------------------------------------

    def sync(self, up_to: int | None = None) -> int:
        """Read from the network every trial not finished here and, for ``up_to``, the
        trials numbered below it not held yet (one round trip per ``READ_CHUNK`` trials).
        Without ``up_to``, every slot popped so far. Returns the number of trials read."""
        if up_to is None:
            up_to = len(self._slots) - self._rush.n_queued_tasks
        numbers = sorted(self._open.union(range(self._count, up_to)))
        now = datetime.datetime.now()
        for start in range(0, len(numbers), READ_CHUNK):
            chunk = numbers[start:start + READ_CHUNK]
            hashes = self._rush.read_hashes([self._slots[i] for i in chunk], records.FIELDS,
                                            flatten=False)
            for number, fields in zip(chunk, hashes):
                trial = records.to_frozen(fields, now) or _placeholder(fields, now)
                if number >= self._count:
                    self._add(trial)
                else:
                    self._update(number, trial)
                if trial.state.is_finished():
                    self._open.discard(number)
                else:
                    self._open.add(number)
        return len(numbers)

    def _add(self, trial: FrozenTrial) -> None:
        assert self._study_id is not None
        super().create_new_trial(self._study_id, template_trial=trial)
        self._count += 1

    def _update(self, number: int, new: FrozenTrial) -> None:
        """Bring a trial held here up to date with what the network says of it."""
        assert self._study_id is not None
        trial_id = self.get_trial_id_from_study_id_trial_number(self._study_id, number)
        old = self.get_trial(trial_id)
        if old.state.is_finished():
            return
        for name, value in new.params.items():
            if name not in old.params:
                self._set_param(trial_id, name, value, new.distributions[name])
        for step, value in new.intermediate_values.items():
            if old.intermediate_values.get(step, None) != value:
                self.set_trial_intermediate_value(trial_id, step, value)
        for key, value in new.user_attrs.items():
            if key not in old.user_attrs or old.user_attrs[key] != value:
                self.set_trial_user_attr(trial_id, key, value)
        for key, value in new.system_attrs.items():
            if key not in old.system_attrs or old.system_attrs[key] != value:
                self.set_trial_system_attr(trial_id, key, value)
        if new.state.is_finished():
            self.set_trial_state_values(trial_id, new.state, new.values)

    def _set_param(self, trial_id: int, name: str, value: Any,
                   distribution: BaseDistribution) -> None:
        try:
            self.set_trial_param(trial_id, name, distribution.to_internal_repr(value), distribution)
        except ValueError as e:  # another worker suggested it with an incompatible distribution
            logger.warning("trial %d: param %r skipped: %s",
                           self.get_trial_number_from_id(trial_id), name, e)

    # -- the own trial -------------------------------------------------------------

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        if template_trial is not None:
            raise NotImplementedError(
                "rush.optuna workers create trials only with study.ask() in a claimed slot "
                "(enqueue_trial and add_trial are not supported inside a worker)")
        if self._rush.terminated:
            raise WorkerDone("this worker was told to terminate")
        try:
            task = self._rush.pop_task(timeout=0)
        except WorkerStoppedError:  # killed or found lost since the flag was last read
            raise WorkerDone("this worker was stopped: told to terminate") from None
        if task is None:
            raise WorkerDone(f"all {len(self._slots)} trials of the network have started")
        key = task["key"]
        number = self._number[key]
        self.sync(number)
        if self._count != number:
            raise RuntimeError(f"trial numbering out of step: slot {number}, {self._count} "
                               "trials held")
        trial_id = super().create_new_trial(study_id)
        self._count += 1
        self._own, self._written, self.error = (trial_id, key), False, None
        return trial_id

    def _is_own(self, trial_id: int) -> bool:
        return self._own is not None and self._own[0] == trial_id

    def _write_own(self) -> None:
        assert self._own is not None
        trial_id, key = self._own
        xs, xs_extra = records.running_fields(self.get_trial(trial_id))
        self._rush.write_hashes(key, xs=[xs], xs_extra=[xs_extra])
        self._written = True

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: BaseDistribution) -> None:
        super().set_trial_param(trial_id, param_name, param_value_internal, distribution)
        if self._is_own(trial_id):
            self._write_own()

    def set_trial_intermediate_value(self, trial_id: int, step: int,
                                     intermediate_value: float) -> None:
        super().set_trial_intermediate_value(trial_id, step, intermediate_value)
        if self._is_own(trial_id):
            self._write_own()
            self.sync()  # a pruner asked next sees every worker's values

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        super().set_trial_user_attr(trial_id, key, value)
        if self._is_own(trial_id):
            self._write_own()

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        super().set_trial_system_attr(trial_id, key, value)
        if self._is_own(trial_id):
            self._write_own()

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        changed = super().set_trial_state_values(trial_id, state, values)
        if changed and state.is_finished() and self._is_own(trial_id):
            self._end_own(state)
        return changed

    def _end_own(self, state: TrialState) -> None:
        """Finish or fail the own trial's task (first writer wins: if the worker was
        declared lost meanwhile, rush discards this with a warning)."""
        assert self._own is not None
        if not self._written:
            self._write_own()
        trial_id, key = self._own
        self._own = None
        trial = self.get_trial(trial_id)
        if state == TrialState.FAIL:
            self._rush.fail_tasks(key, [records.fail_condition(trial, self.error)])
        else:
            ys, ys_extra = records.finished_fields(trial)
            self._rush.finish_tasks(key, [ys], [ys_extra])
