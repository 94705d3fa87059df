"""Remote workers on a real distributed engine: a Dask LocalCluster with worker processes
and a ProcessPoolExecutor, against the private Redis."""

from __future__ import annotations

import logging
import os
import socket
from concurrent.futures import ProcessPoolExecutor

import pytest

import rush
from conftest import wait_until
from remote_loops import wl_hold, wl_pop_then_die, wl_queue

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def dask_client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def dask_pids(client) -> set[int]:
    client.wait_for_workers(2, timeout=60)
    return set(client.run(os.getpid).values())


def test_remote_workers_register_with_real_pid_and_run_tasks(rsh, dask_client):
    ids = rsh.start_remote_workers(wl_queue, n_workers=2, executor=dask_client)
    rsh.wait_for_workers(worker_ids=ids, timeout=60)
    info = rsh.worker_info
    assert list(info.columns) == ["worker_id", "pid", "remote", "hostname", "heartbeat", "state"]
    assert set(info["worker_id"]) == set(ids)
    assert info["remote"].all() and info["heartbeat"].all()
    assert set(info["pid"]) <= dask_pids(dask_client)
    assert set(info["hostname"]) == {socket.gethostname()}
    assert set(rsh.futures) == set(ids)

    keys = rsh.push_tasks([{"x": i} for i in range(20)])
    rsh.wait_for_tasks(keys, timeout=60)
    done = rsh.fetch_finished_tasks()
    assert sorted(done["y"]) == [2 * i for i in range(20)]
    assert set(done["worker_id"]) <= set(ids)

    rsh.stop_workers(type="terminate")
    wait_until(lambda: rsh.n_terminated_workers == 2, 30, message="workers terminated")
    wait_until(lambda: all(f.done() for f in rsh.futures.values()), 30, message="futures done")
    assert rsh.detect_lost_workers() == []


def test_remote_worker_that_dies_is_lost_and_not_rerun_by_the_engine(rsh, dask_client):
    key = rsh.push_tasks([{"x": 1}])[0]
    [worker_id] = rsh.start_remote_workers(wl_pop_then_die, n_workers=1, executor=dask_client)
    lost = wait_until(rsh.detect_lost_workers, 30, message="the dead worker found lost")
    assert lost == [worker_id]
    assert rsh.lost_worker_ids == [worker_id]
    failed = rsh.fetch_failed_tasks()
    assert list(failed["keys"]) == [key]
    assert failed["condition"][0]["message"] == "Worker has crashed or was killed"
    pid = int(rsh.worker_info["pid"][0])
    # Dask re-runs the task on another process; the re-run must not revive the worker:
    # it finds its one-time launch token used and returns None without registering
    future = rsh.futures[worker_id]
    wait_until(future.done, 60, message="the engine's re-run to end")
    if future.status == "finished":
        assert future.result() is None
    assert rsh.detect_lost_workers() == []
    info = rsh.worker_info.set_index("worker_id")
    assert info.loc[worker_id, "state"] == "lost" and info.loc[worker_id, "pid"] == pid


def test_kill_remote_worker_fails_its_task_and_kills_its_process(rsh, dask_client):
    key = rsh.push_tasks([{"x": 1}])[0]
    [worker_id] = rsh.start_remote_workers(wl_hold, n_workers=1, executor=dask_client,
                                           heartbeat_period=0.5)
    wait_until(lambda: rsh.n_running_tasks == 1, 60, message="the task running")
    pid = int(rsh.worker_info["pid"][0])
    rsh.stop_workers(type="kill", worker_ids=worker_id)
    assert rsh.killed_worker_ids == [worker_id]
    failed = rsh.fetch_failed_tasks()
    assert list(failed["keys"]) == [key]
    assert failed["condition"][0]["message"] == "Worker was killed"
    wait_until(lambda: not _alive(pid), 30, message="the worker process killed")
    assert rsh.detect_lost_workers() == []


