"""The contract of the Redis layers, tested against ``TaskStore`` and ``WorkerRegistry``
directly: the steps that the public API runs together (pop, then claim; a kill sweep)
are called one by one here, racing each other, so each invariant in the layers'
docstrings is pinned. The controller and workers are only used to set up and observe."""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import replace

import pytest

import rush
from conftest import run_together, rush_warnings, wait_until
from rush import RedisServer, RushWorker, WorkerStoppedError
from rush.errors import RushError, RushNetworkLostError
from rush._process import host_identity, process_start
from rush.keys import NETWORKS
from rush.network_index import NetworkIndex
from rush.registry import WorkerRegistry
from rush.serialization import dumps
from rush.states import TaskState, WorkerState
from rush.store import TaskStore

KILLED = {"message": "Worker was killed"}


@pytest.fixture
def store(config, network_id):
    """The task store of the test's network, on a connection of its own."""
    s = TaskStore.connect(network_id, config)
    yield s
    s.close()


@pytest.fixture
def registry(config, network_id):
    """The worker registry of the test's network, on a connection of its own."""
    r = WorkerRegistry.connect(network_id, config)
    yield r
    r.close()


# -- a stopped worker writes nothing -----------------------------------------------------


def test_a_stopped_worker_writes_nothing(rsh, store, make_worker, caplog):
    victim, bystander = make_worker(), make_worker()
    mine = victim.push_running_tasks([{"x": 1}, {"x": 2}])
    popped_key = rsh.push_tasks([{"x": 3}])[0]
    assert victim.pop_task(timeout=0)["key"] == popped_key
    theirs = bystander.push_running_tasks([{"x": 4}, {"x": 5}])
    rsh.push_tasks([{"x": 6}])

    failed = store.stop_worker(victim.worker_id, "killed", KILLED).failed
    assert sorted(failed) == sorted(mine + [popped_key])
    assert rsh.worker_info.set_index("worker_id").loc[victim.worker_id, "state"] == "killed"
    assert rsh.killed_worker_ids == [victim.worker_id]
    assert victim.worker_id not in rsh.terminated_worker_ids + rsh.running_worker_ids
    victim.terminated  # may answer from the hint of its last write (a few ms old)
    assert victim.terminated is True

    # its running tasks were failed with the condition; the other worker's are untouched
    assert set(rsh.failed_tasks) == set(mine + [popped_key])
    assert set(rsh.running_tasks) == set(theirs)
    for h in rsh.read_hashes(mine + [popped_key], ["condition", "worker_id"], flatten=False):
        assert h == {"condition": KILLED, "worker_id": victim.worker_id}
    before = rsh.tasks_with_state()
    n_tasks = rsh.n_tasks

    with pytest.raises(WorkerStoppedError):
        victim.push_running_tasks([{"x": 7}])
    with pytest.raises(WorkerStoppedError):
        victim.pop_task(timeout=0)
    with pytest.raises(WorkerStoppedError):
        victim.pop_task(timeout=1)
    caplog.clear()
    victim.finish_tasks(mine, [{"y": 1}])
    victim.fail_tasks(theirs)  # not even another worker's running tasks
    assert len(rush_warnings(caplog)) == 2
    assert rsh.tasks_with_state() == before
    assert rsh.n_tasks == n_tasks
    assert rsh.read_hash(mine[0], "condition") == {"condition": KILLED}
    victim.set_terminated()
    assert rsh.killed_worker_ids == [victim.worker_id]  # a killed worker stays killed

    # the bystander carries on
    bystander.finish_tasks(theirs, [{"y": 2}])
    assert bystander.pop_task(timeout=0)["xs"] == {"x": 6}
    assert set(rsh.finished_tasks) == set(theirs)


def test_stop_sweep_is_idempotent(rsh, store, make_worker):
    victim = make_worker()
    keys = victim.push_running_tasks([{"x": 1}, {"x": 2}])
    assert sorted(store.stop_worker(victim.worker_id, "killed", KILLED).failed) == sorted(keys)
    snapshot = (rsh.tasks_with_state(), rsh.worker_info.to_dict("records"))
    assert store.stop_worker(victim.worker_id, "lost", {"message": "again"}) is None
    assert store.stop_worker(victim.worker_id, "killed", KILLED) is None
    assert (rsh.tasks_with_state(), rsh.worker_info.to_dict("records")) == snapshot
    assert [h["condition"] for h in rsh.read_hashes(keys, "condition", flatten=False)] == [KILLED] * 2
    assert rsh.killed_worker_ids == [victim.worker_id] and rsh.lost_worker_ids == []


def test_stop_sweep_of_a_terminated_or_unknown_worker_does_nothing(rsh, store, make_worker):
    done = make_worker()
    done.set_terminated()
    assert store.stop_worker(done.worker_id, "lost", KILLED) is None
    assert store.stop_worker("no-such-worker", "lost", KILLED) is None
    assert rsh.terminated_worker_ids == [done.worker_id]
    assert rsh.worker_ids == [done.worker_id]


