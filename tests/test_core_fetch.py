"""Fetching tasks as DataFrames: default columns, row order, non-scalar values, vanished
hashes, the finished-task cache, fetch_new_tasks and one-snapshot state fetches."""

from __future__ import annotations

import logging
import threading
import time

import pandas as pd
import pytest
import redis

import rush
from rush import RedisServer, RushWorker

from conftest import wait_until


def rush_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "rush" and r.levelno == logging.WARNING]


@pytest.fixture
def mixed(rsh, worker):
    """Two tasks in each state, created queued, running, finished, failed (in that order)."""
    queued = rsh.push_tasks([{"x1": 1, "x2": "a"}, {"x1": 2, "x2": "b"}],
                            xss_extra=[{"prio": 1}])
    running = worker.push_running_tasks([{"x1": 3, "x2": "c"}, {"x1": 4, "x2": "d"}],
                                        extra=[{"prio": 2}])
    finished = worker.push_running_tasks([{"x1": 5, "x2": "e"}, {"x1": 6, "x2": "f"}])
    worker.finish_tasks(finished[::-1], [{"y": 60}, {"y": 50}], yss_extra=[{"took": 0.1}])
    failed = worker.push_running_tasks([{"x1": 7, "x2": "g"}, {"x1": 8, "x2": "h"}])
    worker.fail_tasks(failed, [{"message": "m7"}, {"message": "m8"}])
    return dict(queued=queued, running=running, finished=finished[::-1], failed=failed,
                all=queued + running + finished + failed)


