"""Scale (issue 14): many workers stopped in one step, a sweep in one read, a heartbeat
period in one request, large fetches read in chunks, and the kill-workers chaos property
with 64 local workers."""

from __future__ import annotations

import os
import random
from dataclasses import replace

import pytest

import loops
import rush
from rush import controller as controller_module
from rush.registry import WorkerRegistry
from rush.states import WorkerState
from rush.store import TaskStore
from worker_helpers import kill_at_random_until_settled

KILLED = {"message": "Worker was killed"}


# -- many workers in one step ------------------------------------------------------------


def test_stop_workers_stops_many_in_one_step_and_settles_each_ones_tasks(config, network_id):
    signed = replace(config, secret="scale-secret")
    with rush.rsh(network_id, config=signed) as ctrl:
        workers = [rush.RushWorker(network_id, config=signed) for _ in range(5)]
        store = TaskStore.connect(network_id, signed)
        try:
            retried, spent = ctrl.push_tasks([{"x": 1}, {"x": 2}], max_retries=[1, 0])
            workers[0].pop_task(timeout=0)  # retried: back to the queue
            workers[1].pop_task(timeout=0)  # spent: fails
            running, = workers[2].push_running_tasks([{"x": 3}])
            own = ctrl.push_priority_tasks([{"x": 4}], priority=[workers[3].worker_id])
            workers[4].finish_tasks(workers[4].push_running_tasks([{"x": 5}]), [{"y": 5}])
            store.client.hset(ctrl.keys.worker_states, workers[4].worker_id, "terminated")
            ids = [w.worker_id for w in workers] + ["unknown"]

            calls: list[str] = []
            original = store.scripts.call
            store.scripts.call = lambda *a: calls.append(a[0]) or original(*a)
            try:
                stopped = store.stop_workers(ids, WorkerState.KILLED, KILLED)
            finally:
                store.scripts.call = original

            assert stopped == ids[:4]  # running ones only, in the order given
            assert calls == ["stop_workers", "stop_workers"]  # then the signed conditions
            assert store.stop_workers(ids, WorkerState.KILLED, KILLED) == []  # idempotent
            assert ctrl.queued_tasks == own + [retried]
            assert sorted(ctrl.failed_tasks) == sorted([spent, running])
            assert ctrl.read_hashes([spent, running], "condition") == [
                {"message": "Task failed after 1 attempts: Worker was killed"}, KILLED]
            states = {w.worker_id: s for w, s in zip(workers, ["killed"] * 4 + ["terminated"])}
            assert ctrl._registry.states() == states
            assert ctrl.n_running_tasks == 0 and ctrl.n_queued_priority_tasks == 0
        finally:
            store.close()
            for w in workers:
                w.close()
            ctrl.reset()


def test_a_sweep_reads_states_processes_and_heartbeat_keys_at_once(registry_on):
    registry, store = registry_on
    registry.register("beating", "i1", os.getpid(), "h", heartbeat_expire=30, remote=True)
    registry.register("expired", "i2", os.getpid(), "h", heartbeat_expire=30, remote=True)
    registry.register("plain", "i3", os.getpid(), "h", heartbeat_expire=None, remote=False)
    registry.heartbeat("forget", "expired", "i2")
    store.stop_workers(["plain"], WorkerState.LOST, {"message": "lost"})
    rows = {r.worker_id: r for r in registry.sweep()}
    assert {w: (r.state, r.heartbeat, r.beating) for w, r in rows.items()} == {
        "beating": ("running", True, True), "expired": ("running", True, False),
        "plain": ("lost", False, False)}
    assert rows["beating"].pid == os.getpid() and rows["beating"].started is not None


def test_detect_lost_workers_stops_every_dead_one_in_one_step(rsh, registry_on):
    registry, store = registry_on
    for i in range(30):
        registry.register(f"w{i}", f"i{i}", os.getpid(), "h", heartbeat_expire=30,
                          remote=True)
    for i in range(0, 30, 3):
        registry.heartbeat("forget", f"w{i}", f"i{i}")
    calls: list[str] = []
    original = rsh._store.scripts.call
    rsh._store.scripts.call = lambda *a: calls.append(a[0]) or original(*a)
    try:
        lost = rsh.detect_lost_workers()
    finally:
        rsh._store.scripts.call = original
    assert lost == [f"w{i}" for i in range(0, 30, 3)]
    assert calls.count("stop_workers") == 1 and "stop_worker" not in calls
    assert rsh.n_lost_workers == 10 and rsh.n_running_workers == 20


def test_a_beat_in_one_request_after_the_block_reads_the_next_deadline(registry_on, rsh):
    registry, store = registry_on
    registry.register("w1", "i1", os.getpid(), "h", heartbeat_expire=30, remote=True)
    assert registry.beat("w1", "i1", 30) == ("ok", None)
    store.client.zadd(rsh.keys.deadlines("w1"), {"task-a": 1e12, "task-b": 1})
    target, beat = registry.wait_then_beat("w1", "i1", 0.01, 30)
    assert target is None and beat.status == "ok" and beat.due[0] == "task-b"
    assert beat.due[1] < 0  # past
    registry.send_kill(["w1"])
    store.client.script_flush()  # a restarted server: the beat still lands
    target, beat = registry.wait_then_beat("w1", "i1", 1, 30)
    assert target == "i1" and beat.status == "ok"
    assert registry.wait_then_beat("w1", "other", 0.01, 30)[1].status == "stale"