def test_two_sweeps_racing_change_the_worker_once(rsh, make_worker, config, network_id):
    victim = make_worker()
    keys = victim.push_running_tasks([{"x": i} for i in range(50)])
    sweepers = [TaskStore.connect(network_id, config) for _ in range(2)]  # own connections
    results: list = [None, None]

    def sweep(i: int):
        def run() -> None:
            results[i] = sweepers[i].stop_worker(
                victim.worker_id, ("killed", "lost")[i], {"message": f"sweep {i}"})
        return run

    try:
        run_together(sweep(0), sweep(1))
    finally:
        for s in sweepers:
            s.close()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and sorted(winners[0].failed) == sorted(keys)
    state = rsh.worker_info["state"].tolist()[0]
    message = {"killed": "sweep 0", "lost": "sweep 1"}[state]
    conditions = [h["condition"] for h in rsh.read_hashes(keys, "condition", flatten=False)]
    assert conditions == [{"message": message}] * 50
    assert rsh.n_failed_tasks == 50 and rsh.n_running_tasks == 0


def test_sweep_racing_the_worker_finishing(rsh, store, make_worker, config, network_id):
    """Kill sweep and the worker's own finish_tasks race: each task ends exactly once."""
    victim = make_worker()
    keys = victim.push_running_tasks([{"x": i} for i in range(200)])

    def finish() -> None:
        for key in keys:
            victim.finish_tasks(key, [{"y": 1}])

    def sweep() -> None:
        store.stop_worker(victim.worker_id, "killed", KILLED)

    run_together(finish, sweep)
    finished, failed = set(rsh.finished_tasks), set(rsh.failed_tasks)
    assert not finished & failed and finished | failed == set(keys)
    assert rsh.n_running_tasks == 0
    assert rsh.killed_worker_ids == [victim.worker_id]


# -- killed between pop and mark-running -------------------------------------------------


def test_worker_killed_between_pop_and_mark_running_loses_no_task(rsh, store, make_worker):
    victim = make_worker()
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}])
    # step 1 of a blocking pop: the task is only in the victim's pending list now
    assert store.pop_to_pending(victim.worker_id, 1) == keys[0]
    assert rsh.connector.lrange(rsh.keys.pending(victim.worker_id), 0, -1) == [keys[0].encode()]
    assert rsh.queued_tasks == keys[1:] and rsh.n_running_tasks == 0
    # the worker dies here; the sweep fails the pending task
    settled = store.stop_worker(victim.worker_id, "lost", {"message": "lost"})
    assert settled == ([keys[0]], [])  # failed, none back in the queue
    assert rsh.failed_tasks == [keys[0]]
    assert rsh.read_hash(keys[0], ["condition", "worker_id"]) == {
        "condition": {"message": "lost"}, "worker_id": victim.worker_id}
    assert not rsh.connector.exists(rsh.keys.pending(victim.worker_id))
    # had it not died, its step 2 is refused and changes nothing
    with pytest.raises(WorkerStoppedError):
        store.claim_pending(victim.worker_id, victim.incarnation, ["xs"])
    assert rsh.queued_tasks == keys[1:] and rsh.failed_tasks == [keys[0]]
    assert sorted(k for ks in rsh.tasks_with_state().values() for k in ks) == sorted(keys)


def test_worker_stopped_before_its_pop_lands_puts_the_task_back(rsh, store, make_worker):
    victim = make_worker()
    assert store.stop_worker(victim.worker_id, "killed", KILLED) == ([], [])
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}])
    # the BLMOVE lands after the sweep ...
    assert store.pop_to_pending(victim.worker_id, 1) == keys[0]
    # ... so the claim is refused and the task goes back to the head of the queue
    with pytest.raises(WorkerStoppedError):
        store.claim_pending(victim.worker_id, victim.incarnation, ["xs"])
    assert rsh.queued_tasks == keys
    assert not rsh.connector.exists(rsh.keys.pending(victim.worker_id))
    assert rsh.n_failed_tasks == rsh.n_running_tasks == 0
    # and another worker gets it first
    other = make_worker()
    assert other.pop_task(timeout=0)["key"] == keys[0]


def test_pop_landing_after_the_sweep_of_a_worker_that_then_dies_is_failed(rsh, store, make_worker,
                                                                          caplog):
    victim = make_worker()
    assert store.stop_worker(victim.worker_id, "lost", {"message": "lost"}) == ([], [])
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}])
    # the BLMOVE lands after the sweep and the worker dies before its claim: the task
    # would sit in a stopped worker's pending list forever, but the next sweep fails it
    assert store.pop_to_pending(victim.worker_id, 1) == keys[0]
    with caplog.at_level(logging.WARNING, logger="rush"):
        assert rsh.detect_lost_workers() == []
    assert rsh.failed_tasks == [keys[0]] and rsh.queued_tasks == keys[1:]
    assert rsh.read_hash(keys[0], "condition")["condition"] == {
        "message": "Worker has crashed or was killed"}
    assert not rsh.connector.exists(rsh.keys.pending(victim.worker_id))
    assert "left pending" in caplog.text
    # a running worker's pending task is left to its claim
    alive = make_worker()
    assert store.pop_to_pending(alive.worker_id, 1) == keys[1]
    rsh.detect_lost_workers()
    assert store.claim_pending(alive.worker_id, alive.incarnation, ["xs"]).key == keys[1]


