"""Local workers end to end, one test per section of the controller article: start,
add, globals, packages, stop, terminate, failed workers, restart. Real worker
processes, the session's private Redis, waits on conditions with deadlines."""

from __future__ import annotations

import logging
import socket
import statistics
import time
import uuid

import pytest

import loops
import rush
from conftest import wait_until
from rush.states import KILLED_MESSAGE
from rush.states import LOST_MESSAGE
from worker_helpers import SLOW, all_exited, pid_alive, pids, states

INFO_COLUMNS = ["worker_id", "pid", "remote", "hostname", "heartbeat", "state"]

#: Read by ``loops.wl_uses_global`` through ``globals=["OFFSET"]``; loops.py has no OFFSET.
OFFSET = 42.5


# -- Local Workers / Start Workers -------------------------------------------------------

def test_local_workers_run_the_random_search_until_100_finished(rsh):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_random_search, n_workers=4)

    assert len(worker_ids) == 4 and len(set(worker_ids)) == 4
    assert set(rsh.processes) == set(worker_ids)
    rsh.wait_for_workers(4, timeout=SLOW)
    info = rsh.worker_info
    assert list(info.columns) == INFO_COLUMNS
    assert sorted(info["worker_id"]) == sorted(worker_ids)
    assert {w: int(p) for w, p in zip(info["worker_id"], info["pid"])} == \
        {w: rsh.processes[w].pid for w in worker_ids}
    assert not info["remote"].any() and not info["heartbeat"].any()
    assert set(info["hostname"]) == {socket.gethostname()}
    assert set(info["state"]) <= {"running", "terminated"}

    wait_until(lambda: rsh.n_terminated_workers == 4, SLOW, message="4 terminated workers")
    assert rsh.n_finished_tasks >= 100
    assert set(states(rsh).values()) == {"terminated"}
    assert sorted(rsh.terminated_worker_ids) == sorted(worker_ids)
    assert rsh.n_running_workers == 0
    finished = rsh.fetch_finished_tasks()
    assert {"x1", "x2", "y", "worker_id", "keys"} <= set(finished.columns)
    assert set(finished["worker_id"]) <= set(worker_ids)
    assert (finished["y"] >= 0.39).all()  # Branin's minimum is 0.397887
    wait_until(lambda: all_exited(rsh, worker_ids), SLOW, message="worker processes to exit")
    assert {rsh.processes[w].returncode for w in worker_ids} == {0}


def test_four_local_workers_start_fast(config, record_property):
    """Start-up latency: start_local_workers(n_workers=4) until wait_for_workers(4) returns
    (goal: under 1 s on an idle machine; asserted loosely for busy CI machines)."""
    seconds = []
    for _ in range(5):
        with rush.rsh(f"test-start-{uuid.uuid4().hex[:8]}", config=config) as controller:
            try:
                began = time.perf_counter()
                controller.start_local_workers(worker_loop=loops.wl_sleep_until_terminated,
                                               n_workers=4)
                controller.wait_for_workers(4, timeout=SLOW)
                seconds.append(time.perf_counter() - began)
            finally:
                controller.reset()
    median = statistics.median(seconds)
    record_property("start_4_local_workers_median_s", round(median, 3))
    print(f"start_local_workers(4) -> wait_for_workers(4): median {median:.3f} s of "
          f"{', '.join(f'{s:.3f}' for s in seconds)}")
    assert median < 10


# -- Local Workers / adding workers --------------------------------------------------------

def test_adding_workers_gives_six_rows(rsh):
    first = rsh.start_local_workers(worker_loop=loops.wl_random_search_terminate, n_workers=4,
                                    pause=0.01)
    rsh.wait_for_workers(4, timeout=SLOW)
    more = rsh.start_local_workers(worker_loop=loops.wl_random_search_terminate, n_workers=2,
                                   pause=0.01)
    rsh.wait_for_workers(6, timeout=SLOW)

    info = rsh.worker_info
    assert len(info) == 6
    assert sorted(info["worker_id"]) == sorted(first + more)
    assert set(info["worker_id"][:4]) == set(first)  # registration order
    assert set(info["state"]) == {"running"}
    assert rsh.n_running_workers == 6

    rsh.stop_workers(type="terminate")
    wait_until(lambda: rsh.n_terminated_workers == 6, SLOW, message="6 terminated workers")


