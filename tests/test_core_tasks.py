"""The task API of SPEC §3-4 on a real Redis: creating, popping, finishing and failing
tasks, key lists and counts, workers, reset and printing."""

from __future__ import annotations

import threading
import time

import pytest

import rush
from rush import RushWorker

from conftest import wait_until

STATES = ("queued", "running", "finished", "failed")


def states_of(controller) -> dict[str, set[str]]:
    return {s: set(keys) for s, keys in controller.tasks_with_state().items()}


# -- queue -------------------------------------------------------------------------------


def test_push_tasks_then_pop_in_fifo_order(rsh, worker):
    keys = rsh.push_tasks([{"x": i} for i in range(5)], xss_extra=[{"e": i} for i in range(5)])
    assert len(keys) == len(set(keys)) == 5
    assert rsh.tasks == keys
    assert rsh.queued_tasks == keys
    assert rsh.n_queued_tasks == rsh.n_tasks == 5
    popped = [worker.pop_task(timeout=0) for _ in range(5)]
    assert [t["key"] for t in popped] == keys
    assert [t["xs"] for t in popped] == [{"x": i} for i in range(5)]
    assert set(popped[0]) == {"key", "xs"}
    assert worker.pop_task(timeout=0) is None
    assert set(rsh.running_tasks) == set(keys)
    assert rsh.n_queued_tasks == 0 and rsh.n_running_tasks == 5
    assert rsh.read_hash(keys[0], "worker_id") == {"worker_id": worker.worker_id}


def test_pop_task_returns_requested_fields(rsh, worker):
    key = rsh.push_tasks([{"x": 1}], extra=[{"tag": "a"}])[0]
    task = worker.pop_task(timeout=0, fields=["xs", "xs_extra", "worker_id"])
    assert task == {"key": key, "xs": {"x": 1}, "xs_extra": {"tag": "a"},
                    "worker_id": worker.worker_id}
    key = rsh.push_tasks([{"x": 2}])[0]
    assert worker.pop_task(timeout=0, fields="xs_extra") == {"key": key, "xs_extra": None}


def test_pop_task_on_empty_queue(rsh, worker):
    start = time.monotonic()
    assert worker.pop_task(timeout=0) is None
    assert worker.pop_task(timeout=0.3) is None
    assert time.monotonic() - start >= 0.25
    assert rsh.n_tasks == 0


def test_blocking_pop_receives_a_task_pushed_later(rsh, worker):
    got: list = []
    thread = threading.Thread(target=lambda: got.append(worker.pop_task(timeout=5)))
    thread.start()
    # the worker is blocked in Redis (BLMOVE) before the task exists
    wait_until(lambda: any(c.get("cmd") == "blmove" for c in rsh.connector.client_list()),
               timeout=10, message="the worker to block")
    key = rsh.push_tasks([{"x": 42}])[0]
    thread.join(10)
    assert not thread.is_alive()
    assert got == [{"key": key, "xs": {"x": 42}}]
    assert rsh.running_tasks == [key]
    assert rsh.n_queued_tasks == 0


def test_push_tasks_with_list_and_array_values(rsh, worker):
    np = pytest.importorskip("numpy")
    array = np.arange(6).reshape(2, 3)
    key = rsh.push_tasks([{"v": [1, 2, 3], "a": array, "s": "text", "d": {"nested": 1}}])[0]
    task = worker.pop_task(timeout=0)
    assert task["key"] == key
    assert task["xs"]["v"] == [1, 2, 3]
    assert task["xs"]["d"] == {"nested": 1}
    np.testing.assert_array_equal(task["xs"]["a"], array)


# -- worker writes -----------------------------------------------------------------------