def test_claim_with_an_empty_pending_list(rsh, store, worker):
    assert store.claim_pending(worker.worker_id, worker.incarnation, ["xs"]).key is None
    key = rsh.push_tasks([{"x": 1}])[0]
    assert store.pop_to_pending(worker.worker_id, 1) == key
    got = store.claim_pending(worker.worker_id, worker.incarnation, ["xs"])
    assert got.key == key and got.values == [dumps({"x": 1})] and got.terminate is False
    assert rsh.running_tasks == [key]


def test_the_controller_cache_reads_only_the_new_tasks(rsh, worker):
    keys = worker.push_running_tasks([{"x": i} for i in range(50)])
    worker.finish_tasks(keys, [{"y": 0}])
    rsh.fetch_finished_tasks()
    reads: list[tuple] = []
    original = rsh._store.read

    def spy(states, fields, start=0, stop=-1):
        reads.append((start, stop))
        return original(states, fields, start, stop)

    rsh._store.read = spy
    more = worker.push_running_tasks([{"x": 1}, {"x": 2}])
    worker.finish_tasks(more, [{"y": 1}])
    assert len(rsh.fetch_finished_tasks()) == 52
    assert [start for start, _ in reads] == [50]


def test_every_key_carries_the_hash_tag(network_id):
    """On an empty server, everything a network writes lives under its hash tag."""
    with RedisServer() as server:
        controller = rush.rsh(network_id, config=server.config)
        worker = RushWorker(network_id, config=server.config)
        controller.push_tasks([{"x": 1}, {"x": 2}, {"x": 3}])
        task = worker.pop_task(timeout=0)
        worker.finish_tasks(task["key"], [{"y": 1}])
        worker.fail_tasks(worker.pop_task(timeout=0)["key"])
        TaskStore.connect(network_id, server.config).pop_to_pending(worker.worker_id, 1)
        worker.push_running_tasks([{"x": 4}])
        controller.push_finished_tasks([{"x": 5}], [{"y": 5}])
        controller.push_failed_tasks([{"x": 6}])
        controller.write_hashes(xs=[{"x": 7}])
        controller.push_tasks([{"x": 8}], seeds=[1], timeouts=30, max_retries=1,
                              terminate_workers=True)
        controller.push_priority_tasks([{"x": 9}, {"x": 10}], priority=[worker.worker_id] * 2)
        worker.pop_task(timeout=0)  # a task with a timeout: its deadline
        controller.stop_workers("terminate", worker.worker_id)
        controller.fetch_new_tasks(timeout=0.05)
        worker.set_terminated()
        keys = [k.decode() for k in controller.connector.keys("*")]
        assert keys
        # one server-wide key: the index of networks (rush status lists them from it)
        assert NETWORKS in keys
        assert all(k.startswith("{" + network_id + "}:") for k in keys if k != NETWORKS), keys
        controller.reset()
        assert controller.connector.keys("*") == []  # the index is empty: gone too
        worker.close()
        controller.close()


def test_reset_without_workers_keeps_registrations(rsh, store, worker):
    rsh.push_tasks([{"x": 1}, {"x": 2}])
    worker.pop_task(timeout=0)
    store.pop_to_pending(worker.worker_id, 0.1)  # one task only in the pending list
    rsh.reset(workers=False)
    assert rsh.n_tasks == rsh.n_queued_tasks == rsh.n_running_tasks == 0
    assert rsh.worker_ids == [worker.worker_id]
    assert rsh.worker_info["state"].tolist() == ["running"]
    assert rsh.connector.keys(rsh.keys.task_prefix.replace("{", "[{]") + "*") == []
    assert not rsh.connector.exists(rsh.keys.pending(worker.worker_id))
    key = rsh.push_tasks([{"x": 3}])[0]
    assert worker.pop_task(timeout=0)["key"] == key
    # and the task control keys: own queues, deadlines, the terminate-on-idle flag
    rsh.push_tasks([{"x": 4}], timeouts=60, terminate_workers=True)
    worker.pop_task(timeout=0)
    rsh.push_priority_tasks([{"x": 5}], priority=[worker.worker_id])
    rsh.reset(workers=False)
    for key in (rsh.keys.priority, rsh.keys.own_queue(worker.worker_id),
                rsh.keys.deadlines(worker.worker_id), rsh.keys.terminate_on_idle):
        assert not rsh.connector.exists(key), key
    assert rsh.n_queued_priority_tasks == 0