def test_fetch_tasks_defaults(rsh, worker, mixed):
    df = rsh.fetch_tasks()
    assert set(df.columns) == {"x1", "x2", "prio", "y", "took", "worker_id", "condition", "keys"}
    assert df["keys"].tolist() == mixed["all"]  # creation order
    assert df["x1"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    by_key = df.set_index("keys")
    assert by_key.loc[mixed["finished"][0], "y"] == 60
    assert by_key.loc[mixed["finished"][0], "took"] == 0.1
    assert by_key.loc[mixed["failed"][1], "condition"] == {"message": "m8"}
    assert by_key.loc[mixed["running"][0], "worker_id"] == worker.worker_id
    assert pd.isna(by_key.loc[mixed["queued"][0], "y"])
    assert pd.isna(by_key.loc[mixed["queued"][0], "worker_id"])
    assert df.columns[-1] == "keys"


def test_fetch_queued_tasks_defaults(rsh, mixed):
    df = rsh.fetch_queued_tasks()
    assert set(df.columns) == {"x1", "x2", "prio", "keys"}
    assert df["keys"].tolist() == mixed["queued"]
    assert df["prio"].tolist() == [1, 1]


def test_fetch_running_tasks_defaults(rsh, worker, mixed):
    df = rsh.fetch_running_tasks()
    assert set(df.columns) == {"x1", "x2", "prio", "worker_id", "keys"}
    assert set(df["keys"]) == set(mixed["running"])
    assert df["worker_id"].tolist() == [worker.worker_id] * 2


def test_fetch_finished_tasks_defaults(rsh, worker, mixed):
    df = rsh.fetch_finished_tasks()
    assert set(df.columns) == {"x1", "x2", "y", "took", "worker_id", "condition", "keys"}
    assert df["keys"].tolist() == mixed["finished"]  # finishing order
    assert df["y"].tolist() == [60, 50]
    assert df["x1"].tolist() == [6, 5]
    assert df["condition"].isna().all()


def test_fetch_failed_tasks_defaults(rsh, worker, mixed):
    df = rsh.fetch_failed_tasks()
    assert set(df.columns) == {"x1", "x2", "worker_id", "condition", "keys"}
    assert set(df["keys"]) == set(mixed["failed"])
    assert sorted(c["message"] for c in df["condition"]) == ["m7", "m8"]


def test_requested_fields_are_columns_even_when_no_task_has_them(rsh):
    rsh.push_failed_tasks([{"x": 1}])  # created by a controller: no worker_id
    rsh.push_finished_tasks([{"x": 2}], [{"y": 2}])
    assert set(rsh.fetch_failed_tasks().columns) == {"x", "worker_id", "condition", "keys"}
    assert set(rsh.fetch_finished_tasks().columns) == {"x", "y", "worker_id", "condition", "keys"}


def test_fetch_with_chosen_fields(rsh, mixed):
    assert set(rsh.fetch_tasks("xs").columns) == {"x1", "x2", "keys"}
    assert set(rsh.fetch_tasks(["ys", "worker_id"]).columns) == {"y", "worker_id", "keys"}
    assert set(rsh.fetch_finished_tasks(["ys"]).columns) == {"y", "keys"}
    assert list(rsh.fetch_queued_tasks([]).columns) == ["keys"]


def test_non_scalar_values_stay_one_cell_per_task(rsh, worker):
    np = pytest.importorskip("numpy")
    arrays = [np.arange(3), np.ones((2, 2))]
    keys = worker.push_running_tasks([{"v": [1, 2, 3], "a": arrays[0], "d": {"k": 1}},
                                      {"v": [4, 5, 6], "a": arrays[1], "d": {"k": 2}}])
    worker.finish_tasks(keys, [{"y": [0.5, 0.25]}, {"y": [1.0]}])
    for df in (rsh.fetch_tasks(), rsh.fetch_finished_tasks()):
        assert len(df) == 2
        assert df["v"].tolist() == [[1, 2, 3], [4, 5, 6]]
        assert df["d"].tolist() == [{"k": 1}, {"k": 2}]
        assert df["y"].tolist() == [[0.5, 0.25], [1.0]]
        np.testing.assert_array_equal(df["a"].iloc[0], arrays[0])
        np.testing.assert_array_equal(df["a"].iloc[1], arrays[1])
        assert df["a"].dtype == object


def test_no_tasks_gives_empty_frames_with_the_documented_columns(rsh):
    expected = {
        rsh.fetch_tasks: ["worker_id", "condition", "keys"],
        rsh.fetch_queued_tasks: ["keys"],
        rsh.fetch_running_tasks: ["worker_id", "keys"],
        rsh.fetch_finished_tasks: ["worker_id", "condition", "keys"],
        rsh.fetch_failed_tasks: ["worker_id", "condition", "keys"],
        rsh.fetch_new_tasks: ["worker_id", "condition", "keys"],
        rsh.fetch_tasks_with_state: ["worker_id", "condition", "state", "keys"],
    }
    for fetch, columns in expected.items():
        df = fetch()
        assert isinstance(df, pd.DataFrame) and len(df) == 0, fetch.__name__
        assert list(df.columns) == columns, fetch.__name__
    assert list(rsh.fetch_tasks(["xs", "worker_id"]).columns) == ["worker_id", "keys"]
    # what users do with a result works on an empty one too
    assert len(rsh.fetch_failed_tasks()["condition"]) == 0
    assert len(rsh.fetch_finished_tasks()[["worker_id", "keys"]]) == 0


def test_empty_and_full_frames_have_the_same_fixed_columns(rsh, worker, mixed):
    fetches = (rsh.fetch_tasks, rsh.fetch_queued_tasks, rsh.fetch_running_tasks,
               rsh.fetch_failed_tasks, rsh.fetch_tasks_with_state)
    full = {fetch: list(fetch().columns) for fetch in fetches}
    rsh.reset(workers=False)
    for fetch in fetches:
        empty = list(fetch().columns)
        assert [c for c in full[fetch] if c in empty] == empty, fetch.__name__
        assert set(full[fetch]) - set(empty) <= {"x1", "x2", "prio", "y", "took"}, fetch.__name__


def test_values_keep_their_python_types(rsh, worker):
    keys = worker.push_running_tasks([
        {"depth": None, "n": 4, "flag": True, "rate": 0.5, "name": "a", "mixed": 1},
        {"depth": 8, "n": 16, "flag": False, "rate": 1.5, "name": "b", "mixed": 2.5},
        {"depth": 16, "n": 32, "flag": True, "rate": float("nan"), "name": "c", "mixed": 3},
    ])
    worker.finish_tasks(keys, [{"y": 1}, {"y": 2}, {"y": 3}])

    for df in (rsh.fetch_finished_tasks(), rsh.fetch_tasks(), rsh.fetch_tasks_with_state(),
               rsh.fetch_new_tasks()):
        assert df["depth"].dtype == object  # None and ints: never float with NaN
        assert df["depth"].tolist() == [None, 8, 16]
        assert [type(v) for v in df["depth"]] == [type(None), int, int]
        assert df["n"].dtype == "int64" and df["n"].tolist() == [4, 16, 32]
        assert df["flag"].dtype == bool and df["flag"].tolist() == [True, False, True]
        assert df["rate"].dtype == "float64" and df["rate"].isna().tolist() == [False, False, True]
        assert df["name"].tolist() == ["a", "b", "c"]
        assert df["mixed"].dtype == object  # ints stay ints next to a float
        assert [type(v) for v in df["mixed"]] == [int, float, int]
        assert df["y"].dtype == "int64"
        best = df.loc[df["depth"] == 16, "depth"].iloc[0]
        assert type(best) is int  # refitting a model with it gets 16, not 16.0


def test_a_field_some_tasks_lack_is_none_or_nan_never_a_changed_value(rsh, worker):
    rsh.push_tasks([{"k": 1, "f": 0.5, "b": True, "s": "q"}])  # queued: no y, no worker
    keys = worker.push_running_tasks([{"k": 2, "f": 1.5, "b": False, "s": "r"}])
    worker.finish_tasks(keys, [{"y": 7}])

    df = rsh.fetch_tasks()

    assert df["k"].dtype == "int64"  # every task has k
    assert df["y"].dtype == object and df["y"].tolist() == [None, 7]  # ints, one absent
    assert df["worker_id"].tolist() == [None, worker.worker_id]
    assert df["f"].dtype == "float64" and df["b"].dtype == bool
    floats = rsh.fetch_tasks(["ys"])
    assert floats["y"].tolist() == [None, 7]
    worker.finish_tasks(worker.push_running_tasks([{"k": 3}]), [{"z": 0.25}])
    assert rsh.fetch_tasks()["z"].dtype == "float64"  # floats, some absent: NaN there
    assert rsh.fetch_tasks()["z"].isna().tolist() == [True, True, False]


def test_the_cache_keeps_the_types_across_fetches(rsh, worker):
    def finish(xs: dict, ys: dict) -> None:
        worker.finish_tasks(worker.push_running_tasks([xs]), [ys])

    finish({"n": 1, "flag": True}, {"y": 1})
    first = rsh.fetch_finished_tasks()
    assert first["n"].dtype == "int64" and first["y"].dtype == "int64"
    finish({"n": 2, "flag": False}, {"y": 2})
    assert rsh.fetch_finished_tasks()["n"].dtype == "int64"  # same types: stays int64
    finish({"n": None, "extra": 1}, {"y": 2.5})  # None, a new column, a float among ints
    df = rsh.fetch_finished_tasks()
    assert df["n"].tolist() == [1, 2, None] and df["n"].dtype == object
    assert [type(v) for v in df["y"]] == [int, int, float]
    assert df["flag"].tolist() == [True, False, None]
    assert df["extra"].tolist() == [None, None, 1]
    assert df.columns[-3:].tolist() == ["worker_id", "condition", "keys"]
    rsh.reset_cache()
    again = rsh.fetch_finished_tasks()  # one read of everything: the same frame
    pd.testing.assert_frame_equal(df, again, check_like=True)  # (columns maybe reordered)


def test_a_vanished_hash_is_dropped_with_a_warning(rsh, mixed, caplog):
    gone = [mixed["queued"][0], mixed["finished"][1], mixed["failed"][0], mixed["running"][1]]
    rsh.connector.delete(*[rsh.keys.task(k) for k in gone])
    # one task of each state lost its hash
    calls = [(rsh.fetch_tasks, 4), (rsh.fetch_queued_tasks, 1), (rsh.fetch_running_tasks, 1),
             (rsh.fetch_finished_tasks, 1), (rsh.fetch_failed_tasks, 1),
             (rsh.fetch_tasks_with_state, 4), (rsh.fetch_new_tasks, 1)]
    for fetch, expected in calls:
        caplog.clear()
        df = fetch()
        assert len(df) == expected, fetch.__name__
        assert not set(gone) & set(df["keys"]), fetch.__name__
        warnings = rush_warnings(caplog)
        assert len(warnings) == 1, fetch.__name__
        assert any(k in warnings[0].getMessage() for k in gone)
    assert len(rsh.fetch_tasks()) == 4


def test_finished_tasks_are_cached(rsh, worker, caplog):
    keys = worker.push_running_tasks([{"x": i} for i in range(5)])
    worker.finish_tasks(keys, [{"y": i} for i in range(5)])
    first = rsh.fetch_finished_tasks()
    assert first["y"].tolist() == [0, 1, 2, 3, 4]
    # a cached task is not read again: deleting its hash now does not change the result
    rsh.connector.delete(rsh.keys.task(keys[0]))
    more = worker.push_running_tasks([{"x": i} for i in range(5, 8)])
    worker.finish_tasks(more, [{"y": i, "z": 0} for i in range(5, 8)])
    caplog.clear()
    second = rsh.fetch_finished_tasks()
    assert second["keys"].tolist() == keys + more
    assert second["z"].isna().sum() == 5 and second.columns[-1] == "keys"
    assert second["y"].tolist() == list(range(8))
    assert not rush_warnings(caplog)
    assert rsh.fetch_finished_tasks()["keys"].tolist() == keys + more  # nothing new
    # the cache is per field selection
    assert rsh.fetch_finished_tasks("ys")["keys"].tolist() == keys[1:] + more
    # reset_cache reads everything again
    rsh.reset_cache()
    third = rsh.fetch_finished_tasks()
    assert third["keys"].tolist() == keys[1:] + more
    assert len(rush_warnings(caplog)) == 2


def test_changing_a_fetched_frame_does_not_change_the_cache(rsh, worker):
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}])
    worker.finish_tasks(keys, [{"y": 1}, {"y": 2}])
    df = rsh.fetch_finished_tasks()
    df.loc[0, "y"] = 999
    df["x"] = 0
    again = rsh.fetch_finished_tasks()
    assert again["y"].tolist() == [1, 2]
    assert again["x"].tolist() == [1, 2]


