"""Bad input to the start, stop and restart methods: a clear error, and nothing changed
(no process started, no start arguments stored, no worker registered)."""

from __future__ import annotations

import threading

import pytest

import loops
from worker_helpers import SLOW


def assert_nothing_changed(rsh) -> None:
    assert rsh.processes == {}
    assert not rsh.connector.exists(rsh.keys.start_args)
    assert rsh.n_workers == 0


def _unpicklable_loop():
    lock = threading.Lock()

    def loop(rush):
        with lock:
            pass

    return loop


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(worker_loop=42, n_workers=1), TypeError, "worker_loop"),
    (dict(worker_loop=loops.wl_log_message, n_workers=0), ValueError, "n_workers"),
    (dict(worker_loop=loops.wl_log_message, n_workers=-2), ValueError, "n_workers"),
    (dict(worker_loop=loops.wl_log_message, n_workers="2"), TypeError, "n_workers"),
    (dict(worker_loop=loops.wl_log_message, n_workers=1, message_log="/no/such/dir"),
     ValueError, "message_log"),
    (dict(worker_loop=loops.wl_log_message, n_workers=1, output_log="/no/such/dir"),
     ValueError, "output_log"),
    (dict(worker_loop=loops.wl_log_message, n_workers=1, heartbeat_period=2,
          heartbeat_expire=1), ValueError, "heartbeat_expire"),
    (dict(worker_loop=loops.wl_log_message, n_workers=1, heartbeat_expire=3),
     ValueError, "heartbeat_period"),
    (dict(worker_loop=loops.wl_log_message, n_workers=1, heartbeat_period=0),
     ValueError, "heartbeat_period"),
    (dict(worker_loop=loops.wl_log_message, n_workers=1, lgr_thresholds={"rush": "loud"}),
     ValueError, "loud"),
    (dict(worker_loop=loops.wl_log_message, n_workers=1, lgr_buffer_size=-1),
     ValueError, "lgr_buffer_size"),
    (dict(worker_loop=loops.wl_log_message, n_workers=1, packages=[1]), TypeError, "packages"),
    (dict(worker_loop=loops.wl_log_message, n_workers=1, globals=5), TypeError, "globals"),
    (dict(worker_loop=_unpicklable_loop(), n_workers=1), TypeError, "pickle"),
    (dict(worker_loop=loops.wl_big_kwargs, n_workers=1, payload=threading.Lock()),
     TypeError, "pickle"),
], ids=["loop-not-callable", "zero-workers", "negative-workers", "str-workers",
        "missing-message-log", "missing-output-log", "expire-below-period",
        "expire-without-period", "zero-period", "unknown-level", "negative-buffer",
        "bad-packages", "bad-globals", "unpicklable-loop", "unpicklable-kwarg"])
def test_bad_start_arguments_change_nothing(rsh, kwargs, error, match):
    with pytest.raises(error, match=match):
        rsh.start_local_workers(**kwargs)
    assert_nothing_changed(rsh)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(worker_loop=None), TypeError, "worker_loop"),
    (dict(worker_loop=loops.wl_log_message, heartbeat_period=1, heartbeat_expire=0.5),
     ValueError, "heartbeat_expire"),
    (dict(worker_loop=loops.wl_log_message, message_log="/no/such/dir"), ValueError,
     "message_log"),
    (dict(worker_loop=_unpicklable_loop()), TypeError, "pickle"),
], ids=["loop-not-callable", "expire-below-period", "missing-message-log", "unpicklable-loop"])
def test_bad_worker_script_arguments_change_nothing(rsh, kwargs, error, match):
    with pytest.raises(error, match=match):
        rsh.worker_script(**kwargs)
    assert_nothing_changed(rsh)


def test_restart_unknown_ids_starts_nothing(rsh):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_sleep_until_terminated, n_workers=1)
    rsh.wait_for_workers(1, timeout=SLOW)
    pid = rsh.processes[worker_ids[0]].pid
    with pytest.raises(ValueError, match="nope"):
        rsh.restart_workers(["nope"])
    with pytest.raises(ValueError, match="nope"):
        rsh.restart_workers([worker_ids[0], "nope"])  # all or nothing
    assert list(rsh.processes) == worker_ids and rsh.processes[worker_ids[0]].pid == pid
    assert rsh.processes[worker_ids[0]].poll() is None
    assert rsh.worker_ids == worker_ids


def test_wait_for_workers_rejects_bad_arguments(rsh):
    with pytest.raises(ValueError):
        rsh.wait_for_workers()
    with pytest.raises(ValueError):
        rsh.wait_for_workers(n=3, worker_ids=["a", "b"])
    with pytest.raises(TimeoutError):
        rsh.wait_for_workers(1, timeout=0)
