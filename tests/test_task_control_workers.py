"""Task control (SPEC §10) with real worker processes that crash, hang and get killed:
reproducible seeds across worker counts, retries and poison tasks, timeouts found by the
controller and by the heartbeat, priority queues of a killed worker, idle termination,
buffered logs, and a chaos run with retries under random SIGKILLs."""

from __future__ import annotations

import os
import random
import signal
import time
from contextlib import contextmanager

import pytest

import loops
import rush
from conftest import wait_until
from rush.states import LOST_MESSAGE
from worker_helpers import SLOW, kill_at_random_until_settled, pids, states

CONTROL = ["xs", "ys", "attempts", "worker_id", "condition"]


def crashes(tmp_path) -> list[str]:
    path = tmp_path / "crashes"
    return path.read_text().splitlines() if path.exists() else []


def condition(rsh, key: str) -> dict:
    return rsh.read_hash(key, "condition")["condition"]


@contextmanager
def second_network(rsh, config, **kwargs):
    """Another controller on a network of its own, reset afterwards."""
    other = rush.rsh(f"{rsh.network_id}-b", config=config, **kwargs)
    try:
        yield other
    finally:
        other.reset()
        other.close()


# -- seeds ---------------------------------------------------------------------------


def test_same_seed_same_results_whatever_the_workers(config, network_id):
    results = []
    for n_workers in (1, 3):
        controller = rush.rsh(f"{network_id}-{n_workers}", config=config, seed=11)
        try:
            controller.start_local_workers(loops.wl_seeded_queue, n_workers=n_workers)
            controller.wait_for_workers(n_workers, timeout=SLOW)  # all share the queue
            controller.push_tasks([{"x": i, "sleep": 0.01} for i in range(30)],
                                  terminate_workers=True)
            wait_until(lambda: controller.n_terminated_workers == n_workers, SLOW,
                       message=f"{n_workers} worker(s) to drain the queue")
            done = controller.fetch_finished_tasks(fields=["xs", "ys", "seed", "worker_id"])
            assert len(done) == 30
            if n_workers == 3:
                assert done["worker_id"].nunique() > 1  # several workers shared the tasks
            results.append(done.sort_values("x")[["x", "seed", "y"]].reset_index(drop=True))
        finally:
            controller.reset()
            controller.close()
    assert results[0].equals(results[1])
    assert results[0]["y"].nunique() == 30


# -- retries and poison tasks --------------------------------------------------------


def test_a_sigkilled_workers_task_is_retried_by_its_restart(rsh, tmp_path):
    release = tmp_path / "release"
    key = rsh.push_tasks([{"x1": 1.0, "x2": 2.0}], max_retries=1)[0]
    worker_id = rsh.start_local_workers(loops.wl_pop_and_block, n_workers=1,
                                        release=str(release))[0]
    wait_until(lambda: rsh.n_running_tasks == 1, SLOW, message="the worker inside the task")
    old = rsh.processes[worker_id]

    os.kill(old.pid, signal.SIGKILL)
    wait_until(lambda: old.poll() is not None, SLOW, message="the kill")
    assert rsh.detect_lost_workers(restart_local_workers=True) == [worker_id]

    assert rsh.read_hash(key, ["attempts", "condition"]) == {"attempts": 1, "condition": None}
    release.touch()
    wait_until(lambda: rsh.n_finished_tasks == 1, SLOW, message="the restarted worker's result")
    done = rsh.fetch_finished_tasks(fields=CONTROL)
    assert done[["attempts", "worker_id"]].values.tolist() == [[2, worker_id]]
    assert rsh.processes[worker_id].pid != old.pid
    assert rsh.n_failed_tasks == 0