# -- replies of the task writes ------------------------------------------------------------


def test_a_resent_create_writes_nothing_twice(rsh, store, worker):
    rows = [[dumps({"x": 1}), ""], [dumps({"x": 2}), ""]]
    keys = ["k-one", "k-two"]
    first = store.create(TaskState.QUEUED, keys, ("xs", "xs_extra"), rows)
    assert first.skipped == [] and first.terminate is False
    again = store.create(TaskState.QUEUED, keys, ("xs", "xs_extra"), rows)  # a client retry
    assert again.skipped == keys
    assert rsh.tasks == keys and rsh.queued_tasks == keys


def test_task_writes_bring_back_the_terminate_flag(rsh, store, worker):
    keys = ["k-a", "k-b"]
    row = [dumps({"x": 1}), "", worker.worker_id]
    reply = store.create(TaskState.RUNNING, keys, ("xs", "xs_extra", "worker_id"), [row, row],
                         worker.worker_id, worker.incarnation)
    assert reply.terminate is False
    rsh.stop_workers("terminate", worker.worker_id)
    reply = store.move(TaskState.FINISHED, ["k-a", "k-unknown"], ("ys",), [[dumps({"y": 1})]] * 2,
                       worker.worker_id, worker.incarnation)
    assert reply.skipped == ["k-unknown"] and reply.terminate is True
    rsh.push_tasks([{"x": 3}])
    claim = store.pop(worker.worker_id, worker.incarnation, ["xs"])
    assert claim.terminate is True and claim.values == [dumps({"x": 3})]
    assert store.pop(worker.worker_id, worker.incarnation, ["xs"]) == (None, [], True, False)


def test_a_stop_fails_only_tasks_the_worker_still_runs(rsh, store, make_worker):
    victim, other = make_worker(), make_worker()
    done, running = victim.push_running_tasks([{"x": 1}, {"x": 2}])
    other.finish_tasks(done, [{"y": 1}])  # another writer moved it on: first writer wins
    theirs = other.push_running_tasks([{"x": 3}])[0]
    # a key of another worker's in the victim's running set (e.g. a task retried
    # elsewhere) must not be failed by the victim's stop
    store.client.sadd(rsh.keys.worker_running(victim.worker_id), theirs)
    assert store.stop_worker(victim.worker_id, WorkerState.KILLED, KILLED) == ([running], [])
    assert rsh.tasks_with_state() == {"queued": [], "running": [theirs], "finished": [done],
                                      "failed": [running]}
    assert not store.client.exists(rsh.keys.worker_running(victim.worker_id))


# -- task control in the stop step ---------------------------------------------------------


def test_the_stop_step_settles_every_task_the_worker_leaves(rsh, store, make_worker):
    victim = make_worker()
    retried, spent, plain, pending = rsh.push_tasks([{"x": i} for i in range(4)],
                                                    max_retries=[1, 0, 1, 1])
    rsh.connector.hdel(rsh.keys.task(plain), "max_retries")  # no retries after all
    for _ in range(3):
        victim.pop_task(timeout=0)
    assert store.pop_to_pending(victim.worker_id, 1) == pending  # popped, never claimed
    own = rsh.push_priority_tasks([{"x": 9}], priority=[victim.worker_id])
    store.client.zadd(rsh.keys.deadlines(victim.worker_id), {retried: 1e12})

    settled = store.stop_worker(victim.worker_id, WorkerState.LOST, {"message": "lost"})

    assert sorted(settled.failed) == sorted([spent, plain])
    assert sorted(settled.requeued) == sorted([retried, pending])
    assert rsh.queued_tasks[:1] == own  # the own queue went to the head of the queue
    assert sorted(rsh.queued_tasks[1:]) == sorted([retried, pending])
    # the pending task was handed out, so that counts as an attempt too
    attempts = {k: h["attempts"] for k, h in
                zip([retried, spent, plain, pending],
                    rsh.read_hashes([retried, spent, plain, pending], "attempts", flatten=False))}
    assert attempts == {retried: 1, spent: 1, plain: None, pending: 1}
    assert rsh.read_hash(spent, "condition")["condition"] == {
        "message": "Task failed after 1 attempts: lost"}
    assert rsh.read_hash(plain, "condition")["condition"] == {"message": "lost"}
    assert rsh.read_hash(retried, ["worker_id", "condition"]) == {"worker_id": None,
                                                                  "condition": None}
    for key in (rsh.keys.own_queue(victim.worker_id), rsh.keys.deadlines(victim.worker_id),
                rsh.keys.pending(victim.worker_id), rsh.keys.worker_running(victim.worker_id)):
        assert not store.client.exists(key), key
    assert rsh.n_queued_priority_tasks == 0 and rsh.n_running_tasks == 0


