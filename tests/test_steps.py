"""One round trip per worker step: ``finish_and_pop_task``, ``fail_and_pop_task`` and
``finish_and_push_running_tasks`` do what the two calls they stand for do, in one atomic
script call (``move_and_claim.lua``, ``move_and_create.lua``)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

import loops
import rush
from conftest import rush_warnings, wait_until
from rush import WorkerStoppedError
from rush.errors import RushValueTooLargeError
from rush.serialization import MAGIC, dumps
from rush.states import TaskState, WorkerState
from rush.store import TaskStore

KILLED = {"message": "Worker was killed"}
SLOW = 60


@pytest.fixture
def store(config, network_id):
    s = TaskStore.connect(network_id, config)
    yield s
    s.close()


def snapshot(rsh) -> dict:
    """Every task's state and fields: what "changes nothing" compares."""
    return {"keys": rsh._store.keys_in(list(TaskState), own_queues=True),
            "tasks": rsh.fetch_tasks().to_dict("records") if rsh.n_tasks else []}


# -- queue steps -------------------------------------------------------------------------

def test_finish_and_pop_task_finishes_then_pops_in_one_call(rsh, worker, store):
    keys = rsh.push_tasks([{"x": i} for i in range(3)], seeds=[7, 8, 9])
    task = worker.pop_task(timeout=0)
    seen = []
    while task is not None:
        seen.append((task["key"], task["xs"]["x"], task["seed"]))
        task = worker.finish_and_pop_task(task["key"], [{"y": task["xs"]["x"] * 10}],
                                          timeout=0)
    assert seen == [(k, i, 7 + i) for i, k in enumerate(keys)]
    assert rsh.finished_tasks == keys and not rsh.running_tasks and not rsh.queued_tasks
    done = rsh.fetch_finished_tasks()
    assert done["y"].tolist() == [0, 10, 20]
    assert set(done["worker_id"]) == {worker.worker_id}
    assert store.client.scard(rsh.keys.worker_running(worker.worker_id)) == 0


def test_finish_and_pop_task_serves_the_own_queue_first_and_waits_in_redis(rsh, worker):
    first = rsh.push_tasks([{"x": 1}])[0]
    task = worker.pop_task(timeout=0)
    own = rsh.push_priority_tasks([{"x": 2}], priority=[worker.worker_id])[0]
    rsh.push_tasks([{"x": 3}])
    assert worker.finish_and_pop_task(task["key"], [{"y": 1}], timeout=0)["key"] == own

    later: list[str] = []
    timer = threading.Timer(0.3, lambda: later.extend(rsh.push_tasks([{"x": 4}])))
    worker.pop_task(timeout=0)  # empties the queue
    running = rsh.running_tasks
    timer.start()
    try:
        t0 = time.monotonic()
        got = worker.finish_and_pop_task(running, [{"y": 0}] * len(running), timeout=10)
    finally:
        timer.join()
    assert got is not None and got["key"] == later[0] and time.monotonic() - t0 < 10
    assert first in rsh.finished_tasks and set(running) <= set(rsh.finished_tasks)


def test_finish_and_pop_task_returns_at_once_when_told_to_leave_on_idle(rsh, worker):
    rsh.push_tasks([{"x": 1}], terminate_workers=True)
    task = worker.pop_task(timeout=0)
    t0 = time.monotonic()
    assert worker.finish_and_pop_task(task["key"], [{"y": 1}], timeout=30) is None
    assert time.monotonic() - t0 < 10 and worker.terminated_on_idle
    assert rsh.n_finished_tasks == 1


def test_fail_and_pop_task(rsh, worker):
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}, {"x": 3}])
    task = worker.pop_task(timeout=0)
    task = worker.fail_and_pop_task(task["key"], [{"message": "boom"}], timeout=0)
    assert task["key"] == keys[1]
    task = worker.fail_and_pop_task(task["key"], timeout=0)
    assert task["key"] == keys[2]
    failed = rsh.fetch_failed_tasks().set_index("keys")
    assert failed.loc[keys[0], "condition"] == {"message": "boom"}
    assert failed.loc[keys[1], "condition"] == {"message": "Task failed"}
    assert rsh.running_tasks == [keys[2]]