@pytest.mark.parametrize("poison, message", [
    ({"crash": True}, LOST_MESSAGE),
    ({"raise": True}, "RuntimeError: poison task"),
])
def test_a_poison_task_takes_down_max_retries_plus_one_workers(rsh, tmp_path, poison, message):
    poisoned = rsh.push_tasks([{"x": 0, **poison}], max_retries=2)[0]
    healthy = rsh.push_tasks([{"x": i} for i in range(1, 6)], max_retries=2,
                             terminate_workers=True)
    worker_ids = rsh.start_local_workers(loops.wl_task_queue, n_workers=2,
                                         log_dir=str(tmp_path))

    def settled() -> bool:
        rsh.detect_lost_workers(restart_local_workers=True)
        return rsh.n_finished_tasks + rsh.n_failed_tasks == 6

    wait_until(settled, 90, interval=0.1, message="every task to end")
    assert len(crashes(tmp_path)) == 3  # the first attempt and 2 retries, never more
    assert rsh.failed_tasks == [poisoned]
    assert condition(rsh, poisoned)["message"].startswith(f"Task failed after 3 attempts: {message}")
    assert rsh.read_hash(poisoned, "attempts") == {"attempts": 3}
    assert sorted(rsh.finished_tasks) == sorted(healthy)

    def left_on_idle() -> bool:
        rsh.detect_lost_workers(restart_local_workers=True)  # the last crash's restart
        return rsh.n_terminated_workers == 2

    wait_until(left_on_idle, SLOW, interval=0.1, message="the workers to leave on idle")
    assert sorted(rsh.terminated_worker_ids) == sorted(worker_ids)


# -- timeouts --------------------------------------------------------------------------


def test_a_hanging_task_is_timed_out_by_detect_lost_workers(rsh, tmp_path):
    hang, later = rsh.push_tasks([{"x": 1, "hang": True}, {"x": 2}], timeouts=0.5,
                                 terminate_workers=True)
    worker_id = rsh.start_local_workers(loops.wl_task_queue, n_workers=1)[0]
    wait_until(lambda: rsh.n_running_tasks == 1, SLOW, message="the hanging task")
    old = rsh.processes[worker_id]

    lost = wait_until(lambda: rsh.detect_lost_workers(restart_local_workers=True), SLOW,
                      interval=0.1, message="the timeout")

    assert lost == [worker_id]
    assert old.poll() is not None  # killed through its process handle
    assert rsh.failed_tasks == [hang]
    assert condition(rsh, hang) == {"message": "Task timed out after 0.5 s"}
    new = rsh.processes[worker_id]
    assert new.pid != old.pid  # restarted
    wait_until(lambda: rsh.n_finished_tasks == 1, SLOW, message="the next task on the restart")
    assert rsh.finished_tasks == [later]
    wait_until(lambda: states(rsh) == {worker_id: "terminated"}, SLOW, message="idle end")


def test_the_heartbeat_times_out_a_task_with_no_controller_call(rsh):
    hang = rsh.push_tasks([{"x": 1, "hang": True}], timeouts=1.0)[0]
    worker_id = rsh.start_local_workers(loops.wl_task_queue, n_workers=1,
                                        heartbeat_period=0.3)[0]
    wait_until(lambda: rsh.n_running_tasks == 1, SLOW, message="the hanging task")
    started = time.monotonic()
    process = rsh.processes[worker_id]

    # no detect_lost_workers(): only reads until the task fails
    wait_until(lambda: rsh.n_failed_tasks == 1, SLOW, message="the heartbeat's timeout")
    late = time.monotonic() - started - 1.0
    assert late < 1.0 + 3.0  # max(1 s, period), plus slack for a busy machine
    assert condition(rsh, hang) == {"message": "Task timed out after 1 s"}
    assert states(rsh) == {worker_id: "lost"}
    wait_until(lambda: process.poll() is not None, SLOW, message="the heartbeat's SIGKILL")
    assert process.returncode == -signal.SIGKILL

    # found lost by its heartbeat, not by this call; restarted all the same
    assert rsh.detect_lost_workers(restart_local_workers=True) == []
    assert rsh.processes[worker_id].pid != process.pid
    wait_until(lambda: pids(rsh)[worker_id] == rsh.processes[worker_id].pid, SLOW,
               message="the restart to register")
    assert states(rsh) == {worker_id: "running"}


def test_a_timed_out_task_is_retried_then_fails(rsh):
    hang = rsh.push_tasks([{"x": 1, "hang": True}], timeouts=0.5, max_retries=1)[0]
    rsh.start_local_workers(loops.wl_task_queue, n_workers=1, heartbeat_period=0.25)

    def failed() -> bool:
        rsh.detect_lost_workers(restart_local_workers=True)
        return rsh.n_failed_tasks == 1

    wait_until(failed, 60, interval=0.1, message="the second timeout")
    assert condition(rsh, hang) == {
        "message": "Task failed after 2 attempts: Task timed out after 0.5 s"}
    assert rsh.read_hash(hang, "attempts") == {"attempts": 2}


# -- priority queues ---------------------------------------------------------------------