def test_fetch_new_tasks_returns_only_new_ones(rsh, worker):
    keys = worker.push_running_tasks([{"x": i} for i in range(3)])
    worker.finish_tasks(keys[:2], [{"y": 0}])
    assert rsh.fetch_new_tasks()["keys"].tolist() == keys[:2]
    assert rsh.fetch_new_tasks().empty
    assert len(rsh.fetch_finished_tasks()) == 2  # its own cursor, apart from the cache
    worker.finish_tasks(keys[2], [{"y": 1}])
    new = rsh.fetch_new_tasks()
    assert new["keys"].tolist() == [keys[2]]
    assert new["y"].tolist() == [1]
    assert rsh.fetch_new_tasks(fields="ys").empty
    assert len(rsh.fetch_finished_tasks()) == 3


def test_fetch_new_tasks_waits_for_a_task(rsh, worker):
    key = worker.push_running_tasks([{"x": 1}])[0]

    def finish_when_controller_waits() -> None:
        wait_until(lambda: any(c.get("cmd") in ("subscribe", "ssubscribe")
                               for c in rsh.connector.client_list()),
                   timeout=10, message="the controller to subscribe")
        worker.finish_tasks(key, [{"y": 7}])

    thread = threading.Thread(target=finish_when_controller_waits)
    thread.start()
    start = time.monotonic()
    new = rsh.fetch_new_tasks(timeout=20)
    elapsed = time.monotonic() - start
    thread.join(10)
    assert new["keys"].tolist() == [key]
    assert new["y"].tolist() == [7]
    assert elapsed < 10