def test_the_heartbeat_of_a_remote_worker_times_out_its_task(rsh, dask_client):
    key = rsh.push_tasks([{"x": 1}], timeouts=1)[0]
    [worker_id] = rsh.start_remote_workers(wl_hold, n_workers=1, executor=dask_client,
                                           heartbeat_period=0.5)
    wait_until(lambda: rsh.n_running_tasks == 1, 60, message="the task running")
    pid = int(rsh.worker_info["pid"][0])
    # no controller call: the heartbeat finds the timeout and kills the engine's process
    wait_until(lambda: rsh.is_failed_task(key), 30, message="the timeout")
    assert rsh.fetch_failed_tasks()["condition"][0] == {"message": "Task timed out after 1 s"}
    assert rsh.lost_worker_ids == [worker_id]
    wait_until(lambda: not _alive(pid), 30, message="the worker process killed")


def test_restart_remote_worker_after_the_engine_replaced_its_process(rsh, dask_client):
    [worker_id] = rsh.start_remote_workers(wl_pop_then_die, n_workers=1, executor=dask_client)
    rsh.push_tasks([{"x": 1}])
    wait_until(rsh.detect_lost_workers, 30, message="the worker found lost")
    old_pid = int(rsh.worker_info["pid"][0])
    dask_pids(dask_client)  # the nanny replaced the dead process
    rsh.push_tasks([{"x": 2}])
    assert rsh.restart_workers(worker_id) == [worker_id]
    assert rsh.running_worker_ids == [worker_id]
    # the restarted worker takes the queued task and dies again: a new pid, lost again
    wait_until(lambda: int(rsh.worker_info["pid"][0]) != old_pid, 60, message="re-registered")
    wait_until(rsh.detect_lost_workers, 30, message="the restarted worker found lost")
    assert rsh.n_failed_tasks == 2


def test_process_pool_executor(rsh):
    with ProcessPoolExecutor(max_workers=2) as pool:
        ids = rsh.start_remote_workers(wl_queue, n_workers=2, executor=pool)
        rsh.wait_for_workers(worker_ids=ids, timeout=60)
        assert rsh.worker_info["remote"].all()
        keys = rsh.push_tasks([{"x": i} for i in range(10)])
        rsh.wait_for_tasks(keys, timeout=60)
        assert rsh.n_finished_tasks == 10
        rsh.stop_workers(type="terminate")
        wait_until(lambda: rsh.n_terminated_workers == 2, 30, message="workers terminated")


def test_process_pool_worker_that_dies_is_lost(rsh):
    with ProcessPoolExecutor(max_workers=1) as pool:
        key = rsh.push_tasks([{"x": 1}])[0]
        [worker_id] = rsh.start_remote_workers(wl_pop_then_die, n_workers=1, executor=pool)
        assert wait_until(rsh.detect_lost_workers, 30, message="lost") == [worker_id]
        assert rsh.is_failed_task(key)


def test_plan_executor_is_the_default(rsh, dask_client):
    rush.rush_plan(config=rsh.config, executor=dask_client, worker_type="remote")
    try:
        ids = rsh.start_workers(wl_queue, n_workers=1)
        rsh.wait_for_workers(worker_ids=ids, timeout=60)
        rsh.stop_workers(type="terminate")
        wait_until(lambda: rsh.n_terminated_workers == 1, 30)
    finally:
        rush.remove_rush_plan()


def test_no_executor_is_a_clear_error_and_stores_nothing(rsh):
    if distributed.client._get_global_client() is not None:
        pytest.skip("a default Dask client exists in this process")
    with pytest.raises(RuntimeError, match="Dask client"):
        rsh.start_remote_workers(wl_queue, n_workers=1)
    with pytest.raises(TypeError, match="submit"):
        rsh.start_remote_workers(wl_queue, n_workers=1, executor=object())
    assert not rsh.connector.exists(rsh.keys.start_args)
    assert rsh.futures == {}


def test_more_workers_than_engine_slots_warns(rsh, caplog):
    with ProcessPoolExecutor(max_workers=1) as pool, caplog.at_level(logging.WARNING, "rush"):
        ids = rsh.start_remote_workers(wl_queue, n_workers=2, executor=pool)
        assert "slot" in caplog.text
        rsh.wait_for_workers(n=1, worker_ids=ids, timeout=60)
        rsh.stop_workers(type="terminate")
        wait_until(lambda: rsh.n_terminated_workers == 2, 60, message="both ran and terminated")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