def test_a_killed_workers_own_queue_is_run_by_another_worker(rsh, tmp_path):
    first, second = rsh.start_local_workers(loops.wl_task_queue, n_workers=2)
    rsh.wait_for_workers(2, timeout=SLOW)
    hang, *waiting = rsh.push_priority_tasks([{"x": 0, "hang": True}, {"x": 1}, {"x": 2}],
                                             priority=[first] * 3)
    wait_until(lambda: rsh.n_running_tasks == 1, SLOW, message="the first worker's task")
    assert rsh.n_queued_priority_tasks == 2
    assert rsh.fetch_running_tasks()["worker_id"].tolist() == [first]

    os.kill(rsh.processes[first].pid, signal.SIGKILL)
    wait_until(lambda: rsh.detect_lost_workers() == [first], SLOW, interval=0.1,
               message="the kill to be found")

    assert rsh.failed_tasks == [hang] and rsh.n_queued_priority_tasks == 0
    wait_until(lambda: rsh.n_finished_tasks == 2, SLOW, message="the second worker")
    done = rsh.fetch_finished_tasks(fields=CONTROL)
    assert sorted(done["keys"]) == sorted(waiting) and set(done["by"]) == {second}


# -- idle termination ----------------------------------------------------------------------


def test_workers_leave_once_the_queue_is_empty(rsh):
    rsh.push_tasks([{"x": i, "sleep": 0.01} for i in range(20)], terminate_workers=True)
    worker_ids = rsh.start_local_workers(loops.wl_task_queue, n_workers=2)
    wait_until(lambda: rsh.n_terminated_workers == 2, SLOW, message="both workers to leave")
    assert rsh.n_finished_tasks == 20 and rsh.n_queued_tasks == 0
    for worker_id in worker_ids:
        rsh.processes[worker_id].wait(SLOW)
        assert rsh.processes[worker_id].returncode == 0


# -- logs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("buffer_size, stored_while_blocked", [(3, 0), (2, 3), (0, 3)])
def test_the_log_buffer_holds_n_records_and_writes_them_with_the_next(
        rsh, tmp_path, buffer_size, stored_while_blocked):
    release = tmp_path / "release"
    rsh.start_local_workers(loops.wl_log_then_block, n_workers=1, release=str(release),
                            lgr_thresholds={"rush": "info"}, lgr_buffer_size=buffer_size)
    wait_until(lambda: rsh.n_running_tasks == 1, SLOW, message="the worker inside its task")

    def buffered() -> int:
        log = rsh.read_log()
        return int(log["msg"].str.startswith("buffered ").sum())

    assert buffered() == stored_while_blocked
    release.touch()
    wait_until(lambda: rsh.n_terminated_workers == 1, SLOW, message="the worker's exit")
    assert buffered() == 3  # the rest are written at exit


# -- chaos -----------------------------------------------------------------------------------


@pytest.mark.timeout(240)  # about 20 s on 2 idle cores, 30 s on 2 busy ones
def test_chaos_retries_under_random_sigkills_settle_every_task_once(rsh, tmp_path):
    """2,000 tasks with max_retries=2 (a few of them poison) while local workers are
    SIGKILLed at random and the lost ones restarted: every task ends finished, or failed
    after exactly 3 attempts, and no task is ever in two states."""
    rng = random.Random(20240611)
    n, poison = 2000, set(range(0, 2000, 250))
    keys = rsh.push_tasks([{"x": i, "sleep": 0.004, **({"crash": True} if i in poison else {})}
                           for i in range(n)], max_retries=2)
    rsh.start_local_workers(loops.wl_task_queue, n_workers=4, log_dir=str(tmp_path))
    kills = kill_at_random_until_settled(rsh, n, rng, every=0.25, timeout=200)

    snapshot = rsh.tasks_with_state()
    assert snapshot["queued"] == [] and snapshot["running"] == []
    assert sorted(snapshot["finished"] + snapshot["failed"]) == sorted(keys)
    tasks = rsh.fetch_tasks_with_state(fields=CONTROL)
    assert len(tasks) == n and tasks["keys"].is_unique
    finished = tasks[tasks["state"] == "finished"]
    failed = tasks[tasks["state"] == "failed"]
    assert set(finished["attempts"]) <= {1, 2, 3}
    assert (failed["attempts"] == 3).all()
    assert all(c["message"].startswith("Task failed after 3 attempts: ")
               for c in failed["condition"])
    assert set(failed["x"]) >= poison  # every poison task failed after its 3 attempts
    assert (finished["attempts"] > 1).any()  # the random kills hit running tasks
    assert kills > 5
