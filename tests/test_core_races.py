"""First writer wins: concurrent writers through the public API (the store-level races
are in test_store_contract.py)."""

from __future__ import annotations

import logging

from conftest import run_together, rush_warnings


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