def test_push_running_tasks_then_finish(rsh, worker):
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}], extra=[{"e": 1}])
    assert set(rsh.running_tasks) == set(keys) and rsh.n_running_tasks == 2
    assert rsh.is_running_task(keys[0]) is True
    assert rsh.is_running_task(keys) == [True, True]
    assert rsh.read_hashes(keys, ["xs", "xs_extra", "worker_id"]) == [
        {"x": 1, "e": 1, "worker_id": worker.worker_id},
        {"x": 2, "e": 1, "worker_id": worker.worker_id}]
    worker.finish_tasks(keys, [{"y": 10}, {"y": 20}], yss_extra=[{"t": 0.5}])
    assert rsh.finished_tasks == keys
    assert rsh.n_running_tasks == 0 and rsh.n_finished_tasks == 2
    assert rsh.is_running_task(keys) == [False, False]
    assert rsh.read_hashes(keys, ["ys", "ys_extra"]) == [{"y": 10, "t": 0.5}, {"y": 20, "t": 0.5}]


def test_push_results_is_finish_tasks(rsh, worker):
    keys = worker.push_running_tasks([{"x": 1}])
    worker.push_results(keys, [{"y": 1}], extra=[{"z": 2}])
    assert rsh.finished_tasks == keys
    assert rsh.read_hash(keys[0], ["ys", "ys_extra"]) == {"ys": {"y": 1}, "ys_extra": {"z": 2}}


def test_finish_a_single_key(rsh, worker):
    key = worker.push_running_tasks([{"x": 1}])[0]
    worker.finish_tasks(key, [{"y": 1}])
    assert rsh.finished_tasks == [key]


def test_finished_order_is_finishing_order(rsh, worker):
    keys = worker.push_running_tasks([{"x": i} for i in range(4)])
    order = [keys[2], keys[0], keys[3], keys[1]]
    for key in order:
        worker.finish_tasks([key], [{"y": 0}])
    assert rsh.finished_tasks == order
    assert rsh.tasks == keys  # creation order is kept apart


def test_fail_tasks_with_default_and_given_conditions(rsh, worker):
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}, {"x": 3}])
    worker.fail_tasks(keys[0])
    worker.fail_tasks(keys[1:], conditions=[{"message": "boom", "code": 7}, {"message": "bang"}])
    assert set(rsh.failed_tasks) == set(keys) and rsh.n_failed_tasks == 3
    assert rsh.is_failed_task(keys[0]) is True
    assert rsh.is_failed_task(keys + ["unknown"]) == [True, True, True, False]
    conditions = [h["condition"] for h in rsh.read_hashes(keys, "condition", flatten=False)]
    assert conditions == [{"message": "Task failed"}, {"message": "boom", "code": 7},
                          {"message": "bang"}]


def test_push_failed_is_fail_tasks(rsh, worker):
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}])
    worker.push_failed(keys, [{"message": "broadcast"}])
    assert rsh.n_failed_tasks == 2
    assert [h["condition"] for h in rsh.read_hashes(keys, "condition", flatten=False)] == [
        {"message": "broadcast"}] * 2


def test_queued_task_popped_and_failed(rsh, worker):
    key = rsh.push_tasks([{"x": 1}])[0]
    task = worker.pop_task(timeout=0)
    worker.fail_tasks(task["key"], [{"message": "x too small"}])
    assert rsh.failed_tasks == [key]
    assert rsh.fetch_failed_tasks()["condition"].tolist() == [{"message": "x too small"}]


def test_finishing_what_is_not_running_changes_nothing(rsh, worker, caplog):
    queued = rsh.push_tasks([{"x": 0}])[0]
    done = worker.push_running_tasks([{"x": 1}])[0]
    worker.finish_tasks(done, [{"y": "first"}])
    failed = worker.push_running_tasks([{"x": 2}])[0]
    worker.fail_tasks(failed, [{"message": "first"}])
    before = states_of(rsh)
    for key, label in ((queued, "queued"), (done, "finished"), (failed, "failed"),
                       ("no-such-task", "unknown")):
        caplog.clear()
        worker.finish_tasks(key, [{"y": "late"}])
        worker.fail_tasks(key, [{"message": "late"}])
        assert states_of(rsh) == before, label
        warnings = [r for r in caplog.records if r.name == "rush" and r.levelname == "WARNING"]
        assert len(warnings) == 2, label
        assert all(key in r.getMessage() for r in warnings), label
    # the first writer's values were not overwritten
    assert rsh.read_hash(done, ["ys", "condition"]) == {"ys": {"y": "first"}, "condition": None}
    assert rsh.read_hash(failed, ["ys", "condition"]) == {
        "ys": None, "condition": {"message": "first"}}
    assert rsh.read_hash(queued, ["ys", "condition"]) == {"ys": None, "condition": None}
    assert rsh.read_hash("no-such-task", ["ys", "condition"], flatten=True) == {}