def test_a_condition_template_keeps_the_other_fields(rsh, store, worker):
    key = rsh.push_tasks([{"x": 1}], max_retries=0)[0]
    worker.pop_task(timeout=0)
    condition = {"type": "ValueError", "message": "bad {attempts} \\ é\nnext",
                 "traceback": "Traceback ...\n  ☃"}
    store.stop_worker(worker.worker_id, WorkerState.LOST, condition)
    assert rsh.read_hash(key, "condition")["condition"] == {
        "message": "Task failed after 1 attempts: bad {attempts} \\ é\nnext",
        "type": "ValueError", "traceback": "Traceback ...\n  ☃"}


def test_a_stop_step_asks_for_the_conditions_it_lacks_and_changes_nothing_until_then(
        rsh, store, make_worker):
    victim = make_worker()
    key, = victim.push_running_tasks([{"x": 1}])
    k = store.keys
    script_keys = [k.worker_states, k.incarnations, k.running, k.failed,
                   k.pending(victim.worker_id), k.worker_running(victim.worker_id), k.queued,
                   k.own_queue(victim.worker_id), k.priority, k.deadlines(victim.worker_id)]
    args = [victim.worker_id, "", "running", "killed", k.task_prefix, k.events, ""]
    before = rsh.tasks_with_state()
    assert store.scripts.call("stop_worker", script_keys, args) == [[], [], [key.encode(), b"d"]]
    # a condition for another spec, or for another task, is not taken either
    assert store.scripts.call("stop_worker", script_keys, [*args, key, "d1", b"c", "k2", "d",
                                                           b"c"])[2] == [key.encode(), b"d"]
    assert rsh.tasks_with_state() == before and rsh.running_worker_ids == [victim.worker_id]
    calls = []
    original = store.scripts.call
    store.scripts.call = lambda *a: calls.append(a[0]) or original(*a)
    try:
        assert store.stop_worker(victim.worker_id, "killed", KILLED) == ([key], [])
    finally:
        store.scripts.call = original
    assert calls == ["stop_worker", "stop_worker"]  # one more round trip: the signatures
    assert rsh.read_hash(key, "condition") == {"condition": KILLED}


def test_conditions_placed_by_the_stop_steps_are_signed_for_each_task(config, network_id):
    signed = replace(config, secret="s3cret")
    with rush.rsh(network_id, config=signed) as controller, \
            RushWorker(network_id, config=signed) as victim:
        store = TaskStore.connect(network_id, signed)
        try:
            spent, retried = controller.push_tasks([{"x": 1}, {"x": 2}], max_retries=[0, 1])
            assert store.pop_to_pending(victim.worker_id, 1) == spent
            running, = victim.push_running_tasks([{"x": 3}])
            assert store.stop_worker(victim.worker_id, "lost", {"message": "lost"}) == \
                ([running, spent], [])
            assert store.pop_to_pending(victim.worker_id, 1) == retried
            assert store.sweep_pending({"message": "gone"}) == ([], [retried])
            conditions = controller.read_hashes([running, spent], "condition")
            assert conditions == [{"message": "lost"},
                                  {"message": "Task failed after 1 attempts: lost"}]
            raw = controller.connector.hget(controller.keys.task(running), "condition")
            controller.connector.hset(controller.keys.task(spent), "condition", raw)
            with pytest.raises(rush.RushSecurityError, match=spent):
                controller.read_hash(spent, "condition")
        finally:
            store.close()
            controller.reset()


def test_empty_queue_fails_the_tasks_it_read_each_with_its_own_condition(rsh, store):
    keys = rsh.push_tasks([{"x": i} for i in range(5)])
    store.client.lrem(store.keys.queued, 1, keys[0])  # as if a worker popped it meanwhile
    assert store.empty_queue({"message": "out"}) == keys[1:]
    assert rsh.queued_tasks == [] and sorted(rsh.failed_tasks) == sorted(keys[1:])
    assert rsh.read_hashes(keys[1:], "condition") == [{"message": "out"}] * 4


def test_sweep_pending_retries_too(rsh, store, make_worker):
    victim = make_worker()
    assert store.stop_worker(victim.worker_id, "lost", {"message": "lost"}) == ([], [])
    retried, spent = rsh.push_tasks([{"x": 1}, {"x": 2}], max_retries=[1, 0])
    assert store.pop_to_pending(victim.worker_id, 1) == retried
    assert store.sweep_pending({"message": "lost"}) == ([], [retried])
    assert rsh.queued_tasks == [retried, spent]
    assert store.pop_to_pending(victim.worker_id, 1) == retried  # handed out again
    assert store.pop_to_pending(victim.worker_id, 1) == spent
    settled = store.sweep_pending({"message": "lost"})
    assert sorted(settled.failed) == sorted([retried, spent]) and settled.requeued == []
    assert [h["attempts"] for h in rsh.read_hashes([retried, spent], "attempts",
                                                   flatten=False)] == [2, 1]


