"""Log Messages (article section): worker log records in Redis, ``read_log()`` and
``print_log()``; and the ``message_log``/``output_log`` files of local workers."""

from __future__ import annotations

import logging
import re

import pandas as pd

import loops
from conftest import wait_until
from worker_helpers import SLOW

LOG_COLUMNS = ["worker_id", "level", "timestamp", "logger", "caller", "msg"]


def _article_messages(log: pd.DataFrame) -> pd.DataFrame:
    return log[log["msg"].str.startswith("This is an info message from worker")]


def test_log_messages_are_stored_read_and_printed(rsh, caplog):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_log_message, n_workers=2,
                                         lgr_thresholds={"rush": "info"})
    wait_until(lambda: rsh.n_terminated_workers == 2, SLOW, message="2 terminated workers")

    log = rsh.read_log()
    assert list(log.columns) == LOG_COLUMNS
    mine = _article_messages(log)
    assert sorted(mine["worker_id"]) == sorted(worker_ids)
    for row in mine.itertuples():
        assert row.msg == f"This is an info message from worker {row.worker_id}"
        assert row.level == "info"
        assert row.logger == "rush"
        assert isinstance(row.timestamp, pd.Timestamp)
        assert "wl_log_message" in row.caller
    assert set(log["level"]) <= {"debug", "info", "warning", "error", "critical"}

    with_diff = rsh.read_log(time_difference=True)
    assert list(with_diff.columns) == LOG_COLUMNS + ["time_difference"]
    first_of_each = with_diff.groupby("worker_id")["time_difference"].first()
    assert first_of_each.isna().all()  # nothing before a worker's first record

    one = rsh.read_log(worker_ids=worker_ids[0])
    assert set(one["worker_id"]) == {worker_ids[0]}

    caplog.set_level(logging.INFO, logger="rush")
    rsh.print_log()
    printed = [r.getMessage() for r in caplog.records if r.name == "rush"]
    for worker_id in worker_ids:
        pattern = (rf"^\[{worker_id}\] \[\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}}\] "
                   rf"This is an info message from worker {worker_id}$")
        assert sum(bool(re.match(pattern, m)) for m in printed) == 1, printed

    caplog.clear()
    rsh.print_log()
    assert [r for r in caplog.records if r.name == "rush"] == []


def test_without_thresholds_nothing_is_stored(rsh):
    rsh.start_local_workers(worker_loop=loops.wl_log_message, n_workers=1)
    wait_until(lambda: rsh.n_terminated_workers == 1, SLOW, message="the worker to terminate")
    log = rsh.read_log()
    assert log.empty and list(log.columns) == LOG_COLUMNS


def test_buffered_records_are_flushed_at_exit(rsh):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_log_many, n_workers=1, n=5,
                                         lgr_thresholds={"rush": "info"}, lgr_buffer_size=100)
    wait_until(lambda: rsh.n_terminated_workers == 1, SLOW, message="the worker to terminate")
    msgs = list(rsh.read_log()["msg"])
    assert [m for m in msgs if m.startswith("record ")] == \
        [f"record {i} of {worker_ids[0]}" for i in range(5)]


def test_print_log_shows_only_new_records(rsh, caplog):
    caplog.set_level(logging.INFO, logger="rush")
    rsh.start_local_workers(worker_loop=loops.wl_log_many, n_workers=1, n=2,
                            lgr_thresholds={"rush": "info"})
    wait_until(lambda: rsh.n_terminated_workers == 1, SLOW, message="the worker to terminate")
    rsh.print_log()
    second = rsh.start_local_workers(worker_loop=loops.wl_log_many, n_workers=1, n=3,
                                     lgr_thresholds={"rush": "info"})[0]
    wait_until(lambda: rsh.n_terminated_workers == 2, SLOW, message="the second worker")
    caplog.clear()

    rsh.print_log()

    printed = [r.getMessage() for r in caplog.records
               if r.name == "rush" and "] record " in r.getMessage()]
    assert [m.split("] ", 2)[2] for m in printed] == [f"record {i} of {second}" for i in range(3)]
    assert all(m.startswith(f"[{second}] ") for m in printed)


def test_message_and_output_logs_are_files_per_worker(rsh, tmp_path):
    messages, outputs = tmp_path / "messages", tmp_path / "outputs"
    messages.mkdir()
    outputs.mkdir()
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_print_both, n_workers=2,
                                         message_log=str(messages), output_log=str(outputs))
    wait_until(lambda: rsh.n_terminated_workers == 2, SLOW, message="2 terminated workers")
    for worker_id in worker_ids:
        assert f"stdout of {worker_id}" in (outputs / f"output_{worker_id}.log").read_text()
        assert f"stderr of {worker_id}" in (messages / f"message_{worker_id}.log").read_text()


def test_records_of_the_users_own_logger_keep_its_name_and_level(rsh, caplog):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_log_custom_logger, n_workers=1,
                                         lgr_thresholds={"mypkg": "debug"})
    wait_until(lambda: rsh.n_terminated_workers == 1, SLOW, message="the worker to terminate")
    log = rsh.read_log()
    assert list(log["level"]) == ["debug", "error"]
    assert set(log["logger"]) == {"mypkg.search"}
    assert list(log["msg"]) == [f"debug from {worker_ids[0]}", f"error from {worker_ids[0]}"]

    caplog.set_level(logging.DEBUG, logger="mypkg")
    rsh.print_log()
    printed = [(r.name, r.levelno) for r in caplog.records if r.name.startswith("mypkg")]
    assert printed == [("mypkg.search", logging.DEBUG), ("mypkg.search", logging.ERROR)]
