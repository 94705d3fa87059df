"""First writer wins: concurrent writers, stopped workers, and a worker killed between
pop and mark-running (the steps called by hand)."""

from __future__ import annotations

import logging
import threading

import pytest

import rush
from rush import RushWorker, WorkerStoppedError
from rush.serialization import dumps

KILLED = {"message": "Worker was killed"}


def rush_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "rush" and r.levelno == logging.WARNING]


@pytest.fixture
def make_worker(config, network_id, rsh):
    made: list[RushWorker] = []

    def make() -> RushWorker:
        w = RushWorker(network_id, config=config)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def run_together(*targets) -> None:
    """Start the targets at the same moment in threads; re-raise their errors."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def run(target):
        try:
            barrier.wait(10)
            target()
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]


# -- concurrent writers ------------------------------------------------------------------


def test_finishing_and_failing_the_same_keys_at_once(rsh, make_worker, caplog):
    owner, finisher, failer = make_worker(), make_worker(), make_worker()
    keys = owner.push_running_tasks([{"x": i} for i in range(200)])
    caplog.set_level(logging.WARNING, logger="rush")

    def finish() -> None:
        for key in keys:
            finisher.finish_tasks(key, [{"y": 1}])

    def fail() -> None:
        for key in reversed(keys):  # the two meet in the middle
            failer.fail_tasks(key, [{"message": "failer"}])

    run_together(finish, fail)
    finished, failed = set(rsh.finished_tasks), set(rsh.failed_tasks)
    assert not finished & failed
    assert finished | failed == set(keys)
    assert rsh.n_finished_tasks + rsh.n_failed_tasks == 200
    assert rsh.n_finished_tasks == len(rsh.finished_tasks)  # no key twice in the list
    assert rsh.n_running_tasks == 0 and rsh.n_tasks == 200
    # every loser was told: one warning per discarded call, naming its key
    warnings = rush_warnings(caplog)
    assert len(warnings) == 200
    assert {k for k in keys if any(k in r.getMessage() for r in warnings)} == set(keys)
    # each task carries only its winner's output
    df = rsh.fetch_tasks(["ys", "condition"])
    for key, y, condition in zip(df["keys"], df["y"], df["condition"]):
        assert (key in finished) == (y == 1) == (condition is None)


def test_finishing_and_failing_in_batches_at_once(rsh, make_worker, caplog):
    owner, finisher, failer = make_worker(), make_worker(), make_worker()
    keys = owner.push_running_tasks([{"x": i} for i in range(200)])

    def finish() -> None:
        for i in range(0, 200, 20):
            finisher.finish_tasks(keys[i:i + 20], [{"y": 1}])

    def fail() -> None:
        for i in range(200, 0, -20):
            failer.fail_tasks(keys[i - 20:i])

    run_together(finish, fail)
    finished, failed = set(rsh.finished_tasks), set(rsh.failed_tasks)
    assert not finished & failed and finished | failed == set(keys)
    assert rsh.n_finished_tasks + rsh.n_failed_tasks == 200


def test_concurrent_pops_take_each_task_once(rsh, make_worker):
    keys = rsh.push_tasks([{"x": i} for i in range(150)])
    workers = [make_worker() for _ in range(3)]
    popped: list[list[str]] = [[] for _ in workers]

    def popper(i: int):
        def pop() -> None:
            while True:
                # timeout > 0 takes the blocking path (queue -> pending -> running) too
                task = workers[i].pop_task(timeout=0.2)
                if task is None:
                    return
                popped[i].append(task["key"])
        return pop

    run_together(*(popper(i) for i in range(3)))
    every = [k for keys_ in popped for k in keys_]
    assert sorted(every) == sorted(keys)  # each exactly once
    assert rsh.n_queued_tasks == 0 and rsh.n_running_tasks == 150
    owners = {k: h["worker_id"] for k, h in zip(keys, rsh.read_hashes(keys, "worker_id"))}
    for i, w in enumerate(workers):
        assert all(owners[k] == w.worker_id for k in popped[i])


# -- a stopped worker writes nothing -----------------------------------------------------


def test_a_stopped_worker_writes_nothing(rsh, make_worker, caplog):
    victim, bystander = make_worker(), make_worker()
    mine = victim.push_running_tasks([{"x": 1}, {"x": 2}])
    popped_key = rsh.push_tasks([{"x": 3}])[0]
    assert victim.pop_task(timeout=0)["key"] == popped_key
    theirs = bystander.push_running_tasks([{"x": 4}, {"x": 5}])
    rsh.push_tasks([{"x": 6}])

    failed = rsh._store.stop_worker(victim.worker_id, "killed", dumps(KILLED))
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
    assert rsh.read_hash(mine[0], "condition", flatten=False) == {"condition": KILLED}
    victim.set_terminated()
    assert rsh.killed_worker_ids == [victim.worker_id]  # a killed worker stays killed

    # the bystander carries on
    bystander.finish_tasks(theirs, [{"y": 2}])
    assert bystander.pop_task(timeout=0)["xs"] == {"x": 6}
    assert set(rsh.finished_tasks) == set(theirs)


def test_stop_sweep_is_idempotent(rsh, make_worker):
    victim = make_worker()
    keys = victim.push_running_tasks([{"x": 1}, {"x": 2}])
    assert sorted(rsh._store.stop_worker(victim.worker_id, "killed", dumps(KILLED))) == sorted(keys)
    snapshot = (rsh.tasks_with_state(), rsh.worker_info.to_dict("records"))
    assert rsh._store.stop_worker(victim.worker_id, "lost", dumps({"message": "again"})) is None
    assert rsh._store.stop_worker(victim.worker_id, "killed", dumps(KILLED)) is None
    assert (rsh.tasks_with_state(), rsh.worker_info.to_dict("records")) == snapshot
    assert [h["condition"] for h in rsh.read_hashes(keys, "condition", flatten=False)] == [KILLED] * 2
    assert rsh.killed_worker_ids == [victim.worker_id] and rsh.lost_worker_ids == []


def test_stop_sweep_of_a_terminated_or_unknown_worker_does_nothing(rsh, make_worker):
    done = make_worker()
    done.set_terminated()
    assert rsh._store.stop_worker(done.worker_id, "lost", dumps(KILLED)) is None
    assert rsh._store.stop_worker("no-such-worker", "lost", dumps(KILLED)) is None
    assert rsh.terminated_worker_ids == [done.worker_id]
    assert rsh.worker_ids == [done.worker_id]


def test_two_sweeps_racing_change_the_worker_once(rsh, make_worker, config, network_id):
    victim = make_worker()
    keys = victim.push_running_tasks([{"x": i} for i in range(50)])
    sweepers = [rush.rsh(network_id, config=config) for _ in range(2)]  # own connections
    results: list = [None, None]

    def sweep(i: int):
        def run() -> None:
            results[i] = sweepers[i]._store.stop_worker(
                victim.worker_id, ("killed", "lost")[i], dumps({"message": f"sweep {i}"}))
        return run

    try:
        run_together(sweep(0), sweep(1))
    finally:
        for s in sweepers:
            s.close()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and sorted(winners[0]) == sorted(keys)
    state = rsh.worker_info["state"].tolist()[0]
    message = {"killed": "sweep 0", "lost": "sweep 1"}[state]
    conditions = [h["condition"] for h in rsh.read_hashes(keys, "condition", flatten=False)]
    assert conditions == [{"message": message}] * 50
    assert rsh.n_failed_tasks == 50 and rsh.n_running_tasks == 0


def test_sweep_racing_the_worker_finishing(rsh, make_worker, config, network_id):
    """Kill sweep and the worker's own finish_tasks race: each task ends exactly once."""
    victim = make_worker()
    keys = victim.push_running_tasks([{"x": i} for i in range(200)])

    def finish() -> None:
        for key in keys:
            victim.finish_tasks(key, [{"y": 1}])

    def sweep() -> None:
        rsh._store.stop_worker(victim.worker_id, "killed", dumps(KILLED))

    run_together(finish, sweep)
    finished, failed = set(rsh.finished_tasks), set(rsh.failed_tasks)
    assert not finished & failed and finished | failed == set(keys)
    assert rsh.n_running_tasks == 0
    assert rsh.killed_worker_ids == [victim.worker_id]