def test_a_mix_of_running_and_unknown_keys(rsh, worker, caplog):
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}])
    worker.finish_tasks([keys[0], "unknown-key", keys[1]], [{"y": 1}, {"y": 2}, {"y": 3}])
    assert rsh.finished_tasks == keys
    assert rsh.read_hashes(keys, "ys") == [{"y": 1}, {"y": 3}]
    assert rsh.n_tasks == 2
    assert any("unknown-key" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


# -- tasks created in a final state ------------------------------------------------------


def test_push_finished_tasks(rsh):
    keys = rsh.push_finished_tasks([{"x": 1}, {"x": 2}], [{"y": 3}], xss_extra=[{"a": 1}],
                                   yss_extra=[{"b": 1}, {"b": 2}])
    assert rsh.finished_tasks == keys and rsh.n_tasks == 2
    assert rsh.read_hashes(keys, ["xs", "ys", "xs_extra", "ys_extra"]) == [
        {"x": 1, "y": 3, "a": 1, "b": 1}, {"x": 2, "y": 3, "a": 1, "b": 2}]


def test_push_failed_tasks_default_condition(rsh):
    keys = rsh.push_failed_tasks([{"x": 1}, {"x": 2}])
    assert set(rsh.failed_tasks) == set(keys)
    assert rsh.fetch_failed_tasks()["condition"].tolist() == [{"message": "Task failed"}] * 2
    more = rsh.push_failed_tasks([{"x": 3}], xss_extra=[{"e": 1}], conditions=[{"message": "m"}])
    assert rsh.read_hash(more[0], ["xs_extra", "condition"]) == {
        "xs_extra": {"e": 1}, "condition": {"message": "m"}}


def test_empty_queue(rsh, worker):
    queued = rsh.push_tasks([{"x": i} for i in range(3)])
    running = worker.pop_task(timeout=0)["key"]
    moved = rsh.empty_queue()
    assert set(moved) == set(queued[1:])
    assert rsh.n_queued_tasks == 0
    assert set(rsh.failed_tasks) == set(queued[1:])
    assert rsh.running_tasks == [running]
    for h in rsh.read_hashes(queued[1:], "condition", flatten=False):
        assert h["condition"] == {"message": "Removed from queue"}
    assert rsh.empty_queue() == []
    assert rsh.n_failed_tasks == 2


def test_length_one_lists_broadcast(rsh, worker):
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}, {"x": 3}], xss_extra=[{"e": "same"}])
    assert rsh.read_hashes(keys, "xs_extra") == [{"e": "same"}] * 3
    running = worker.push_running_tasks([{"x": 1}, {"x": 2}], extra=[{"e": 0}])
    worker.finish_tasks(running, [{"y": 0}], yss_extra=[{"t": 1}])
    assert rsh.read_hashes(running, ["ys", "ys_extra"]) == [{"y": 0, "t": 1}] * 2


def test_empty_xss_is_a_no_op(rsh, worker):
    assert rsh.push_tasks([]) == []
    assert rsh.push_finished_tasks([], []) == []
    assert rsh.push_finished_tasks([], [{"y": 1}]) == []
    assert rsh.push_failed_tasks([]) == []
    assert worker.push_running_tasks([]) == []
    assert worker.finish_tasks([], []) is None
    assert worker.fail_tasks([]) is None
    assert rsh.n_tasks == 0
    assert rsh.fetch_tasks().empty


# -- keys, counts and states -------------------------------------------------------------