def test_a_claim_counts_attempts_and_sets_deadlines_by_redis_time(rsh, store, worker):
    key = rsh.push_tasks([{"x": 1}], timeouts=2.5, max_retries=3)[0]
    claim = store.pop(worker.worker_id, worker.incarnation, ["xs", "attempts", "timeout"])
    assert claim.key == key and claim.values[1:] == [1, b"2.5"]
    (member, deadline), = store.client.zrange(rsh.keys.deadlines(worker.worker_id), 0, -1,
                                              withscores=True)
    seconds, micros = store.client.time()
    assert member.decode() == key and 2 < deadline - (seconds + micros / 1e6) <= 2.5
    due_key, due_in = store.next_deadline(worker.worker_id)
    assert due_key == key and 2 < due_in <= 2.5
    assert store.timed_out([worker.worker_id]) == []
    # a task without a timeout leaves no deadline
    rsh.push_tasks([{"x": 2}])
    store.pop(worker.worker_id, worker.incarnation, ["xs"])
    assert store.client.zcard(rsh.keys.deadlines(worker.worker_id)) == 1


def test_a_timed_out_stop_acts_only_past_the_deadline_of_a_task_still_running(
        rsh, store, make_worker):
    victim = make_worker()
    slow, other = rsh.push_tasks([{"x": 1}, {"x": 2}], timeouts=[60, 60])
    victim.pop_task(timeout=0)
    victim.pop_task(timeout=0)
    deadlines = rsh.keys.deadlines(victim.worker_id)
    assert store.stop_timed_out(victim.worker_id, slow, 60) is None  # not yet due
    assert store.timed_out([victim.worker_id]) == []
    # a task that finished leaves a stale entry: dropped, the worker untouched
    victim.finish_tasks(other, [{"y": 2}])
    store.client.zadd(deadlines, {other: 1})
    assert store.timed_out([victim.worker_id]) == []
    assert store.client.zscore(deadlines, other) is None
    store.client.zadd(deadlines, {other: 1})
    assert store.stop_timed_out(victim.worker_id, other, 60) is None
    assert store.client.zscore(deadlines, other) is None
    assert rsh.running_worker_ids == [victim.worker_id]
    # past its deadline: the worker is lost, the task fails with the timeout message
    lone = rsh.push_tasks([{"x": 3}])[0]
    victim.pop_task(timeout=0)
    store.client.zadd(deadlines, {slow: 1})
    assert store.timed_out([victim.worker_id]) == [(victim.worker_id, slow, 60.0)]
    settled = store.stop_timed_out(victim.worker_id, slow, 60)
    assert sorted(settled.failed) == sorted([slow, lone]) and settled.requeued == []
    assert rsh.lost_worker_ids == [victim.worker_id]
    assert rsh.read_hash(slow, "condition")["condition"] == {"message": "Task timed out after 60 s"}
    assert rsh.read_hash(lone, "condition")["condition"] == {
        "message": "Worker has crashed or was killed"}
    assert store.stop_timed_out(victim.worker_id, slow, 60) is None


def test_the_stop_step_racing_a_retried_tasks_finish(rsh, store, make_worker):
    """With retries, a task ends exactly once too: finished, or back in the queue, never
    both."""
    victim = make_worker()
    keys = rsh.push_tasks([{"x": i} for i in range(200)], max_retries=1)
    popped = [victim.pop_task(timeout=0)["key"] for _ in keys]

    def finish() -> None:
        for key in popped:
            victim.finish_tasks(key, [{"y": 1}])

    def sweep() -> None:
        store.stop_worker(victim.worker_id, "killed", KILLED)

    run_together(finish, sweep)
    snapshot = rsh.tasks_with_state()
    placed = [k for ks in snapshot.values() for k in ks]
    assert sorted(placed) == sorted(keys)  # each key in exactly one state
    assert snapshot["running"] == [] and snapshot["failed"] == []


def test_a_refused_config_is_a_clear_error(registry):
    with pytest.raises(rush.RushError, match="refused CONFIG SET save"):
        registry.set_snapshot_schedule("not numbers")  # what Redis itself refuses


# -- the worker registry -------------------------------------------------------------------


def test_a_launch_token_is_consumed_once(registry):
    token = registry.new_launch_token("w1")
    assert registry.consume_launch_token("w1", "forged") is False  # and it is gone now
    token = registry.new_launch_token("w1")
    assert registry.consume_launch_token("w1", token) is True
    assert registry.consume_launch_token("w1", token) is False  # an engine's re-run
    token = registry.new_launch_token("w2")
    registry.send_kill(["w2"])  # a kill voids an unused token
    assert registry.consume_launch_token("w2", token) is False


def test_heartbeat_and_kill_channel(registry):
    registry.register("w1", "inc-1", 123, "host", heartbeat_expire=30, remote=True)
    registry.register("w2", "inc-2", 124, "host", heartbeat_expire=None, remote=False)
    assert registry.heartbeats_alive(["w1", "w2"]) == [True, False]
    assert registry.heartbeat("beat", "w2", "inc-2", expire=0.05) == "ok"
    assert registry.heartbeats_alive(["w2"]) == [True]
    wait_until(lambda: registry.heartbeats_alive(["w2"]) == [False], 5, message="the expiry")
    assert registry.heartbeat("forget", "w1", "inc-1") == "ok"
    assert registry.heartbeats_alive(["w1"]) == [False]
    assert registry.wait_for_kill("w1", 0.01) is None
    registry.send_kill(["w1"])
    assert registry.wait_for_kill("w1", 1) == "inc-1"  # the signal names the incarnation