# -- killed between pop and mark-running -------------------------------------------------


def test_worker_killed_between_pop_and_mark_running_loses_no_task(rsh, make_worker):
    victim = make_worker()
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}])
    # step 1 of a blocking pop: the task is only in the victim's pending list now
    assert victim._store.pop_to_pending(victim.worker_id, 1) == keys[0]
    assert rsh.connector.lrange(rsh.keys.pending(victim.worker_id), 0, -1) == [keys[0].encode()]
    assert rsh.queued_tasks == keys[1:] and rsh.n_running_tasks == 0
    # the worker dies here; the sweep fails the pending task
    failed = rsh._store.stop_worker(victim.worker_id, "lost", dumps({"message": "lost"}))
    assert failed == [keys[0]]
    assert rsh.failed_tasks == [keys[0]]
    assert rsh.read_hash(keys[0], ["condition", "worker_id"], flatten=False) == {
        "condition": {"message": "lost"}, "worker_id": victim.worker_id}
    assert not rsh.connector.exists(rsh.keys.pending(victim.worker_id))
    # had it not died, its step 2 is refused and changes nothing
    with pytest.raises(WorkerStoppedError):
        victim._store.claim_pending(victim.worker_id, ["xs"])
    assert rsh.queued_tasks == keys[1:] and rsh.failed_tasks == [keys[0]]
    assert sorted(k for ks in rsh.tasks_with_state().values() for k in ks) == sorted(keys)