def test_every_count_and_key_list(rsh, worker):
    queued = rsh.push_tasks([{"x": 0}, {"x": 1}])
    running = worker.push_running_tasks([{"x": 2}, {"x": 3}, {"x": 4}])
    worker.finish_tasks(running[:1], [{"y": 0}])
    worker.fail_tasks(running[1:2])
    finished = rsh.push_finished_tasks([{"x": 5}], [{"y": 5}])
    failed = rsh.push_failed_tasks([{"x": 6}])
    assert rsh.tasks == queued + running + finished + failed
    assert rsh.queued_tasks == queued
    assert rsh.running_tasks == running[2:]
    assert rsh.finished_tasks == running[:1] + finished
    assert set(rsh.failed_tasks) == {running[1], failed[0]}
    assert (rsh.n_tasks, rsh.n_queued_tasks, rsh.n_running_tasks, rsh.n_finished_tasks,
            rsh.n_failed_tasks) == (7, 2, 1, 2, 2)
    by_state = rsh.tasks_with_state()
    assert list(by_state) == list(STATES)
    assert by_state["queued"] == queued and by_state["finished"] == running[:1] + finished
    assert rsh.tasks_with_state("running") == {"running": running[2:]}
    assert rsh.tasks_with_state(["failed", "queued"]) == {"failed": by_state["failed"],
                                                          "queued": queued}
    every = [k for keys in by_state.values() for k in keys]
    assert sorted(every) == sorted(rsh.tasks)  # each task in exactly one state
    for name in ("tasks", "queued_tasks", "running_tasks", "finished_tasks", "failed_tasks"):
        assert type(getattr(rsh, name)) is list, name
    # the worker shares every read method
    assert worker.tasks == rsh.tasks and worker.n_finished_tasks == 2


def test_write_and_read_hashes(rsh):
    keys = rsh.write_hashes(xs=[{"a": 1}, {"a": 2}], ys=[{"b": 0}])
    assert len(keys) == 2
    assert rsh.read_hashes(keys, ["xs", "ys"]) == [{"a": 1, "b": 0}, {"a": 2, "b": 0}]
    assert rsh.read_hashes(keys, ["xs", "ys"], flatten=False) == [
        {"xs": {"a": 1}, "ys": {"b": 0}}, {"xs": {"a": 2}, "ys": {"b": 0}}]
    assert rsh.read_hashes(keys[0], "xs") == [{"a": 1}]
    assert rsh.read_hash(keys[1], "xs") == {"xs": {"a": 2}}
    assert rsh.read_hash(keys[1], "xs", flatten=True) == {"a": 2}
    assert rsh.read_hash(keys[1], ["xs", "condition"]) == {"xs": {"a": 2},
                                                                          "condition": None}
    # writing into existing hashes keeps the other fields
    assert rsh.write_hashes(keys, ys_extra=[{"c": 1}, {"c": 2}]) == keys
    assert rsh.read_hashes(keys, ["xs", "ys_extra"]) == [{"a": 1, "c": 1}, {"a": 2, "c": 2}]
    assert rsh.write_hashes(keys[0], xs=[{"a": 9}]) == [keys[0]]
    assert rsh.read_hash(keys[0], "xs") == {"xs": {"a": 9}}
    # hashes written by hand are not tasks of any state
    assert rsh.n_tasks == 0


def test_read_hashes_of_unknown_keys(rsh):
    assert rsh.read_hashes(["nope"], ["xs", "ys"]) == [{}]
    assert rsh.read_hashes(["nope"], ["xs", "ys"], flatten=False) == [{"xs": None, "ys": None}]
    assert rsh.read_hashes([], "xs") == []


# -- workers -----------------------------------------------------------------------------


