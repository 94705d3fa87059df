"""A loop that raises: its task fails with the type, message and traceback, an ERROR
record goes to its log, the worker is lost, ``worker_errors`` has a row, the controller
warns once per crash from its waiting calls, and raises ``RushWorkerError`` when every
worker has ended and one crashed. Real worker processes on a real Redis."""

from __future__ import annotations

import logging
import time

import pandas as pd
import pytest

import loops
import rush
from conftest import wait_until
from rush.crashes import CRASH_COLUMNS
from rush.states import LEFT_UNFINISHED_MESSAGE
from worker_helpers import SLOW, states

TYPO = "NameError: name 'branni' is not defined"


def crash_warnings(caplog, worker_id: str | None = None) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "rush" and r.levelno == logging.WARNING
            and "crashed" in r.getMessage()
            and (worker_id is None or worker_id in r.getMessage())]


def crash_and_wait(rsh, n: int = 1, loop=loops.wl_typo_on_first_task) -> list[str]:
    """Start ``n`` workers whose loop raises; wait (without any waiting call of the
    controller) until all are lost."""
    ids = rsh.start_local_workers(worker_loop=loop, n_workers=n)
    wait_until(lambda: set(states(rsh).values()) == {"lost"} and len(states(rsh)) == n, SLOW,
               message="the workers to crash")
    return ids


def test_a_loop_that_raises_fails_its_task_with_the_whole_traceback(rsh):
    ids = crash_and_wait(rsh, n=2)

    failed = rsh.fetch_failed_tasks()
    assert len(failed) == 2 and set(failed["worker_id"]) == set(ids)
    for condition in failed["condition"]:
        assert set(condition) == {"message", "type", "traceback"}
        assert condition["message"] == TYPO and condition["type"] == "NameError"
        trace = condition["traceback"]
        assert trace.startswith("Traceback (most recent call last):")
        assert "in wl_typo_on_first_task" in trace and "branni(xs" in trace  # file and line
        assert trace.rstrip().endswith(TYPO)