def test_an_old_incarnation_cannot_touch_the_new_one(rsh, registry, store):
    registry.register("w1", "old", 1, "host", heartbeat_expire=30, remote=False)
    store.create(TaskState.RUNNING, ["k-old"], ("xs",), [[dumps({"x": 1})]], "w1", "old")
    # found lost and started again under the same id: a new incarnation runs from now on
    assert store.stop_worker("w1", WorkerState.LOST, {"message": "lost"}) == (["k-old"], [])
    registry.set_running({"w1": "new"})
    registry.register("w1", "new", 2, "host", heartbeat_expire=30, remote=False)
    # the old one's heartbeat can neither refresh nor delete the new one's key ...
    assert registry.heartbeat("beat", "w1", "old", expire=0.05) == "stale"
    assert registry.heartbeat("forget", "w1", "old") == "stale"
    assert registry.heartbeats_alive(["w1"]) == [True]
    assert store.client.pttl(rsh.keys.heartbeat("w1")) > 1000
    # ... nor write, nor change the new one's state
    with pytest.raises(WorkerStoppedError):
        store.create(TaskState.RUNNING, ["k-late"], ("xs",), [[dumps({"x": 2})]], "w1", "old")
    with pytest.raises(WorkerStoppedError):
        store.pop("w1", "old", ["xs"])
    assert registry.set_terminated("w1", "old") is False
    assert store.stop_worker("w1", WorkerState.LOST, {}, incarnation="old") is None
    assert registry.states() == {"w1": "running"}
    store.create(TaskState.RUNNING, ["k-new"], ("xs",), [[dumps({"x": 3})]], "w1", "new")
    assert rsh.running_tasks == ["k-new"] and rsh.n_tasks == 2


def test_a_running_or_killed_id_cannot_register_again(registry, store):
    registry.register("w1", "one", 1, "host", heartbeat_expire=None, remote=False)
    with pytest.raises(RushError, match="already running"):
        registry.register("w1", "two", 2, "host", heartbeat_expire=None, remote=False)
    registry.register("w1", "one", 1, "host", heartbeat_expire=None, remote=False)  # itself
    assert store.stop_worker("w1", WorkerState.KILLED, KILLED) == ([], [])
    with pytest.raises(RushError, match="was killed"):
        registry.register("w1", "three", 3, "host", heartbeat_expire=None, remote=False)
    assert registry.states() == {"w1": "killed"}
    registry.set_running({"w1": "four"})  # what restart_workers does first
    registry.register("w1", "four", 4, "host", heartbeat_expire=None, remote=False)
    assert registry.states() == {"w1": "running"}


def test_a_resent_step_gets_its_first_reply(rsh, store, worker):
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}])
    wid, inc = worker.worker_id, worker.incarnation
    first = store.pop(wid, inc, ["xs"], step="s1")
    again = store.pop(wid, inc, ["xs"], step="s1")  # the reply was lost: sent again
    assert first == again and first.key == keys[0]
    assert rsh.queued_tasks == keys[1:] and rsh.running_tasks == [keys[0]]
    row = [[dumps({"y": 1})]]
    done = store.move(TaskState.FINISHED, [keys[0]], ("ys",), row, wid, inc)
    again = store.move(TaskState.FINISHED, [keys[0]], ("ys",), row, wid, inc)  # a resend
    assert again == done == ([], False)  # not "discarded" the second time
    assert rsh.finished_tasks == [keys[0]]
    other = store.move(TaskState.FINISHED, [keys[0]], ("ys",), [[dumps({"y": 2})]], wid, inc)
    assert other.skipped == [keys[0]]  # a different result for it is discarded
    assert store.pop(wid, inc, ["xs"], step="s3").key == keys[1]
    # a resent create finds its tasks made
    made = store.create(TaskState.RUNNING, ["k-r"], ("xs",), [[dumps({"x": 3})]], wid, inc)
    assert store.create(TaskState.RUNNING, ["k-r"], ("xs",), [[dumps({"x": 3})]], wid,
                        inc).skipped == ["k-r"] and made.skipped == []
    assert rsh.tasks.count("k-r") == 1


def test_a_resent_blocking_pop_strands_nothing(rsh, store, worker):
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}, {"x": 3}])
    wid, inc = worker.worker_id, worker.incarnation
    # a BLMOVE whose reply was lost, sent again: two keys in the pending list
    assert store.pop_to_pending(wid, 1) == keys[0]
    assert store.pop_to_pending(wid, 1) == keys[1]
    assert store.claim_pending(wid, inc, ["xs"], "s1").key == keys[0]
    # the next pop takes the pending one before the queue
    assert store.pop(wid, inc, ["xs"], "s2").key == keys[1]
    assert store.pop(wid, inc, ["xs"], "s3").key == keys[2]
    assert rsh.running_tasks and set(rsh.running_tasks) == set(keys)