def test_worker_registration_and_worker_info(rsh, worker):
    assert worker.worker_id and worker.hostname
    parts = worker.worker_id.split("_")
    assert len(parts) == 3 and len(parts[2]) == 8
    info = rsh.worker_info
    assert list(info.columns) == ["worker_id", "pid", "remote", "hostname", "heartbeat", "state"]
    assert len(info) == 1
    row = info.iloc[0]
    assert row["worker_id"] == worker.worker_id
    assert row["pid"] == __import__("os").getpid()
    assert row["hostname"] == worker.hostname
    assert row["state"] == "running"
    assert info["pid"].dtype.kind == "i"
    assert info["remote"].dtype == bool and info["heartbeat"].dtype == bool
    assert not row["remote"] and not row["heartbeat"]
    states = rsh.worker_states
    assert list(states.columns) == ["worker_id", "state"]
    assert states.to_dict("records") == [{"worker_id": worker.worker_id, "state": "running"}]
    assert rsh.worker_ids == rsh.running_worker_ids == [worker.worker_id]
    assert (rsh.n_workers, rsh.n_running_workers, rsh.n_terminated_workers,
            rsh.n_killed_workers, rsh.n_lost_workers) == (1, 1, 0, 0, 0)


def test_worker_info_without_workers(rsh):
    info = rsh.worker_info
    assert list(info.columns) == ["worker_id", "pid", "remote", "hostname", "heartbeat", "state"]
    assert info.empty
    assert list(rsh.worker_states.columns) == ["worker_id", "state"]
    assert rsh.worker_ids == [] and rsh.n_workers == 0


def test_remote_flag_and_explicit_worker_id(rsh, config, network_id):
    w = RushWorker(network_id, config=config, worker_id="my-worker", remote=True)
    try:
        assert w.worker_id == "my-worker"
        row = rsh.worker_info.set_index("worker_id").loc["my-worker"]
        assert bool(row["remote"]) is True
    finally:
        w.close()


def test_set_terminated(rsh, worker):
    assert worker.terminated is False
    worker.set_terminated()
    assert worker.terminated is True
    assert rsh.worker_info["state"].tolist() == ["terminated"]
    assert rsh.terminated_worker_ids == [worker.worker_id]
    assert rsh.running_worker_ids == [] and rsh.n_terminated_workers == 1


def test_terminate_flag(rsh, worker, config, network_id):
    other = RushWorker(network_id, config=config)
    try:
        rsh.stop_workers("terminate", worker.worker_id)
        assert worker.terminated is True
        assert other.terminated is False
        # told to terminate, the worker is still running until it leaves its loop
        assert set(rsh.running_worker_ids) == {worker.worker_id, other.worker_id}
    finally:
        other.close()


def test_workers_in_worker_id_lists(rsh, config, network_id):
    workers = [RushWorker(network_id, config=config) for _ in range(3)]
    try:
        workers[0].set_terminated()
        assert set(rsh.worker_ids) == {w.worker_id for w in workers}
        assert set(rsh.running_worker_ids) == {workers[1].worker_id, workers[2].worker_id}
        assert rsh.terminated_worker_ids == [workers[0].worker_id]
        assert rsh.worker_info["worker_id"].tolist() == [w.worker_id for w in workers]
    finally:
        for w in workers:
            w.close()


# -- reset and printing ------------------------------------------------------------------


def test_reset_removes_every_key_of_the_network_only(rsh, worker, config, network_id):
    other = rush.rsh(network_id + "x", config=config)  # its name starts with ours
    try:
        other.push_tasks([{"x": 1}])
        rsh.push_tasks([{"x": 1}, {"x": 2}])
        worker.pop_task(timeout=0)
        worker.push_running_tasks([{"x": 3}])
        rsh.push_finished_tasks([{"x": 4}], [{"y": 4}])
        rsh.push_failed_tasks([{"x": 5}])
        rsh.fetch_finished_tasks()
        # keys no state list names: a hash write_hashes made, a script worker's start
        # arguments (rush never scans the keyspace, so it finds them another way)
        rsh.write_hashes(xs=[{"x": 6}])
        rsh.worker_script(lambda w: None)
        client = rsh.connector
        client.set("outside-" + network_id, "not ours")
        assert client.keys("{" + network_id + "}*")
        rsh.reset()
        assert client.keys("{" + network_id + "}*") == []
        assert client.get("outside-" + network_id) == b"not ours"
        assert other.n_tasks == 1 and other.queued_tasks
        assert rsh.n_tasks == 0 and rsh.worker_ids == []
        assert rsh.fetch_finished_tasks().empty  # the cache went too
        # the network is usable again
        assert rsh.push_tasks([{"x": 1}])
        client.delete("outside-" + network_id)
    finally:
        other.reset()