def test_worker_stopped_before_its_pop_lands_puts_the_task_back(rsh, make_worker):
    victim = make_worker()
    assert rsh._store.stop_worker(victim.worker_id, "killed", dumps(KILLED)) == []
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}])
    # the BLMOVE lands after the sweep ...
    assert victim._store.pop_to_pending(victim.worker_id, 1) == keys[0]
    # ... so the claim is refused and the task goes back to the head of the queue
    with pytest.raises(WorkerStoppedError):
        victim._store.claim_pending(victim.worker_id, ["xs"])
    assert rsh.queued_tasks == keys
    assert not rsh.connector.exists(rsh.keys.pending(victim.worker_id))
    assert rsh.n_failed_tasks == rsh.n_running_tasks == 0
    # and another worker gets it first
    other = make_worker()
    assert other.pop_task(timeout=0)["key"] == keys[0]


def test_pop_landing_after_the_sweep_of_a_worker_that_then_dies_is_failed(rsh, make_worker,
                                                                          caplog):
    victim = make_worker()
    assert rsh._store.stop_worker(victim.worker_id, "lost", dumps({"message": "lost"})) == []
    keys = rsh.push_tasks([{"x": 1}, {"x": 2}])
    # the BLMOVE lands after the sweep and the worker dies before its claim: the task
    # would sit in a stopped worker's pending list forever, but the next sweep fails it
    assert victim._store.pop_to_pending(victim.worker_id, 1) == keys[0]
    with caplog.at_level(logging.WARNING, logger="rush"):
        assert rsh.detect_lost_workers() == []
    assert rsh.failed_tasks == [keys[0]] and rsh.queued_tasks == keys[1:]
    assert rsh.read_hash(keys[0], "condition", flatten=False)["condition"] == {
        "message": "Worker has crashed or was killed"}
    assert not rsh.connector.exists(rsh.keys.pending(victim.worker_id))
    assert "left pending" in caplog.text
    # a running worker's pending task is left to its claim
    alive = make_worker()
    assert alive._store.pop_to_pending(alive.worker_id, 1) == keys[1]
    rsh.detect_lost_workers()
    assert alive._store.claim_pending(alive.worker_id, ["xs"])[0] in (keys[1], keys[1].encode())


def test_claim_with_an_empty_pending_list(rsh, worker):
    assert worker._store.claim_pending(worker.worker_id, ["xs"]) is None
    key = rsh.push_tasks([{"x": 1}])[0]
    assert worker._store.pop_to_pending(worker.worker_id, 1) == key
    got = worker._store.claim_pending(worker.worker_id, ["xs"])
    assert got[0] in (key, key.encode())
    assert rsh.running_tasks == [key]