def test_a_network_whose_data_vanished_is_noticed(rsh, store, worker):
    keys = worker.push_running_tasks([{"x": 1}])
    worker.finish_tasks(keys, [{"y": 1}])
    assert len(rsh.fetch_finished_tasks()) == 1
    for key in rsh.keys.fixed_keys():  # what a FLUSHALL does to this network
        store.client.delete(key)
    left = sorted(store.client.keys(rsh.keys.pattern()))
    with pytest.raises(RushNetworkLostError) as lost:
        rsh.n_finished_tasks
    assert "gone from Redis" in str(lost.value) and "1 cached result" in str(lost.value)
    assert len(lost.value.finished_tasks) == 1 and lost.value.finished_tasks["y"].tolist() == [1]
    with pytest.raises(RushNetworkLostError):
        rsh.fetch_finished_tasks()
    with pytest.raises(RushNetworkLostError):
        rsh.push_tasks([{"x": 2}])  # a controller's write would make a half network
    with pytest.raises(RushNetworkLostError):
        worker.push_running_tasks([{"x": 3}])  # a worker stops with a clear message
    assert sorted(store.client.keys(rsh.keys.pattern())) == left  # nothing was written
    rsh.reset()  # starts the network afresh
    assert rsh.push_tasks([{"x": 4}]) and rsh.n_tasks == 1


def test_start_args_are_the_given_ones_else_a_workers_own_else_the_latest(registry):
    assert registry.start_args("w1") is None
    registry.store_start_args("id-a", b"args a", ["w1"])
    registry.store_start_args("id-b", b"args b", [])
    assert registry.start_args("w1") == ("id-a", b"args a")
    assert registry.start_args("w-other") == ("id-b", b"args b")
    assert registry.start_args("w-script", "id-a") == ("id-a", b"args a")
    assert registry.start_args("w-script", "id-unknown") is None


def test_logs_are_pushed_and_read_from_an_index(registry):
    registry.push_logs("w1", [])
    registry.push_logs("w1", ['{"n": 1}', '{"n": 2}'])
    registry.push_logs("w2", ['{"n": 3}'])
    assert registry.read_logs(["w1", "w2", "w3"], [1, 0, 0]) == [[b'{"n": 2}'], [b'{"n": 3}'], []]


# -- where workers run, crashes, the index of networks ----------------------------------


def test_a_registration_records_where_the_process_runs(registry):
    registry.register("w1", "inc-w1", os.getpid(), "host", heartbeat_expire=None, remote=False)
    (info,) = registry.info()
    assert info["host"] == host_identity() != ""
    assert info["started"] == process_start(os.getpid())


def test_only_workers_of_this_host_are_checked_by_pid(rsh, registry):
    dead = subprocess.Popen(["true"])
    dead.wait()
    registry.register("here", "inc-here", dead.pid, "host", heartbeat_expire=None, remote=False)
    registry.register("there", "inc-there", dead.pid, "host", heartbeat_expire=None, remote=False)
    registry.client.hset(registry.keys.worker("there"), "host", "another-boot:another-ns")
    assert rsh.detect_lost_workers() == ["here"]
    assert registry.states() == {"here": "lost", "there": "running"}


def test_a_restarting_worker_is_not_checked_by_its_old_pid(rsh, registry):
    dead = subprocess.Popen(["true"])
    dead.wait()
    registry.register("w1", "inc-w1", dead.pid, "host", heartbeat_expire=None, remote=False)
    registry.set_running({"w1": "inc-new"})  # restart_workers: the new process registers later
    assert rsh.detect_lost_workers() == []
    assert registry.states() == {"w1": "running"}


def test_a_crash_is_stored_with_its_log_record_in_one_step(registry, network_id):
    registry.record_crash("w1", '{"worker_id": "w1"}', '{"level": "error"}')
    assert registry.crashes() == [b'{"worker_id": "w1"}']
    assert registry.read_logs(["w1"], [0]) == [[b'{"level": "error"}']]
    assert registry.client.zscore(NETWORKS, network_id) is not None


def test_the_index_lists_a_network_until_it_is_forgotten(config, registry, network_id):
    index = NetworkIndex(registry.client)
    assert not index.summary(network_id).exists
    registry.announce()
    assert network_id in index.network_ids()
    summary = index.summary(network_id)
    assert summary.exists and summary.workers == {} and summary.n_done == 0
    registry.register("w1", "inc-w1", os.getpid(), "host", heartbeat_expire=None, remote=False)
    assert index.summary(network_id).workers == {"running": 1}
    registry.forget_network()
    assert network_id not in index.network_ids()
