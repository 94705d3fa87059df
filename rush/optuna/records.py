"""One Optuna trial as a rush task, and back.

Trial number ``i`` of a run is the task of the ``i``-th slot the controller queued; the
worker that pops the slot runs the trial and keeps the task's fields up to date:

- ``worker_id``: set by rush when the slot is popped.
- ``xs``: the params as the objective sees them, ``{name: value}``.
- ``xs_extra``: ``trial_number``, ``trial_datetime_start``, ``trial_distributions``
  (``{name: distribution JSON}``), ``trial_user_attrs``, ``trial_system_attrs``,
  ``trial_intermediate_values`` (``{step: value}``).
- ``ys`` (finished): ``{"value": v}``, or ``{"values_0": v0, "values_1": v1, ...}`` with
  several objectives (the column names of ``Study.trials_dataframe``); ``{}`` for a
  pruned trial without a value.
- ``ys_extra`` (finished): ``trial_state`` (``"COMPLETE"`` or ``"PRUNED"``) and
  ``trial_datetime_complete``.
- ``condition`` (failed): ``message`` (and ``type``, ``traceback`` when the objective
  raised), ``trial_datetime_complete`` when the worker failed the trial itself.

Which of these fields a task's hash holds says the trial's state: ``condition`` FAIL,
``ys_extra`` COMPLETE or PRUNED, ``worker_id`` alone RUNNING, none of them: the slot was
never popped (no trial).
"""

from __future__ import annotations

import datetime
import functools
import traceback
from typing import Any

from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution
from optuna.trial import FrozenTrial, TrialState

#: The task fields a trial lives in, in the order ``read_hashes`` is asked for them.
FIELDS = ("worker_id", "xs", "xs_extra", "ys", "ys_extra", "condition")
#: System attributes the returned study adds to every trial.
WORKER_ID_ATTR = "rush_worker_id"
KEY_ATTR = "rush_key"
FAIL_REASON_ATTR = "fail_reason"


@functools.lru_cache(maxsize=4096)
def _distribution(text: str) -> BaseDistribution:
    """A distribution from its JSON (cached: running trials are read again and again)."""
    return json_to_distribution(text)


def running_fields(trial: FrozenTrial) -> tuple[dict, dict]:
    """``xs`` and ``xs_extra`` of a trial as it stands."""
    meta = {
        "trial_number": trial.number,
        "trial_datetime_start": trial.datetime_start,
        "trial_distributions": {name: distribution_to_json(d)
                                for name, d in trial.distributions.items()},
        "trial_user_attrs": trial.user_attrs,
        "trial_system_attrs": trial.system_attrs,
        "trial_intermediate_values": trial.intermediate_values,
    }
    return dict(trial.params), meta


def finished_fields(trial: FrozenTrial) -> tuple[dict, dict]:
    """``ys`` and ``ys_extra`` of a COMPLETE or PRUNED trial."""
    values = trial.values or []
    ys = ({"value": values[0]} if len(values) == 1
          else {f"values_{i}": v for i, v in enumerate(values)})
    return ys, {"trial_state": trial.state.name, "trial_datetime_complete": trial.datetime_complete}


def fail_condition(trial: FrozenTrial, error: BaseException | None) -> dict:
    """The ``condition`` of a trial that failed, from the exception of its objective (if
    it raised) or else the invalid value it returned."""
    if error is None:
        message = "the objective returned no valid value (Optuna needs finite floats)"
        condition: dict[str, Any] = {"message": message}
    else:
        condition = {"message": f"{type(error).__name__}: {error}", "type": type(error).__name__,
                     "traceback": "".join(traceback.format_exception(error))}
    condition["trial_datetime_complete"] = trial.datetime_complete
    return condition


def to_frozen(fields: dict[str, Any], ended: datetime.datetime,
              system_attrs: dict[str, Any] | None = None) -> FrozenTrial | None:
    """The trial a task's fields describe (number and id left at -1), or ``None`` when the
    slot was never popped. ``ended`` stands in for the end of a FAIL trial whose worker
    could not record it (a lost worker), and for the start of a trial that never wrote one.
    ``system_attrs`` are added to the trial's own.
    """
    condition = fields.get("condition")
    result = fields.get("ys_extra")
    if fields.get("worker_id") is None:
        return None
    meta = fields.get("xs_extra") or {}
    params = fields.get("xs") or {}
    distributions = {name: _distribution(text)
                     for name, text in meta.get("trial_distributions", {}).items()}
    params = {name: value for name, value in params.items() if name in distributions}
    system_attrs = {**meta.get("trial_system_attrs", {}), **(system_attrs or {})}
    values = None
    if condition is not None:
        state = TrialState.FAIL
        end = condition.get("trial_datetime_complete") or ended
        system_attrs.setdefault(FAIL_REASON_ATTR, condition.get("message", ""))
    elif result is not None:
        state = TrialState[result["trial_state"]]
        end = result["trial_datetime_complete"]
        values = _values(fields.get("ys") or {})
    else:
        state, end = TrialState.RUNNING, None
    return FrozenTrial(
        number=-1, trial_id=-1, state=state, value=None, values=values,
        datetime_start=meta.get("trial_datetime_start") or ended, datetime_complete=end,
        params=params, distributions=distributions,
        user_attrs=dict(meta.get("trial_user_attrs", {})), system_attrs=system_attrs,
        intermediate_values=dict(meta.get("trial_intermediate_values", {})))


def _values(ys: dict[str, Any]) -> list[float] | None:
    if not ys:
        return None
    if "value" in ys:
        return [ys["value"]]
    return [ys[f"values_{i}"] for i in range(len(ys))]