def test_reset_leaves_networks_whose_id_starts_with_its_own(config, network_id):
    nets = {suffix: rush.rsh(network_id + suffix, config=config) for suffix in ("", "b", "1", ".x")}
    try:
        for controller in nets.values():
            controller.push_tasks([{"x": 1}])
        nets[""].reset()
        assert nets[""].n_tasks == 0
        assert nets[""].connector.keys(nets[""].keys.pattern()) == []
        assert all(nets[s].n_tasks == 1 for s in ("b", "1", ".x"))
    finally:
        for controller in nets.values():
            controller.reset()
            controller.close()


def test_print_shows_counts(rsh, worker, capsys):
    rsh.push_tasks([{"x": 1}, {"x": 2}])
    running = worker.push_running_tasks([{"x": 3}, {"x": 4}, {"x": 5}])
    worker.finish_tasks(running[0], [{"y": 1}])
    print(rsh)
    out = capsys.readouterr().out
    for text in ("2 queued", "2 running", "1 finished", "0 failed", rsh.network_id,
                 worker.worker_id):
        assert text in out, text
    assert str(rsh) == out.rstrip("\n")
    assert rsh.network_id in repr(rsh)


def test_print_never_shows_the_password(config, network_id, capsys):
    from rush import RedisConfig

    # the private server's default user has no password, so Redis accepts any
    with_pw = RedisConfig(port=config.port, username="default", password="hunter2-secret")
    controller = rush.rsh(network_id, config=with_pw)
    try:
        controller.push_tasks([{"x": 1}])
        print(controller)
        print(repr(controller))
        out = capsys.readouterr().out
        assert "1 queued" in out
        assert "hunter2" not in out
        assert "***" in out
    finally:
        controller.reset()
        controller.close()


# -- waiting, reconnecting, values, round trips ------------------------------------------


def test_wait_for_tasks_until_finished_or_failed(rsh, worker):
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}])
    worker.finish_tasks(keys[0], [{"y": 1}])

    def fail_when_controller_waits() -> None:
        wait_until(lambda: any(c.get("cmd") == "subscribe" for c in rsh.connector.client_list()),
                   timeout=10, message="the controller to subscribe")
        worker.fail_tasks(keys[1])

    thread = threading.Thread(target=fail_when_controller_waits)
    thread.start()
    start = time.monotonic()
    rsh.wait_for_tasks(keys, timeout=20)
    thread.join(10)
    assert time.monotonic() - start < 10
    assert rsh.n_running_tasks == 0


def test_wait_for_tasks_times_out(rsh, worker):
    keys = worker.push_running_tasks([{"x": 1}])
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        rsh.wait_for_tasks(keys, timeout=0.5)
    assert time.monotonic() - start >= 0.45
    assert rsh.running_tasks == keys


def test_wait_for_tasks_returns_when_no_worker_runs(rsh, worker):
    keys = rsh.push_tasks([{"x": 1}])
    worker.set_terminated()
    start = time.monotonic()
    rsh.wait_for_tasks(keys, timeout=10)
    assert time.monotonic() - start < 5
    assert rsh.queued_tasks == keys


def test_reconnect(rsh, worker):
    keys = rsh.push_tasks([{"x": 1}])
    old = rsh.connector
    rsh.reconnect()
    worker.reconnect()
    assert rsh.connector is not old
    assert rsh.queued_tasks == keys
    assert worker.pop_task(timeout=0)["key"] == keys[0]


def test_values_pickled_by_value(rsh, worker):
    class Local:  # pickle refuses local classes: stored with cloudpickle
        def __init__(self, v):
            self.v = v

    offset = 10
    rsh.push_tasks([{"f": lambda x: x + offset, "obj": Local(3)}])
    task = worker.pop_task(timeout=0)
    assert task["xs"]["f"](1) == 11
    assert task["xs"]["obj"].v == 3