def test_a_step_counts_attempts_and_sets_deadlines_like_pop_task(rsh, worker, store):
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}], max_retries=2, timeouts=30)
    task = worker.pop_task(timeout=0, fields=("xs", "attempts"))
    task = worker.finish_and_pop_task(task["key"], [{"y": 1}], timeout=0,
                                      fields=("xs", "attempts"))
    assert task["key"] == keys[1] and task["attempts"] == 1
    key, left = store.next_deadline(worker.worker_id)
    assert key in keys and 0 < left <= 30


def test_a_step_of_a_stopped_worker_is_refused_and_changes_nothing(rsh, worker, store, caplog):
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}])
    task = worker.pop_task(timeout=0)
    store.stop_worker(worker.worker_id, WorkerState.KILLED, KILLED)
    before = snapshot(rsh)
    with pytest.raises(WorkerStoppedError):
        worker.finish_and_pop_task(task["key"], [{"y": 1}], timeout=0)
    with pytest.raises(WorkerStoppedError):
        worker.fail_and_pop_task(task["key"], timeout=0)
    with pytest.raises(WorkerStoppedError):
        worker.finish_and_push_running_tasks(task["key"], [{"y": 1}], [{"x": 3}])
    assert snapshot(rsh) == before
    assert rsh.failed_tasks == [keys[0]] and rsh.queued_tasks == [keys[1]]
    assert any("no longer runs" in r.getMessage() for r in rush_warnings(caplog))


def test_a_refused_queue_step_puts_the_pending_keys_back(rsh, worker, store):
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}])
    wid, inc = worker.worker_id, worker.incarnation
    running = worker.pop_task(timeout=0)["key"]
    assert store.pop_to_pending(wid, 1) == keys[1]  # a blocking pop's first step
    store.client.hset(rsh.keys.worker_states, wid, "lost")  # lost between its two steps
    with pytest.raises(WorkerStoppedError):
        store.move_and_claim(TaskState.FINISHED, [running], ("ys",), [[dumps({"y": 1})]],
                             wid, inc, ("xs",), "s1")
    assert rsh.queued_tasks == [keys[1]] and rsh.running_tasks == [running]


def test_a_resent_queue_step_gets_its_first_reply(rsh, worker, store):
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}, {"x": 3}])
    wid, inc = worker.worker_id, worker.incarnation
    first = worker.pop_task(timeout=0)["key"]
    row = [[dumps({"y": 1})]]
    one = store.move_and_claim(TaskState.FINISHED, [first], ("ys",), row, wid, inc, ("xs",), "s1")
    two = store.move_and_claim(TaskState.FINISHED, [first], ("ys",), row, wid, inc, ("xs",), "s1")
    assert one[1].key == two[1].key == keys[1] and one[1].values == two[1].values
    assert one[0].skipped == two[0].skipped == []
    assert rsh.finished_tasks == [first] and rsh.running_tasks == [keys[1]]
    assert rsh.queued_tasks == [keys[2]]


# -- decentralized steps -----------------------------------------------------------------

def test_finish_and_push_running_tasks_chains_tasks(rsh, worker, store):
    keys = worker.push_running_tasks([{"x": 0}])
    made = [keys[0]]
    for i in range(1, 4):
        keys = worker.finish_and_push_running_tasks(keys, [{"y": i - 1}], [{"x": i}],
                                                    xss_extra=[{"note": i}])
        made += keys
    assert rsh.running_tasks == [made[-1]] and rsh.finished_tasks == made[:-1]
    assert rsh.tasks == made
    running = rsh.fetch_running_tasks()
    assert running["note"].tolist() == [3] and running["worker_id"].tolist() == [worker.worker_id]
    worker.finish_tasks(keys, [{"y": 3}])
    assert rsh.fetch_finished_tasks()["y"].tolist() == [0, 1, 2, 3]
    assert store.client.scard(rsh.keys.worker_running(worker.worker_id)) == 0