@pytest.fixture
def registry_on(config, network_id, rsh):
    """The registry and store of the test's network, each on a connection of its own."""
    registry = WorkerRegistry.connect(network_id, config)
    store = TaskStore.connect(network_id, config)
    yield registry, store
    registry.close()
    store.close()


# -- large fetches -------------------------------------------------------------------------


def test_a_fetch_read_in_chunks_equals_the_frame_of_one_read(rsh, worker, monkeypatch):
    xss = [{"x": i} for i in range(7)] + [{"x": 7.5, "z": "a"}] + [{"x": i} for i in range(8, 23)]
    keys = worker.push_running_tasks(xss)
    worker.finish_tasks(keys, [{"y": i * 0.5} for i in range(23)])
    whole = rsh.fetch_finished_tasks()
    rsh.reset_cache()
    monkeypatch.setattr(controller_module, "READ_CHUNK", 5)
    chunked = rsh.fetch_finished_tasks()
    assert list(chunked.columns) == list(whole.columns)
    assert list(chunked.dtypes) == list(whole.dtypes)
    assert chunked.astype(object).where(chunked.notna(), None).values.tolist() == \
        whole.astype(object).where(whole.notna(), None).values.tolist()
    assert chunked["x"].dtype == object  # ints of one chunk with a float of another
    assert len(rsh.fetch_new_tasks()) == 23


# -- the kill-workers chaos property with 64 local workers ------------------------------------


@pytest.mark.timeout(300)  # about 40 s on 2 idle cores
def test_chaos_64_local_workers_sigkilled_at_random_lose_no_task(rsh):
    """3,000 queued tasks worked through by 64 local workers while workers are SIGKILLed
    at random and the lost ones restarted: every task ends finished, or failed after all
    its attempts, and no task is ever in two states."""
    rng = random.Random(1414)
    n, n_workers, retries = 3000, 64, 4
    keys = rsh.push_tasks([{"x": i, "sleep": 0.2} for i in range(n)], max_retries=retries)
    rsh.start_local_workers(loops.wl_task_queue, n_workers=n_workers)
    rsh.wait_for_workers(n_workers, timeout=240)
    kills = kill_at_random_until_settled(rsh, n, rng, every=0.3, timeout=240)

    snapshot = rsh.tasks_with_state()
    assert snapshot["queued"] == [] and snapshot["running"] == []
    assert sorted(snapshot["finished"] + snapshot["failed"]) == sorted(keys)
    tasks = rsh.fetch_tasks_with_state(fields=["xs", "ys", "attempts", "condition"])
    assert len(tasks) == n and tasks["keys"].is_unique
    finished = tasks[tasks["state"] == "finished"]
    failed = tasks[tasks["state"] == "failed"]
    assert set(finished["attempts"]) <= set(range(1, retries + 2))
    assert (failed["attempts"] == retries + 1).all()
    assert (finished["y"] == finished["x"]).all()  # each result is its own task's
    assert (finished["attempts"] > 1).any()  # the kills hit running tasks
    assert kills >= 10


def _as_bytes(value):
    """A value as Redis gives it back."""
    return value.encode() if isinstance(value, str) else bytes(value)


def test_columns_built_chunk_by_chunk_equal_one_build():
    from rush.frames import ColumnsBuilder, columns, frame
    from rush.keys import NetworkKeys
    from rush.serialization import Serializer

    serializer = Serializer(NetworkKeys("scale-frames"), None)
    fields = ["xs", "ys", "worker_id", "seed"]
    encoders = [serializer.encoder(f) for f in fields]
    rows = [[{"a": 1}, {"y": 1.0}, "w1", None], [{"b": 2, "a": 3}, None, "w2", None],
            [None, {"a": 0.5}, None, None], [{"a": 4}, 7, "w1", None],  # a non-dict ys
            [{"c": "x"}, {"y": 2.0}, "w3", None]]
    keys = [f"k{i}" for i in range(len(rows))]
    values = [None if v is None else _as_bytes(enc(key, v))
              for key, row in zip(keys, rows) for enc, v in zip(encoders, row)]
    whole = frame(columns(keys, fields, values, serializer))
    for size in (1, 2, 3):
        builder = ColumnsBuilder(fields, serializer)
        for at in range(0, len(keys), size):
            builder.add(keys[at:at + size], values[at * 4:(at + size) * 4])
        chunked = frame(builder.finish())
        assert list(chunked.columns) == list(whole.columns), size
        assert chunked.astype(object).where(chunked.notna(), None).values.tolist() == \
            whole.astype(object).where(whole.notna(), None).values.tolist()
    assert "ys.a" in whole.columns and "seed" not in whole.columns