# -- Globals ---------------------------------------------------------------------------

def test_globals_by_name_reach_the_loop(rsh):
    rsh.start_local_workers(worker_loop=loops.wl_uses_global, n_workers=1, globals=["OFFSET"])
    wait_until(lambda: rsh.n_terminated_workers == 1, SLOW, message="the worker to terminate")
    assert list(rsh.fetch_finished_tasks()["y"]) == [42.5]


def test_globals_as_a_dict_and_local_names_reach_the_loop(rsh):
    rsh.start_local_workers(worker_loop=loops.wl_uses_global, n_workers=1,
                            globals={"OFFSET": 7.0})
    OFFSET = -3.0  # noqa: N806 -- a local of the caller is found by name too
    rsh.start_local_workers(worker_loop=loops.wl_uses_global, n_workers=1, globals=["OFFSET"])
    wait_until(lambda: rsh.n_terminated_workers == 2, SLOW, message="2 terminated workers")
    assert sorted(rsh.fetch_finished_tasks()["y"]) == [OFFSET, 7.0]


def test_unknown_global_name_is_an_error_and_starts_nothing(rsh):
    with pytest.raises(ValueError, match="NO_SUCH_NAME"):
        rsh.start_local_workers(worker_loop=loops.wl_uses_global, n_workers=1,
                                globals=["NO_SUCH_NAME"])
    assert rsh.processes == {}
    assert not rsh.connector.exists(rsh.keys.start_args)


# -- packages -----------------------------------------------------------------------------

def test_packages_are_imported_before_the_loop(rsh):
    rsh.start_local_workers(worker_loop=loops.wl_uses_package, n_workers=1,
                            packages=["loop_package"])
    wait_until(lambda: rsh.n_terminated_workers == 1, SLOW, message="the worker to terminate")
    assert list(rsh.fetch_finished_tasks()["y"]) == [1.0]


def test_missing_package_fails_the_start_with_the_workers_stderr(rsh):
    rsh.start_local_workers(worker_loop=loops.wl_uses_package, n_workers=1,
                            packages=["no_such_package_for_rush"])
    with pytest.raises(RuntimeError, match="no_such_package_for_rush"):
        rsh.wait_for_workers(1, timeout=SLOW)


# -- Stop Worker --------------------------------------------------------------------------

def test_stop_one_worker_kills_it_and_fails_only_its_task(rsh, tmp_path):
    release = tmp_path / "release"
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_block_in_task, n_workers=3,
                                         release=str(release))
    wait_until(lambda: rsh.n_running_tasks == 3, SLOW, message="3 running tasks")
    running = rsh.fetch_running_tasks()
    task_of = dict(zip(running["worker_id"], running["keys"]))
    victim, others = worker_ids[0], worker_ids[1:]

    rsh.stop_workers(worker_ids=victim)

    assert states(rsh) == {victim: "killed", **{w: "running" for w in others}}
    assert rsh.killed_worker_ids == [victim]
    assert rsh.processes[victim].returncode is not None  # killed and reaped
    assert not pid_alive(rsh.processes[victim].pid)
    failed = rsh.fetch_failed_tasks()
    assert list(failed["keys"]) == [task_of[victim]]
    assert [c["message"] for c in failed["condition"]] == [KILLED_MESSAGE]
    assert sorted(rsh.running_tasks) == sorted(task_of[w] for w in others)
    assert all(rsh.processes[w].poll() is None for w in others)

    release.touch()  # the others carry on and finish their tasks
    wait_until(lambda: rsh.n_terminated_workers == 2, SLOW, message="2 terminated workers")
    assert sorted(rsh.finished_tasks) == sorted(task_of[w] for w in others)
    assert states(rsh)[victim] == "killed"


def test_stop_unknown_or_stopped_ids_warns_and_skips(rsh, caplog):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_sleep_until_terminated, n_workers=2)
    rsh.wait_for_workers(2, timeout=SLOW)
    rsh.stop_workers(worker_ids=worker_ids[0])
    caplog.set_level(logging.WARNING, logger="rush")

    rsh.stop_workers(worker_ids=["nope", worker_ids[0]])

    warnings = [r.getMessage() for r in caplog.records if r.name == "rush"]
    assert any("nope" in m and "unknown" in m for m in warnings)
    assert any(worker_ids[0] in m and "killed" in m for m in warnings)
    assert states(rsh) == {worker_ids[0]: "killed", worker_ids[1]: "running"}


