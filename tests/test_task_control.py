"""Task control (SPEC §10) with in-process workers: seeds, retries, priority queues, idle
termination, the R API's remaining rows, and bad input. The same features with real
worker processes that crash, hang and get killed are in ``test_task_control_workers``."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

import rush
from conftest import wait_until
from test_core_bad_input import snapshot, unchanged

CONTROL = ["xs", "seed", "timeout", "max_retries", "attempts", "worker_id", "condition"]


def control(rsh, key: str) -> dict:
    return rsh.read_hash(key, CONTROL)


# -- seeds ---------------------------------------------------------------------------


def test_a_controller_seed_gives_every_task_a_reproducible_seed(rsh, config):
    seeded = rush.rsh(rsh.network_id, config=config, seed=7)
    first = seeded.push_tasks([{"x": i} for i in range(3)])
    later = seeded.push_tasks([{"x": 3}])
    seeds = [control(rsh, k)["seed"] for k in first + later]
    assert all(isinstance(s, int) and 0 <= s < 2 ** 63 for s in seeds)
    assert len(set(seeds)) == 4

    # the same seed gives the same seeds, task by task, in any network; another does not
    again = rush.rsh(f"{rsh.network_id}-again", config=config, seed=7)
    other = rush.rsh(f"{rsh.network_id}-other", config=config, seed=8)
    try:
        assert [control(again, k)["seed"] for k in again.push_tasks([{"x": i} for i in range(4)])] \
            == seeds
        assert not set(control(other, k)["seed"] for k in other.push_tasks([{"x": 0}])) & set(seeds)
        assert again.seed == 7 and rsh.seed is None
    finally:
        for c in (again, other, seeded):
            c.reset()
            c.close()


def test_explicit_seeds_and_pop_task_returns_them(rsh, worker):
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}], seeds=[5, 2 ** 40])
    unseeded = rsh.push_tasks([{"x": 3}])
    assert worker.pop_task(timeout=0) == {"key": keys[0], "xs": {"x": 1}, "seed": 5}
    assert worker.pop_task(timeout=0, fields=["xs", "seed"])["seed"] == 2 ** 40
    assert worker.pop_task(timeout=0) == {"key": unseeded[0], "xs": {"x": 3}}  # no seed: none


def test_task_seed_seeds_random_and_numpy_and_restores_them():
    random.seed(1)
    np.random.seed(1)
    outside = (random.random(), np.random.random())
    random.seed(1)
    np.random.seed(1)
    with rush.task_seed(123):
        first = (random.random(), np.random.random())
    assert (random.random(), np.random.random()) == outside  # the states were restored
    with rush.task_seed(123):
        assert (random.random(), np.random.random()) == first
    np.random.seed(123)
    assert np.random.random() == first[1]  # a small seed seeds numpy as numpy.random.seed
    with rush.task_seed(2 ** 62 + 1):
        big = (random.random(), np.random.random())
    with rush.task_seed(2 ** 62 + 1):
        assert (random.random(), np.random.random()) == big != first
    with rush.task_seed(None):  # a task without a seed: nothing changes
        pass
    with pytest.raises(TypeError, match="seed"):
        with rush.task_seed(1.5):
            pass


# -- retries -------------------------------------------------------------------------


def test_a_killed_workers_task_goes_back_to_the_queue_until_its_last_attempt(rsh, make_worker):
    key, plain = rsh.push_tasks([{"x": 1}, {"x": 2}], max_retries=[2, 0])
    for attempt in (1, 2, 3):
        worker = make_worker()
        assert worker.pop_task(timeout=0)["key"] == key
        assert control(rsh, key)["attempts"] == attempt
        rsh.stop_workers(worker_ids=worker.worker_id)  # no process: marked killed at once
        if attempt < 3:
            assert rsh.queued_tasks[0] == key  # back at the head of the queue
            assert control(rsh, key)["worker_id"] is None and rsh.n_failed_tasks == 0
    assert rsh.failed_tasks == [key]
    assert control(rsh, key)["condition"] == {
        "message": "Task failed after 3 attempts: Worker was killed"}
    failed = rsh.fetch_failed_tasks(fields=["xs", "attempts", "condition"])
    assert failed["attempts"].tolist() == [3]

    # max_retries=0: one attempt, then the usual failure
    worker = make_worker()
    assert worker.pop_task(timeout=0)["key"] == plain
    rsh.stop_workers(worker_ids=worker.worker_id)
    assert set(rsh.failed_tasks) == {key, plain}
    assert control(rsh, plain)["condition"] == {
        "message": "Task failed after 1 attempts: Worker was killed"}


def test_a_crashed_loop_retries_with_its_message(rsh, make_worker):
    key = rsh.push_tasks([{"x": 1}], max_retries=1)[0]
    for _ in range(2):
        worker = make_worker()
        worker.pop_task(timeout=0)
        try:
            raise ValueError("bad x")
        except ValueError as e:
            worker.record_crash(e)  # what the worker process does when its loop raises
    condition = control(rsh, key)["condition"]
    assert condition["message"] == "Task failed after 2 attempts: ValueError: bad x"
    assert condition["type"] == "ValueError" and "bad x" in condition["traceback"]


def test_a_task_finished_on_a_retry_counts_its_attempts(rsh, make_worker):
    key = rsh.push_tasks([{"x": 1}], max_retries=3)[0]
    first = make_worker()
    first.pop_task(timeout=0)
    rsh.stop_workers(worker_ids=first.worker_id)
    second = make_worker()
    second.finish_tasks(second.pop_task(timeout=0)["key"], [{"y": 1}])
    done = rsh.fetch_finished_tasks(fields=["xs", "ys", "attempts", "worker_id"])
    assert done[["y", "attempts", "worker_id"]].values.tolist() == [[1, 2, second.worker_id]]
    # tasks without retries have no attempts column (it is a column only when some has it)
    rsh.push_tasks([{"x": 2}])
    assert list(rsh.fetch_queued_tasks(fields=["xs", "attempts"]).columns) == ["x", "keys"]


def test_a_loop_failing_its_own_task_is_not_retried(rsh, worker):
    key = rsh.push_tasks([{"x": 1}], max_retries=5)[0]
    worker.fail_tasks(worker.pop_task(timeout=0)["key"], [{"message": "infeasible"}])
    assert rsh.failed_tasks == [key]
    assert control(rsh, key)["condition"] == {"message": "infeasible"}


# -- priority queues -----------------------------------------------------------------


def test_priority_tasks_go_to_their_workers_own_queue(rsh, make_worker):
    a, b = make_worker(), make_worker()
    gone = make_worker()
    gone.set_terminated()
    shared = rsh.push_tasks([{"x": 0}])
    keys = rsh.push_priority_tasks([{"x": 1}, {"x": 2}, {"x": 3}, {"x": 4}, {"x": 5}],
                                   priority=[a.worker_id, b.worker_id, a.worker_id,
                                             gone.worker_id, None])
    assert rsh.n_queued_priority_tasks == 3
    assert sorted(rsh.fetch_priority_tasks()["x"]) == [1, 2, 3]
    assert rsh.queued_tasks == shared + keys[3:]  # a worker not running, or None: shared
    assert sorted(rsh.tasks_with_state()["queued"]) == sorted(shared + keys)
    assert sorted(rsh.fetch_tasks_with_state(states="queued")["x"]) == [0, 1, 2, 3, 4, 5]

    # a worker serves its own queue first, in order; then the shared queue
    assert [a.pop_task(timeout=0)["xs"]["x"] for _ in range(3)] == [1, 3, 0]
    assert b.pop_task(timeout=0)["xs"] == {"x": 2}
    assert rsh.n_queued_priority_tasks == 0 and rsh.fetch_priority_tasks().empty


def test_a_stopped_workers_own_queue_goes_to_the_shared_queue(rsh, make_worker):
    killed, ended, other = make_worker(), make_worker(), make_worker()
    head = rsh.push_tasks([{"x": 0}])
    mine = rsh.push_priority_tasks([{"x": 1}, {"x": 2}], priority=[killed.worker_id] * 2)
    theirs = rsh.push_priority_tasks([{"x": 3}], priority=[ended.worker_id])
    rsh.stop_workers(worker_ids=killed.worker_id)
    assert rsh.queued_tasks == mine + head  # at the head, in their order
    ended.set_terminated()
    assert rsh.queued_tasks == theirs + mine + head
    assert rsh.n_queued_priority_tasks == 0
    assert [other.pop_task(timeout=0)["xs"]["x"] for _ in range(4)] == [3, 1, 2, 0]


def test_a_blocked_pop_task_sees_a_new_priority_task(rsh, worker):
    got: list = []
    thread = threading.Thread(target=lambda: got.append(worker.pop_task(timeout=10)))
    thread.start()
    wait_until(lambda: any(c["cmd"] == "blmove" for c in rsh.connector.client_list()),
               message="the pop to block on the shared queue")
    key = rsh.push_priority_tasks([{"x": 1}], priority=[worker.worker_id])[0]
    thread.join(10)
    assert not thread.is_alive() and got[0]["key"] == key


# -- idle termination ----------------------------------------------------------------


def test_terminate_workers_ends_a_queue_loop_once_the_queue_is_empty(rsh, worker):
    rsh.push_tasks([{"x": 1}])
    assert worker.terminated_on_idle is False  # no flag yet
    rsh.push_tasks([{"x": 2}], terminate_workers=True)
    assert worker.terminated_on_idle is False  # the queue is not empty
    done = 0
    while not worker.terminated_on_idle:
        task = worker.pop_task(timeout=5)
        if task is not None:
            worker.finish_tasks(task["key"], [{"y": 0}])
            done += 1
    assert done == 2 and worker.terminated is False
    began = time.monotonic()
    assert worker.pop_task(timeout=5) is None  # returns at once: nothing will come
    assert time.monotonic() - began < 4
    assert worker.terminated_on_idle is True


def test_terminate_on_idle_waits_for_the_workers_own_queue(rsh, worker):
    rsh.push_tasks([{"x": 1}], terminate_workers=True)
    assert worker.pop_task(timeout=0)["xs"] == {"x": 1}
    rsh.push_priority_tasks([{"x": 2}], priority=[worker.worker_id])
    assert worker.terminated_on_idle is False  # from the pop's reply
    assert worker.terminated_on_idle is False  # read afresh: the own queue holds a task
    assert worker.pop_task(timeout=0)["xs"] == {"x": 2}
    assert worker.pop_task(timeout=0) is None
    assert worker.terminated_on_idle is True


# -- the R API's remaining rows -------------------------------------------------------


def test_write_hashes_takes_any_values_and_read_hash_returns_fields(rsh):
    key = rsh.write_hashes(timeout=[1])
    assert rsh.read_hashes(key, "timeout") == [{"timeout": 1}]
    keys = rsh.write_hashes(xs=[{"x1": 1, "x2": 2}], timeout=[1], tags=[["a", "b"]],
                            blob=[np.arange(3)])
    assert rsh.read_hashes(keys, ["xs", "timeout"]) == [{"x1": 1, "x2": 2, "timeout": 1}]
    got = rsh.read_hash(keys[0], ["xs", "tags", "blob", "ys"])
    assert got["xs"] == {"x1": 1, "x2": 2} and got["tags"] == ["a", "b"] and got["ys"] is None
    assert got["blob"].tolist() == [0, 1, 2]
    rsh.write_hashes(keys, worker_id=["someone"], attempts=[2])
    assert rsh.read_hash(keys[0], ["worker_id", "attempts"]) == {"worker_id": "someone",
                                                                 "attempts": 2}


def test_write_hashes_bad_values_change_nothing(rsh):
    unchanged(rsh, lambda: rsh.write_hashes(xs=[5]), TypeError, "xs")
    unchanged(rsh, lambda: rsh.write_hashes(timeout=["soon"]), TypeError, "timeout")
    unchanged(rsh, lambda: rsh.write_hashes(timeout=1), TypeError, "timeout")
    unchanged(rsh, lambda: rsh.write_hashes(attempts=[1.5]), TypeError, "attempts")


def test_redis_info_and_snapshot_schedule(rsh):
    info = rsh.redis_info()
    assert isinstance(info, dict) and info["redis_version"] >= "6.2"
    before = rsh.snapshot_schedule
    try:
        rsh.snapshot_schedule = "60 1000"
        assert rsh.snapshot_schedule == "60 1000"
        rsh.snapshot_schedule = [300, 10, 60, 10000]
        assert rsh.snapshot_schedule == "300 10 60 10000"
        rsh.snapshot_schedule = ""
        assert rsh.snapshot_schedule == ""
        for bad, error in (("60", ValueError), ("sixty 1", ValueError), ([60, -1], ValueError),
                           (60, TypeError)):
            with pytest.raises(error, match="snapshot_schedule"):
                rsh.snapshot_schedule = bad
            assert rsh.snapshot_schedule == ""
    finally:
        rsh.snapshot_schedule = before


# -- bad input: a clear error, nothing written -----------------------------------------


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(max_retries=-1), ValueError, "max_retries"),
    (dict(max_retries=1.5), TypeError, "max_retries"),
    (dict(max_retries="2"), TypeError, "max_retries"),
    (dict(max_retries=[1, 2, 3]), ValueError, "max_retries"),
    (dict(timeouts=0), ValueError, "timeouts"),
    (dict(timeouts=-1.0), ValueError, "timeouts"),
    (dict(timeouts=float("nan")), ValueError, "timeouts"),
    (dict(timeouts=float("inf")), ValueError, "timeouts"),
    (dict(timeouts="1"), TypeError, "timeouts"),
    (dict(timeouts=[1, 0]), ValueError, "timeouts"),
    (dict(timeouts=[1, 2, 3]), ValueError, "timeouts"),
    (dict(seeds=[1.5, 2]), TypeError, "seeds"),
    (dict(seeds=["1", "2"]), TypeError, "seeds"),
    (dict(seeds=[True, 2]), TypeError, "seeds"),
    (dict(seeds=[-1, 2]), ValueError, "seeds"),
    (dict(seeds=5), TypeError, "seeds"),
    (dict(seeds=[1]), ValueError, "seeds"),
    (dict(terminate_workers="yes"), TypeError, "terminate_workers"),
])
def test_bad_task_control_changes_nothing(rsh, worker, kwargs, error, match):
    rsh.push_tasks([{"x": 0}])
    unchanged(rsh, lambda: rsh.push_tasks([{"x": 1}, {"x": 2}], **kwargs), error, match)
    assert not rsh.connector.exists(rsh.keys.terminate_on_idle)


@pytest.mark.parametrize("priority, error", [
    (None, TypeError), ("w", TypeError), (["a"], ValueError), (["a", "b", "c"], ValueError),
    (["a", 5], TypeError),
])
def test_bad_priority_changes_nothing(rsh, worker, priority, error):
    unchanged(rsh, lambda: rsh.push_priority_tasks([{"x": 1}, {"x": 2}], priority=priority),
              error, "priority")


@pytest.mark.parametrize("seed, error", [("1", TypeError), (1.0, TypeError), (True, TypeError),
                                         (-3, ValueError)])
def test_a_bad_controller_seed(config, network_id, seed, error):
    with pytest.raises(error, match="seed"):
        rush.rsh(network_id, config=config, seed=seed)


def test_bad_worker_script_python_stores_nothing(rsh):
    import loops

    before = snapshot(rsh)
    for bad in (5, "", " "):
        with pytest.raises(TypeError, match="python"):
            rsh.worker_script(loops.wl_log_message, python=bad)
    assert snapshot(rsh) == before and not rsh.connector.exists(rsh.keys.start_args)


def test_worker_script_starts_the_given_interpreter(rsh):
    import shlex

    import loops

    words = shlex.split(rsh.worker_script(loops.wl_log_message, python="/opt/py/bin/python3.11"))
    at = words.index("-m")
    assert words[at - 1:at + 3] == ["/opt/py/bin/python3.11", "-m", "rush", "worker"]
    assert "--remote" in words