def test_a_step_discards_results_of_tasks_not_running(rsh, worker, caplog):
    keys = worker.push_running_tasks([{"x": 1}])
    worker.finish_tasks(keys, [{"y": 1}])
    new = worker.finish_and_push_running_tasks(keys, [{"y": 2}], [{"x": 2}])
    assert rsh.running_tasks == new
    assert rsh.fetch_finished_tasks()["y"].tolist() == [1]  # first writer wins
    assert any("first writer wins" in r.getMessage() for r in rush_warnings(caplog))


def test_a_step_reports_the_terminate_flag(rsh, worker):
    keys = worker.push_running_tasks([{"x": 1}])
    rsh.stop_workers(type="terminate")
    keys = worker.finish_and_push_running_tasks(keys, [{"y": 1}], [{"x": 2}])
    assert worker.terminated


def test_a_resent_decentralized_step_writes_nothing_twice(rsh, worker, store):
    wid, inc = worker.worker_id, worker.incarnation
    keys = worker.push_running_tasks([{"x": 1}])
    args = (TaskState.FINISHED, keys, ("ys",), [[dumps({"y": 1})]], ["k-next"], ("xs",),
            [[dumps({"x": 2})]], wid, inc)
    moved, created = store.move_and_create(*args)
    again = store.move_and_create(*args)
    assert (moved.skipped, created.skipped) == ([], [])
    assert (again[0].skipped, again[1].skipped) == ([], ["k-next"])
    assert rsh.tasks.count("k-next") == 1 and rsh.running_tasks == ["k-next"]
    assert rsh.finished_tasks == keys


def test_steps_too_large_for_one_call_go_as_two_calls(rsh, worker, monkeypatch):
    monkeypatch.setattr(rush.store, "MAX_CALL_ARGS", 4)  # a row of 3 values per call
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}])
    new = worker.finish_and_push_running_tasks(keys, [{"y": 1}, {"y": 2}], [{"x": 3}] * 2)
    assert rsh.finished_tasks == keys and sorted(rsh.running_tasks) == sorted(new)
    rsh.push_tasks([{"x": 4}])
    task = worker.finish_and_pop_task(new, [{"y": 3}, {"y": 4}], timeout=0)
    assert task["xs"] == {"x": 4} and len(rsh.finished_tasks) == 4


# -- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("call, error", [
    (lambda w, k: w.finish_and_pop_task(k, [{"y": 1}, {"y": 2}, {"y": 3}]), ValueError),
    (lambda w, k: w.finish_and_pop_task(k, [1]), TypeError),
    (lambda w, k: w.finish_and_pop_task(k, [{"y": 1}], timeout=-1), ValueError),
    (lambda w, k: w.finish_and_pop_task(k, [{"y": 1}], fields=[3]), TypeError),
    (lambda w, k: w.finish_and_pop_task(k, [{"y": threading.Lock()}]), TypeError),
    (lambda w, k: w.fail_and_pop_task(k, ["boom"]), TypeError),
    (lambda w, k: w.finish_and_push_running_tasks(k, [{"y": 1}], [{"x": threading.Lock()}]), TypeError),
    (lambda w, k: w.finish_and_push_running_tasks(k, [{"y": 1}], {"x": 1}), TypeError),
    (lambda w, k: w.finish_and_push_running_tasks(k, [{"y": 1}], [{"x": 1}],
                                                  xss_extra=[{}, {}]), ValueError),
])
def test_bad_input_to_a_step_changes_nothing(rsh, worker, call, error):
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}])
    rsh.push_tasks([{"x": 3}])
    before = snapshot(rsh)
    with pytest.raises(error):
        call(worker, keys)
    assert snapshot(rsh) == before