def test_stop_workers_rejects_an_unknown_type(rsh):
    with pytest.raises(ValueError, match="type"):
        rsh.stop_workers(type="pause")


# -- terminate ----------------------------------------------------------------------------

def test_terminate_ends_every_worker_as_terminated(rsh):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_random_search_terminate,
                                         n_workers=2, pause=0.005)
    wait_until(lambda: rsh.n_finished_tasks > 0, SLOW, message="a finished task")
    assert set(states(rsh).values()) == {"running"}

    rsh.stop_workers(type="terminate")

    wait_until(lambda: rsh.n_terminated_workers == 2, SLOW, message="2 terminated workers")
    assert set(states(rsh).values()) == {"terminated"}
    assert rsh.n_killed_workers == 0 and rsh.n_lost_workers == 0
    wait_until(lambda: all_exited(rsh, worker_ids), SLOW, message="worker processes to exit")
    assert {rsh.processes[w].returncode for w in worker_ids} == {0}
    assert rsh.n_running_tasks == 0
    assert rsh.n_failed_tasks == 0


# -- Failed Workers -----------------------------------------------------------------------

def test_failed_workers_are_detected_as_lost(rsh, caplog):
    caplog.set_level(logging.WARNING, logger="rush")
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_crash_mid_task, n_workers=2)
    wait_until(lambda: all_exited(rsh, worker_ids), SLOW, message="the workers to die")
    assert rsh.n_running_tasks == 2  # nobody has looked yet

    lost = rsh.detect_lost_workers()

    assert sorted(lost) == sorted(worker_ids)
    assert states(rsh) == {w: "lost" for w in worker_ids}
    assert sorted(rsh.lost_worker_ids) == sorted(worker_ids)
    assert rsh.n_terminated_workers == 0
    assert rsh.detect_lost_workers() == []
    failed = rsh.fetch_failed_tasks()
    assert sorted(failed["worker_id"]) == sorted(worker_ids)
    assert {c["message"] for c in failed["condition"]} == {LOST_MESSAGE}
    assert rsh.n_running_tasks == 0
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "rush" and r.levelno == logging.WARNING]
    for worker_id in worker_ids:
        assert any(worker_id in m and f"last words of {worker_id}" in m for m in warnings), warnings


def test_the_articles_failed_worker_loop(rsh):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_failed_worker, n_workers=2)
    wait_until(lambda: all_exited(rsh, worker_ids), SLOW, message="the workers to die")
    assert sorted(rsh.detect_lost_workers()) == sorted(worker_ids)
    assert list(rsh.worker_info["state"]) == ["lost", "lost"]


def test_wait_for_tasks_can_detect_lost_workers(rsh):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_crash_mid_task, n_workers=1)
    keys = wait_until(lambda: rsh.running_tasks, SLOW, message="a running task")
    rsh.wait_for_tasks(keys, detect_lost_workers=True, timeout=SLOW)
    assert rsh.is_failed_task(keys) == [True]
    assert states(rsh) == {worker_ids[0]: "lost"}


# -- Restart Workers ----------------------------------------------------------------------

def test_restart_a_lost_worker_keeps_its_id_and_gets_a_new_pid(rsh, tmp_path):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_crash_once, n_workers=2,
                                         marker_dir=str(tmp_path))
    wait_until(lambda: all_exited(rsh, worker_ids), SLOW, message="the workers to die")
    assert sorted(rsh.detect_lost_workers()) == sorted(worker_ids)
    old_pid = pids(rsh)[worker_ids[0]]

    assert rsh.restart_workers(worker_ids=worker_ids[0]) == [worker_ids[0]]

    assert states(rsh) == {worker_ids[0]: "running", worker_ids[1]: "lost"}
    new_pid = rsh.processes[worker_ids[0]].pid
    assert new_pid != old_pid
    wait_until(lambda: pids(rsh)[worker_ids[0]] == new_pid, SLOW,
               message="the restarted worker to register")
    assert rsh.n_workers == 2 and rsh.worker_ids.count(worker_ids[0]) == 1
    wait_until(lambda: rsh.n_finished_tasks > 0, SLOW, message="the restarted worker to work")
    assert set(rsh.fetch_finished_tasks()["worker_id"]) == {worker_ids[0]}
    assert rsh.processes[worker_ids[0]].poll() is None

    rsh.stop_workers(type="terminate")
    wait_until(lambda: states(rsh)[worker_ids[0]] == "terminated", SLOW,
               message="the restarted worker to terminate")
    assert states(rsh)[worker_ids[1]] == "lost"