def test_worker_errors_has_one_row_per_crashed_worker(rsh):
    ids = crash_and_wait(rsh, n=2)

    errors = rsh.worker_errors

    assert list(errors.columns) == list(CRASH_COLUMNS)
    assert sorted(errors["worker_id"]) == sorted(ids)
    assert set(errors["type"]) == {"NameError"} and set(errors["message"]) == {TYPO}
    assert all("branni" in t for t in errors["traceback"])
    assert str(errors["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert errors["timestamp"].is_monotonic_increasing
    by_worker = rsh.fetch_failed_tasks().set_index("worker_id")["keys"]
    assert {w: k for w, k in zip(errors["worker_id"], errors["task_key"])} == by_worker.to_dict()


def test_no_crash_gives_an_empty_worker_errors_frame(rsh):
    errors = rsh.worker_errors
    assert list(errors.columns) == list(CRASH_COLUMNS) and len(errors) == 0


def test_the_crash_goes_to_the_workers_log_whatever_the_thresholds(rsh):
    quiet = rsh.start_local_workers(worker_loop=loops.wl_typo_on_first_task, n_workers=1)[0]
    chatty = rsh.start_local_workers(worker_loop=loops.wl_typo_on_first_task, n_workers=1,
                                     lgr_thresholds={"rush": "info"})[0]
    wait_until(lambda: states(rsh) == {quiet: "lost", chatty: "lost"}, SLOW,
               message="the workers to crash")

    log = rsh.read_log()

    for worker_id in (quiet, chatty):
        errors = log[(log["worker_id"] == worker_id) & (log["level"] == "error")]
        assert len(errors) == 1  # once, even with the worker's handler on logger "rush"
        assert TYPO in errors["msg"].iloc[0] and "Traceback" in errors["msg"].iloc[0]
        assert "wl_typo_on_first_task" in errors["caller"].iloc[0]


@pytest.mark.parametrize("call", ["wait_for_workers", "wait_for_tasks", "fetch_new_tasks",
                                  "detect_lost_workers"])
def test_the_first_waiting_call_warns_once_per_crash(rsh, caplog, call):
    ids = crash_and_wait(rsh, n=2)
    failed = rsh.failed_tasks
    calls = {
        "wait_for_workers": lambda: rsh.wait_for_workers(2, timeout=SLOW),
        "wait_for_tasks": lambda: rsh.wait_for_tasks(failed, timeout=SLOW),
        "fetch_new_tasks": lambda: rsh.fetch_new_tasks(timeout=0.05),
        "detect_lost_workers": lambda: rsh.detect_lost_workers(),
    }
    caplog.set_level(logging.WARNING, logger="rush")

    calls[call]()

    for worker_id in ids:
        warned = crash_warnings(caplog, worker_id)
        assert len(warned) == 1
        assert TYPO in warned[0].getMessage()
        assert "Traceback (most recent call last)" in warned[0].getMessage()
    caplog.clear()
    for again in calls.values():  # no call tells it twice
        again()
    assert crash_warnings(caplog) == []


def test_a_crash_while_the_controller_waits_is_told_at_once(rsh, caplog, tmp_path,
                                                             record_property):
    release = tmp_path / "release"
    worker_id = rsh.start_local_workers(worker_loop=loops.wl_raise_when_released,
                                        n_workers=1, release=str(release))[0]
    rsh.wait_for_workers(1, timeout=SLOW)
    wait_until(lambda: rsh.n_running_tasks == 1, SLOW, message="the task to start")
    caplog.set_level(logging.WARNING, logger="rush")

    release.touch()
    deadline = time.monotonic() + SLOW
    while not crash_warnings(caplog) and time.monotonic() < deadline:
        rsh.fetch_new_tasks(timeout=1)  # the quick start's waiting loop

    warned = crash_warnings(caplog, worker_id)
    assert len(warned) == 1 and "RuntimeError: released into an error" in warned[0].getMessage()
    crashed_at = rsh.worker_errors["timestamp"].iloc[0].timestamp()
    record_property("crash_to_warning_s", round(warned[0].created - crashed_at, 4))


def test_wait_for_tasks_raises_when_every_worker_crashed(rsh):
    keys = rsh.push_tasks([{"x1": float(i)} for i in range(5)])
    ids = rsh.start_local_workers(worker_loop=loops.wl_pop_and_raise, n_workers=2)

    with pytest.raises(rush.RushWorkerError) as raised:
        rsh.wait_for_tasks(keys, timeout=SLOW)

    error = raised.value
    assert isinstance(error, rush.RushError)
    assert error.worker_id in ids and error.type == "ValueError"
    assert "cannot evaluate" in str(error) and error.traceback in str(error)
    assert "in wl_pop_and_raise" in error.traceback
    # the tasks they popped failed with the crash, the others wait in the queue
    failed = rsh.fetch_failed_tasks()
    assert len(failed) == 2
    assert {c["type"] for c in failed["condition"]} == {"ValueError"}
    assert rsh.n_queued_tasks == 3


def test_wait_for_workers_raises_instead_of_timing_out(rsh):
    ids = rsh.start_local_workers(worker_loop=loops.wl_typo_on_first_task, n_workers=2)

    with pytest.raises(rush.RushWorkerError, match="branni") as raised:
        rsh.wait_for_workers(3, timeout=SLOW)

    assert raised.value.worker_id in ids
    assert raised.value.n_crashed >= 1


def test_an_error_the_loop_reports_with_fail_tasks_is_not_a_crash(rsh, caplog):
    worker_id = rsh.start_local_workers(worker_loop=loops.wl_reports_its_own_error,
                                        n_workers=1)[0]
    wait_until(lambda: states(rsh) == {worker_id: "terminated"}, SLOW,
               message="the worker to end")
    caplog.set_level(logging.WARNING, logger="rush")

    rsh.wait_for_workers(1, timeout=SLOW)
    rsh.wait_for_tasks(rsh.tasks, timeout=SLOW)  # no RushWorkerError
    rsh.fetch_new_tasks(timeout=0.05)

    assert crash_warnings(caplog) == []
    assert len(rsh.worker_errors) == 0
    condition = rsh.fetch_failed_tasks()["condition"].iloc[0]
    assert condition == {"message": "bad input: division by zero"}


def test_wait_for_tasks_of_workers_still_starting_does_not_return_early(rsh):
    keys = rsh.push_tasks([{"x1": 1.0, "x2": 2.0}])
    rsh.start_local_workers(worker_loop=loops.wl_pop_and_block, n_workers=1, release="/")
    rsh.wait_for_tasks(keys, timeout=SLOW)  # right after the start: no worker registered yet
    assert rsh.n_finished_tasks == 1
    assert isinstance(rsh.fetch_finished_tasks(), pd.DataFrame)


def test_a_task_the_loop_left_unfinished_fails_when_the_worker_ends(rsh):
    rsh.push_tasks([{"x1": 1.0}])
    worker_id = rsh.start_local_workers(worker_loop=loops.wl_pop_and_return, n_workers=1)[0]
    wait_until(lambda: states(rsh) == {worker_id: "terminated"}, SLOW,
               message="the worker to end")

    assert rsh.n_running_tasks == 0 and rsh.n_failed_tasks == 1
    failed = rsh.fetch_failed_tasks()
    assert failed["condition"].iloc[0] == {"message": LEFT_UNFINISHED_MESSAGE}
    assert failed["worker_id"].iloc[0] == worker_id


def test_a_task_left_unfinished_with_retries_left_goes_back_to_the_queue(rsh):
    rsh.push_tasks([{"x1": 1.0}], max_retries=1)
    first = rsh.start_local_workers(worker_loop=loops.wl_pop_and_return, n_workers=1)[0]
    wait_until(lambda: states(rsh) == {first: "terminated"}, SLOW, message="the worker to end")

    assert rsh.n_running_tasks == 0 and rsh.n_queued_tasks == 1