def count_round_trips(controller, call) -> int:
    """How many times ``call`` takes a connection from the client's pool: one per command
    or pipeline sent, i.e. one per round trip."""
    pool = controller.connector.connection_pool
    original = pool.get_connection
    count = 0

    def counting(*args, **kwargs):
        nonlocal count
        count += 1
        return original(*args, **kwargs)

    pool.get_connection = counting
    try:
        call()
    finally:
        pool.get_connection = original
    return count


def test_one_round_trip_per_call(rsh, worker):
    queued = rsh.push_tasks([{"x": i} for i in range(3)])
    running = worker.push_running_tasks([{"x": i} for i in range(100)])
    calls = {
        "push_tasks": lambda: rsh.push_tasks([{"x": i} for i in range(500)]),
        "push_finished_tasks": lambda: rsh.push_finished_tasks([{"x": 1}] * 50, [{"y": 1}]),
        "push_failed_tasks": lambda: rsh.push_failed_tasks([{"x": 1}] * 50),
        "push_running_tasks": lambda: worker.push_running_tasks([{"x": 1}] * 50),
        "pop_task": lambda: worker.pop_task(timeout=0),
        "finish_tasks": lambda: worker.finish_tasks(running[:50], [{"y": 1}]),
        "fail_tasks": lambda: worker.fail_tasks(running[50:]),
        "fetch_tasks": rsh.fetch_tasks,
        "fetch_queued_tasks": rsh.fetch_queued_tasks,
        "fetch_running_tasks": rsh.fetch_running_tasks,
        "fetch_finished_tasks": rsh.fetch_finished_tasks,
        "fetch_failed_tasks": rsh.fetch_failed_tasks,
        "fetch_tasks_with_state": rsh.fetch_tasks_with_state,
        "fetch_new_tasks": rsh.fetch_new_tasks,
        "read_hashes": lambda: rsh.read_hashes(queued, ["xs", "ys"]),
        "write_hashes": lambda: rsh.write_hashes(queued, ys=[{"y": 0}]),
        "is_running_task": lambda: rsh.is_running_task(running),
        "is_failed_task": lambda: rsh.is_failed_task(running),
        "tasks_with_state": rsh.tasks_with_state,
    }
    for name in ("tasks", "queued_tasks", "running_tasks", "finished_tasks", "failed_tasks",
                 "n_tasks", "n_queued_tasks", "n_running_tasks", "n_finished_tasks",
                 "n_failed_tasks", "worker_info", "worker_states", "worker_ids",
                 "running_worker_ids", "terminated_worker_ids", "killed_worker_ids",
                 "lost_worker_ids", "n_workers", "n_running_workers", "n_terminated_workers",
                 "n_killed_workers", "n_lost_workers", "network_id", "config", "connector"):
        calls[name] = (lambda n: lambda: getattr(rsh, n))(name)
    calls["terminated"] = lambda: worker.terminated
    too_many = {}
    for name, call in calls.items():
        target = worker if name in ("push_running_tasks", "pop_task", "finish_tasks",
                                    "fail_tasks", "terminated") else rsh
        n = count_round_trips(target, call)
        if n > 1:
            too_many[name] = n
    assert too_many == {}
    # empty_queue reads the queue's keys first: each task's condition is signed for its task
    assert count_round_trips(rsh, rsh.empty_queue) == 2
    assert count_round_trips(rsh, rsh.empty_queue) == 1  # an empty queue: the read only


def test_terminated_rides_on_the_reply_of_task_writes(rsh, worker):
    # right after a write the first read is free; the next one asks Redis
    keys = worker.push_running_tasks([{"x": 1}])
    assert count_round_trips(worker, lambda: worker.terminated) == 0
    assert count_round_trips(worker, lambda: worker.terminated) == 1
    # a flag raised before a write comes back with that write's reply
    rsh.stop_workers(type="terminate", worker_ids=worker.worker_id)
    worker.finish_tasks(keys, [{"y": 1}])
    flag = []
    assert count_round_trips(worker, lambda: flag.append(worker.terminated)) == 0
    assert flag == [True]
    assert worker.terminated is True