def test_restart_a_running_worker_kills_the_old_process(rsh, tmp_path):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_sleep_until_terminated, n_workers=1)
    rsh.wait_for_workers(1, timeout=SLOW)
    old = rsh.processes[worker_ids[0]]

    rsh.restart_workers(worker_ids)

    assert old.returncode is not None and not pid_alive(old.pid)
    new = rsh.processes[worker_ids[0]]
    assert new.pid != old.pid
    wait_until(lambda: pids(rsh)[worker_ids[0]] == new.pid, SLOW,
               message="the restarted worker to register")
    assert states(rsh) == {worker_ids[0]: "running"}


def test_restarting_heartbeat_worker_is_not_lost_before_it_registers(rsh, tmp_path):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_crash_once, n_workers=1,
                                         marker_dir=str(tmp_path), heartbeat_period=0.3)
    worker_id = worker_ids[0]
    wait_until(lambda: all_exited(rsh, worker_ids), SLOW, message="the worker to die")
    assert rsh.detect_lost_workers() == worker_ids
    wait_until(lambda: not rsh.connector.exists(rsh.keys.heartbeat(worker_id)), SLOW,
               message="the old heartbeat key to go")

    rsh.restart_workers(worker_ids)
    new = rsh.processes[worker_id]

    def registered_and_never_lost() -> bool:
        # sweeping while the new process starts must neither lose nor restart it again
        assert rsh.detect_lost_workers(restart_local_workers=True) == []
        assert rsh.processes[worker_id] is new
        return pids(rsh)[worker_id] == new.pid

    wait_until(registered_and_never_lost, SLOW, interval=0.05, message="the new registration")
    assert bool(rsh.worker_info["heartbeat"][0])
    assert rsh.connector.exists(rsh.keys.heartbeat(worker_id))
    assert states(rsh) == {worker_id: "running"}


def test_restart_runs_the_workers_own_loop_not_the_latest(rsh, tmp_path):
    first = rsh.start_local_workers(worker_loop=loops.wl_crash_once, n_workers=1,
                                    marker_dir=str(tmp_path), pause=0.01)
    wait_until(lambda: all_exited(rsh, first), SLOW, message="the worker to die")
    rsh.start_local_workers(worker_loop=loops.wl_log_message, n_workers=1)  # newer start args
    rsh.detect_lost_workers()

    rsh.restart_workers(first)

    wait_until(lambda: rsh.n_finished_tasks > 0, SLOW, message="the random search to run again")
    assert set(rsh.fetch_finished_tasks()["worker_id"]) == set(first)


def test_detect_lost_workers_can_restart_local_workers(rsh, tmp_path):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_crash_once, n_workers=2,
                                         marker_dir=str(tmp_path))
    wait_until(lambda: all_exited(rsh, worker_ids), SLOW, message="the workers to die")

    assert sorted(rsh.detect_lost_workers(restart_local_workers=True)) == sorted(worker_ids)

    assert set(states(rsh).values()) == {"running"}
    wait_until(lambda: pids(rsh) == {w: rsh.processes[w].pid for w in worker_ids}, SLOW,
               message="the restarted workers to register")
    assert rsh.detect_lost_workers() == []


def test_stop_right_after_start_reaches_workers_still_starting(rsh):
    starting = rsh.start_local_workers(worker_loop=loops.wl_sleep_until_terminated, n_workers=2)
    rsh.stop_workers(type="terminate")  # before they registered
    wait_until(lambda: rsh.n_terminated_workers == 2, SLOW, message="2 terminated workers")
    assert sorted(rsh.terminated_worker_ids) == sorted(starting)

    victim = rsh.start_local_workers(worker_loop=loops.wl_sleep_until_terminated, n_workers=1)[0]
    rsh.stop_workers(worker_ids=victim)  # kill, registered or not
    assert rsh.processes[victim].returncode is not None
    assert states(rsh)[victim] == "killed"
    assert pids(rsh)[victim] == rsh.processes[victim].pid
    assert rsh.running_worker_ids == []