def test_a_value_too_large_for_redis_is_refused_by_a_step_and_changes_nothing(rsh, worker):
    keys = worker.push_running_tasks([{"x": 1}])
    rsh.push_tasks([{"x": 2}])
    before = snapshot(rsh)
    worker._store.max_value_bytes = 200  # stands for Redis's 512 MiB
    big = {"blob": "x" * 500}
    with pytest.raises(RushValueTooLargeError, match="nothing was written"):
        worker.finish_and_pop_task(keys, [big], timeout=0)
    with pytest.raises(RushValueTooLargeError, match="'xs'"):
        worker.finish_and_push_running_tasks(keys, [{"y": 1}], [big])
    assert snapshot(rsh) == before


# -- signed mode -------------------------------------------------------------------------

def test_steps_sign_what_they_write_and_check_what_they_read(config, network_id):
    signed = replace(config, secret="steps-secret")
    with rush.rsh(network_id, config=signed) as ctl, \
            rush.RushWorker(network_id, config=signed) as w:
        try:
            ctl.push_tasks([{"x": 1}, {"x": 2}])
            task = w.pop_task(timeout=0)
            task = w.finish_and_pop_task(task["key"], [{"y": 1}], timeout=0)
            assert task["xs"] == {"x": 2}
            task = w.fail_and_pop_task(task["key"], timeout=0)
            keys = w.finish_and_push_running_tasks(w.push_running_tasks([{"x": 3}]),
                                                   [{"y": 3}], [{"x": 4}])
            raw = ctl._store.client
            for key in ctl.tasks:
                for value in raw.hmget(ctl.keys.task(key), ["xs", "ys", "condition"]):
                    assert value is None or value.startswith(MAGIC)
            assert sorted(ctl.fetch_finished_tasks()["y"]) == [1, 3]
            assert ctl.fetch_running_tasks()["keys"].tolist() == keys
            # a payload moved to another task is refused when a step pops it
            ctl.push_tasks([{"x": 5}])
            queued = ctl.queued_tasks[0]
            raw.hset(ctl.keys.task(queued), "xs", raw.hget(ctl.keys.task(keys[0]), "xs"))
            with pytest.raises(rush.RushSecurityError):
                w.finish_and_pop_task(keys, [{"y": 4}], timeout=0)
        finally:
            ctl.reset()


# -- real workers ------------------------------------------------------------------------

def test_local_workers_run_the_step_loops(rsh):
    keys = rsh.push_tasks([{"x": i} for i in range(60)], terminate_workers=True)
    ids = rsh.start_local_workers(worker_loop=loops.wl_step_queue, n_workers=2)
    wait_until(lambda: rsh.n_finished_tasks == 60, SLOW, message="60 finished tasks")
    wait_until(lambda: rsh.n_terminated_workers == 2, SLOW, message="2 terminated workers")
    done = rsh.fetch_finished_tasks()
    assert sorted(done["keys"]) == sorted(keys) and set(done["by"]) <= set(ids)
    assert (done["y"] == done["x"] ** 2).all()
    assert not rsh.running_tasks and not rsh.queued_tasks and not rsh.failed_tasks

    more = rsh.start_local_workers(worker_loop=loops.wl_step_count_up, n_workers=2,
                                   n=100)
    wait_until(lambda: rsh.n_terminated_workers == 4, SLOW, message="4 terminated workers")
    counted = rsh.fetch_finished_tasks()
    counted = counted[counted["worker_id"].isin(more)]
    assert len(counted) >= 40 and (counted["y"] == counted["x"] ** 2).all()
    assert not rsh.running_tasks and not rsh.failed_tasks


def test_a_stopped_local_worker_leaves_its_step_loop(rsh):
    rsh.push_tasks([{"x": i} for i in range(5)])
    (wid,) = rsh.start_local_workers(worker_loop=loops.wl_step_queue, n_workers=1)
    wait_until(lambda: rsh.n_finished_tasks == 5, SLOW, message="5 finished tasks")
    rsh.stop_workers(type="kill")
    wait_until(lambda: rsh.processes[wid].poll() is not None, SLOW, message="the worker to exit")
    rsh.push_tasks([{"x": 9}])
    assert rsh.n_queued_tasks == 1 and rsh.killed_worker_ids == [wid]