def test_fetch_new_tasks_returns_empty_after_the_timeout(rsh, worker):
    worker.push_running_tasks([{"x": 1}])
    start = time.monotonic()
    new = rsh.fetch_new_tasks(timeout=0.6)
    elapsed = time.monotonic() - start
    assert new.empty
    assert 0.55 <= elapsed < 5


def test_fetch_new_tasks_waiting_does_not_hammer_redis(network_id):
    with RedisServer() as server:
        controller = rush.rsh(network_id, config=server.config)
        probe = redis.Redis(**server.config.connection_kwargs())

        def commands() -> int:
            return int(probe.info("stats")["total_commands_processed"])

        before = commands()
        start = time.monotonic()
        assert controller.fetch_new_tasks(timeout=1.5).empty
        elapsed = time.monotonic() - start
        used = commands() - before - 1  # minus the INFO itself
        assert used <= 100 * elapsed, used
        controller.close()
        probe.close()


def test_fetch_tasks_with_state(rsh, mixed):
    df = rsh.fetch_tasks_with_state()
    assert "state" in df.columns
    assert len(df) == 8 and df["keys"].is_unique
    state = dict(zip(df["keys"], df["state"]))
    for name in ("queued", "running", "finished", "failed"):
        assert {k for k, s in state.items() if s == name} == set(mixed[name]), name
    sub = rsh.fetch_tasks_with_state(fields=["xs"], states=["finished", "queued"])
    assert set(sub.columns) == {"x1", "x2", "state", "keys"}
    assert sub["state"].tolist() == ["finished", "finished", "queued", "queued"]
    assert sub["keys"].tolist() == mixed["finished"] + mixed["queued"]
    assert rsh.fetch_tasks_with_state(states="running")["state"].tolist() == ["running"] * 2


def test_fetch_tasks_with_state_never_shows_a_task_twice_while_tasks_move(rsh, config,
                                                                         network_id):
    """Snapshots taken while a worker pops and finishes tasks: no key twice, none missing."""
    keys = rsh.push_tasks([{"x": i} for i in range(300)])
    mover = RushWorker(network_id, config=config)
    stop = threading.Event()

    def move() -> None:
        while not stop.is_set():
            task = mover.pop_task(timeout=0)
            if task is None:
                return
            mover.finish_tasks(task["key"], [{"y": 1}])

    thread = threading.Thread(target=move)
    thread.start()
    try:
        snapshots = 0
        while thread.is_alive() or snapshots == 0:
            df = rsh.fetch_tasks_with_state(fields=[])
            assert df["keys"].is_unique
            assert sorted(df["keys"]) == sorted(keys)
            snapshots += 1
    finally:
        stop.set()
        thread.join(10)
        mover.close()
    assert rsh.n_finished_tasks == 300


def test_finished_tasks_read_in_chunks(rsh, worker, monkeypatch, caplog):
    monkeypatch.setattr(rush.controller, "READ_CHUNK", 7)
    keys = worker.push_running_tasks([{"x": i} for i in range(30)])
    worker.finish_tasks(keys[:20], [{"y": 1}])
    rsh.connector.delete(rsh.keys.task(keys[9]))  # a hole inside the second chunk
    first = rsh.fetch_finished_tasks()
    assert first["keys"].tolist() == keys[:9] + keys[10:20]
    worker.finish_tasks(keys[20:], [{"y": 2}])
    second = rsh.fetch_finished_tasks()
    assert second["keys"].tolist() == keys[:9] + keys[10:]
    assert rsh.fetch_new_tasks()["keys"].tolist() == keys[:9] + keys[10:]
    assert len(rush_warnings(caplog)) == 2  # the hole, once per reader


def test_names_that_collide_keep_every_value(rsh, worker):
    keys = worker.push_running_tasks([{"x": 1, "keys": "mine", "state": "ok"},
                                      {"x": 2, "keys": "also mine", "state": "fine"}])
    worker.finish_tasks(keys, [{"x": 10, "y": 1, "worker_id": "w?"},
                               {"x": 20, "y": 2, "worker_id": "w!"}])
    df = rsh.fetch_finished_tasks()
    assert df["x"].tolist() == [1, 2] and df["ys.x"].tolist() == [10, 20]
    assert df["xs.keys"].tolist() == ["mine", "also mine"] and df["keys"].tolist() == keys
    assert df["ys.worker_id"].tolist() == ["w?", "w!"]
    assert df["worker_id"].tolist() == [worker.worker_id] * 2
    both = rsh.fetch_tasks_with_state()
    assert both["xs.state"].tolist() == ["ok", "fine"]
    assert both["state"].tolist() == ["finished", "finished"]
    # the same in a frame built task by task (a value that is not a dict in one task)
    odd = worker.push_running_tasks([{"x": 3}])
    worker.finish_tasks(odd, [{"x": 30, "keys": "odd"}])
    rsh.write_hashes(odd, ys_extra=[{"note": 1}])
    again = rsh.fetch_finished_tasks()
    assert again["ys.x"].tolist() == [10, 20, 30] and again["ys.keys"].tolist()[-1] == "odd"
