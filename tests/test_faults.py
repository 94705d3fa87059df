"""Faults of Redis and of processes leave a true state and a clear message: a stalled
server (calls resent after a socket timeout), a hung one (retry_seconds is a deadline),
a network whose data vanished, kills that must take down what a loop started, a reset in
a crowded Redis, values and calls too large, a full Redis, worker identity, a reset with
a closed Dask client, and a worker's old incarnation coming back.

Each test that stops, flushes or fills Redis does it to a server of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

import loops
import rush
from conftest import wait_until
from rush.errors import (RushConnectionError, RushError, RushNetworkLostError,
                         RushOutOfMemoryError, RushValueTooLargeError)
from worker_helpers import SLOW, children_of, pid_alive

TESTS = Path(__file__).resolve().parent
MIB = 1024 * 1024


@pytest.fixture
def server():
    """A redis-server of this test's own."""
    with rush.RedisServer() as s:
        yield s


@pytest.fixture
def own(server, network_id):
    """A controller on the test's own server."""
    controller = rush.rsh(network_id, config=server.config)
    yield controller
    try:
        controller.reset()
    finally:
        controller.close()


def stall(server: rush.RedisServer, seconds: float) -> None:
    """Redis stops answering for ``seconds`` (SIGSTOP), longer than a socket timeout."""
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)  # the outage itself
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def _placed_once(controller) -> dict[str, list[str]]:
    """Every task in exactly one state (and no key twice in the creation list)."""
    snapshot = controller.tasks_with_state()
    placed = [k for keys in snapshot.values() for k in keys]
    every = controller.tasks
    assert len(every) == len(set(every)), "a task was created twice"
    assert sorted(placed) == sorted(every), "a task is in no state, or in two"
    return snapshot


# -- 1. a call resent after a stall runs once --------------------------------------------


@pytest.mark.timeout(150)
def test_stalls_longer_than_the_socket_timeout_strand_no_queued_task(own, server):
    keys = own.push_tasks([{"x": i} for i in range(3000)])
    own.start_local_workers(loops.wl_queue, n_workers=2)
    own.wait_for_workers(2, timeout=SLOW)  # a first connection gives up after 5 s
    for done in (100, 1500):
        wait_until(lambda d=done: own.n_finished_tasks >= d, SLOW, message=f"{done} done")
        stall(server, 6.5)
    wait_until(lambda: own.n_finished_tasks == 3000, 60, message="every task finished")
    own.stop_workers("terminate")
    wait_until(lambda: own.n_running_workers == 0, SLOW, message="the workers to leave")
    snapshot = _placed_once(own)
    assert sorted(snapshot["finished"]) == sorted(keys)
    assert snapshot["running"] == snapshot["queued"] == snapshot["failed"] == []


@pytest.mark.timeout(150)
def test_stalls_longer_than_the_socket_timeout_strand_no_created_task(own, server):
    own.start_local_workers(loops.wl_count_up, n_workers=2, n=3000)
    own.wait_for_workers(2, timeout=SLOW)  # a first connection gives up after 5 s
    for done in (100, 1500):
        wait_until(lambda d=done: own.n_finished_tasks >= d, SLOW, message=f"{done} done")
        stall(server, 6.5)
    wait_until(lambda: own.n_terminated_workers == 2, 60, message="the loops to end")
    snapshot = _placed_once(own)
    assert snapshot["running"] == [] and snapshot["failed"] == []
    assert len(snapshot["finished"]) >= 3000


# -- 2. retry_seconds is a wall-clock deadline ---------------------------------------------


@pytest.mark.timeout(60)
def test_a_hung_redis_fails_the_call_within_retry_seconds(server, network_id):
    controller = rush.rsh(network_id, config=rush.RedisConfig(url=server.config.url,
                                                              retry_seconds=2))
    try:
        os.kill(server.process.pid, signal.SIGSTOP)
        began = time.monotonic()
        with pytest.raises(RushConnectionError, match=server.config.location):
            controller.n_tasks
        waited = time.monotonic() - began
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert waited < 2 + 5 + 3  # retry_seconds + one socket timeout, and some slack
    assert controller.n_tasks == 0  # and it carries on once Redis answers again
    controller.close()


# -- 3. a network whose data vanished is noticed ------------------------------------------


def _stopped_with(controller, worker_ids: list[str], log_dir: Path, text: str) -> None:
    wait_until(lambda: all(controller.processes[w].poll() is not None for w in worker_ids),
               SLOW, message="the workers to stop")
    for worker_id in worker_ids:
        assert controller.processes[worker_id].returncode != 0
        assert text in (log_dir / f"message_{worker_id}.log").read_text()


@pytest.mark.timeout(90)
def test_a_flushed_network_stops_its_workers_and_its_controller(own, server, tmp_path):
    worker_ids = own.start_local_workers(loops.wl_random_search_terminate, n_workers=2,
                                         message_log=str(tmp_path), pause=0.005)
    wait_until(lambda: own.n_finished_tasks >= 20, SLOW, message="some results")
    cached = len(own.fetch_finished_tasks())
    redis.Redis(**server.config.connection_kwargs()).flushall()
    _stopped_with(own, worker_ids, tmp_path, "is gone from Redis")
    with pytest.raises(RushNetworkLostError, match=f"{cached}") as lost:
        own.wait_for_tasks(own.tasks)
    assert len(lost.value.finished_tasks) >= cached  # the cache is still readable


@pytest.mark.timeout(90)
def test_a_redis_restarted_without_persistence_is_noticed(network_id, tmp_path):
    first = rush.RedisServer()
    port = first.port
    controller = rush.rsh(network_id, config=first.config)
    second = None
    try:
        worker_ids = controller.start_local_workers(
            loops.wl_random_search_terminate, n_workers=2, message_log=str(tmp_path),
            pause=0.005)
        wait_until(lambda: controller.n_finished_tasks >= 20, SLOW, message="some results")
        controller.fetch_finished_tasks()
        first.stop()
        second = rush.RedisServer(port=port)  # the same address, none of the data
        _stopped_with(controller, worker_ids, tmp_path, "is gone from Redis")
        with pytest.raises(RushNetworkLostError, match="restarted without persistence"):
            controller.fetch_finished_tasks()
        assert controller.connector.keys("*") == []  # no half network was made
    finally:
        controller.close()
        first.stop()
        if second is not None:
            second.stop()


# -- 4. a kill takes down what the loop started --------------------------------------------


def _child(pid_dir: Path, worker_id: str) -> int:
    path = pid_dir / worker_id
    wait_until(path.exists, SLOW, message="the loop to start its child")
    return int(path.read_text())


def test_stop_workers_kills_what_the_loop_started(rsh, tmp_path):
    worker_ids = rsh.start_local_workers(loops.wl_spawn_child, n_workers=1, pid_dir=str(tmp_path))
    child = _child(tmp_path, worker_ids[0])
    rsh.stop_workers("kill", worker_ids)
    wait_until(lambda: not pid_alive(child), SLOW, message="the loop's child to die")


def test_reset_kills_what_the_loops_started(rsh, tmp_path):
    worker_ids = rsh.start_local_workers(loops.wl_spawn_child, n_workers=2, pid_dir=str(tmp_path))
    children = [_child(tmp_path, w) for w in worker_ids]
    rsh.reset()
    wait_until(lambda: not any(pid_alive(c) for c in children), SLOW,
               message="the loops' children to die")


def test_a_kill_through_the_heartbeat_kills_what_the_loop_started(rsh, config, tmp_path):
    command = rsh.worker_script(loops.wl_spawn_child, heartbeat_period=0.5, pid_dir=str(tmp_path))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    shell = subprocess.Popen(command, shell=True, env=env, cwd=TESTS.parent,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: rsh.n_workers == 1, SLOW, message="the script worker")
        worker_id = rsh.worker_ids[0]
        child = _child(tmp_path, worker_id)
        rsh.stop_workers("kill", worker_id)
        wait_until(lambda: not pid_alive(child), SLOW, message="the loop's child to die")
        shell.wait(SLOW)
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()


CONTROLLER = textwrap.dedent("""
    import sys, time
    import loops, rush

    network_id, url, pid_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    controller = rush.rsh(network_id, config=rush.RedisConfig(url=url))
    ids = controller.start_local_workers(loops.wl_spawn_child, n_workers=1, pid_dir=pid_dir)
    controller.wait_for_workers(1, timeout=30)
    print(controller.processes[ids[0]].pid, flush=True)
    time.sleep(120)  # until the test kills this process
""")


def test_a_dead_controller_takes_down_what_its_workers_started(rsh, config, network_id,
                                                               tmp_path):
    script = tmp_path / "controller.py"
    script.write_text(CONTROLLER)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    controller = subprocess.Popen([sys.executable, str(script), network_id, config.url,
                                   str(pid_dir)], env=env, stdout=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL)
    worker = child = 0
    try:
        worker = int(controller.stdout.readline())
        child = _child(pid_dir, rsh.worker_ids[0])
        controller.send_signal(signal.SIGKILL)
        controller.wait(SLOW)
        wait_until(lambda: not pid_alive(worker) and not pid_alive(child), SLOW,
                   message="the worker and its child to die with the controller")
    finally:
        if controller.poll() is None:
            controller.kill()
        controller.wait()
        controller.stdout.close()
        for pid in (worker, child):
            if pid and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


# -- 5. reset in a crowded Redis -----------------------------------------------------------

POPULATE = """
for i = ARGV[1], ARGV[2] do
  redis.call("SET", "other:" .. i, "x")
end
return 1
"""


@pytest.mark.timeout(180)
def test_reset_never_blocks_a_crowded_redis_for_long(own, server):
    client = redis.Redis(**server.config.connection_kwargs())
    populate = client.register_script(POPULATE)
    others = 2_000_000
    for start in range(1, others + 1, 100_000):
        populate(args=[start, start + 99_999])
    for start in range(0, 100_000, 10_000):
        own.push_finished_tasks([{"x": i} for i in range(start, start + 10_000)], [{"y": 0}])
    own.write_hashes(xs=[{"x": -1}] * 1000)
    workers = [rush.RushWorker(own.network_id, config=server.config) for _ in range(20)]
    for w in workers:
        w.push_running_tasks([{"x": 0}])
        w.close()
    client.config_set("slowlog-log-slower-than", 100_000)  # microseconds: 100 ms
    client.slowlog_reset()

    own.reset()

    assert client.slowlog_get() == []  # no step of the reset blocked Redis for 100 ms
    assert client.keys("{" + own.network_id + "}*") == []
    assert client.dbsize() == others
    client.close()


# -- 6. too large --------------------------------------------------------------------------


@pytest.fixture
def small_values(config):
    rush.rush_plan(config=config, max_value_size=1)
    yield
    rush.remove_rush_plan()


def test_a_value_over_max_value_size_is_refused_before_it_is_sent(small_values, network_id):
    with rush.rsh(network_id) as controller:
        worker = rush.RushWorker(network_id)
        try:
            big = {"blob": b"0" * (2 * MIB)}
            with pytest.raises(RushValueTooLargeError, match=r"'xs' takes 2\.0 MiB") as e:
                controller.push_tasks([{"x": 1}, big])
            assert "large_objects_path" in str(e.value)
            assert controller.n_tasks == 0
            keys = worker.push_running_tasks([{"x": 1}])
            with pytest.raises(RushValueTooLargeError, match="'ys'"):
                worker.finish_tasks(keys, [big])
            assert controller.running_tasks == keys  # nothing was written
            with pytest.raises(RushValueTooLargeError):
                controller.write_hashes(keys, xs_extra=[big])
        finally:
            worker.close()
            controller.reset()


@pytest.mark.timeout(120)
def test_a_call_over_redis_argument_limit_goes_in_chunks(rsh):
    n = 400_000  # x 3 arguments each: over Redis's 1,048,576 per command
    keys = rsh.push_tasks([{"x": i} for i in range(n)])
    assert len(keys) == n and rsh.n_tasks == rsh.n_queued_tasks == n
    assert rsh.queued_tasks[:3] == keys[:3] and rsh.queued_tasks[-1] == keys[-1]


def test_a_full_redis_is_a_clear_error(own, server):
    client = redis.Redis(**server.config.connection_kwargs())
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used + 2 * MIB)
    client.config_set("maxmemory-policy", "noeviction")
    with pytest.raises(RushOutOfMemoryError, match="maxmemory") as e:
        for _ in range(100):
            own.push_tasks([{"x": b"0" * 10_000}] * 100)
    assert server.config.location in str(e.value)
    _placed_once(own)  # what was written before is whole
    client.config_set("maxmemory", 0)
    client.close()


# -- 8. identity -------------------------------------------------------------------------


def test_a_running_or_killed_worker_id_cannot_register_again(rsh, worker, config, network_id):
    with pytest.raises(RushError, match="already running"):
        rush.RushWorker(network_id, config=config, worker_id=worker.worker_id)
    rsh.stop_workers("kill", worker.worker_id)
    with pytest.raises(RushError, match="was killed"):
        rush.RushWorker(network_id, config=config, worker_id=worker.worker_id)
    assert rsh.worker_info["state"].tolist() == ["killed"]


# -- 9. reset whatever state the engine is in -----------------------------------------------


@pytest.mark.timeout(120)
def test_reset_after_the_dask_client_was_closed(rsh):
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        rsh.start_remote_workers(loops.wl_sleep_until_terminated, n_workers=1, executor=client)
        rsh.wait_for_workers(1, timeout=SLOW)
    finally:
        client.close()
        cluster.close()
    rsh.reset()
    assert rsh.connector.keys("{" + rsh.network_id + "}*") == []


# -- 10. a worker's old incarnation cannot hurt the new one -------------------------------


def _freeze(pid: int) -> list[int]:
    """SIGSTOP a worker and its heartbeat; returns their pids."""
    frozen = [pid, *children_of(pid)]
    for p in frozen:
        os.kill(p, signal.SIGSTOP)
    return frozen


def _resume(pids: list[int]) -> None:
    for p in pids:
        if pid_alive(p):
            os.kill(p, signal.SIGCONT)


@pytest.mark.parametrize("loop", [loops.wl_random_search_terminate, loops.wl_slow_exit_on_sigterm])
@pytest.mark.timeout(120)
def test_a_restarted_worker_is_never_hurt_by_its_old_incarnation(rsh, loop):
    worker_id, = rsh.start_local_workers(loop, n_workers=1, heartbeat_period=0.5, pause=0.01)
    rsh.wait_for_workers(1, timeout=SLOW)
    wait_until(lambda: children_of(rsh.processes[worker_id].pid), SLOW, message="a heartbeat")
    old = _freeze(rsh.processes[worker_id].pid)
    try:
        wait_until(lambda: rsh.detect_lost_workers() == [worker_id], SLOW,
                   message="the frozen worker to be found lost")
        rsh.restart_workers(worker_id)
    finally:
        _resume(old)
    done = rsh.n_finished_tasks
    wait_until(lambda: rsh.n_finished_tasks >= done + 30 and not rsh.detect_lost_workers(),
               SLOW, message="the new incarnation to work")
    for _ in range(10):  # sweeps while the old processes (if any survived) had their say
        assert rsh.detect_lost_workers() == []
        wait_until(lambda d=rsh.n_finished_tasks: rsh.n_finished_tasks > d, SLOW,
                   message="more results")
    assert rsh.worker_info["state"].tolist() == ["running"]
    rsh.stop_workers("terminate")
    wait_until(lambda: rsh.n_running_workers == 0, SLOW, message="the worker to leave")
    snapshot = _placed_once(rsh)
    assert snapshot["running"] == []  # nothing stranded by the old incarnation
    assert all(not pid_alive(p) for p in old)


@pytest.mark.timeout(150)
def test_an_old_remote_incarnation_resumed_ends_itself(rsh):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        worker_id, = rsh.start_remote_workers(loops.wl_random_search_terminate, n_workers=1,
                                              executor=client, heartbeat_period=0.5, pause=0.01)
        rsh.wait_for_workers(1, timeout=SLOW)
        pid = int(rsh.worker_info["pid"][0])
        wait_until(lambda: children_of(pid), SLOW, message="a heartbeat")
        old = _freeze(pid)
        try:
            wait_until(lambda: rsh.detect_lost_workers() == [worker_id], SLOW,
                       message="the frozen worker to be found lost")
            rsh.restart_workers(worker_id)
            wait_until(lambda: int(rsh.worker_info["pid"][0]) != pid, SLOW,
                       message="the new incarnation to register")
        finally:
            _resume(old)
        # the old loop's next write is refused: it ends, and so does its heartbeat (or
        # the heartbeat beats first, learns it is stale and ends the old loop's process);
        # the engine's process may stay, to run other tasks
        wait_until(lambda: not any(pid_alive(p) for p in old[1:]), SLOW,
                   message="the old incarnation to end itself")
        done = rsh.n_finished_tasks
        wait_until(lambda: rsh.n_finished_tasks >= done + 30, SLOW, message="new results")
        assert rsh.detect_lost_workers() == []
        assert rsh.worker_info["state"].tolist() == ["running"]
        rsh.stop_workers("kill")
    assert _placed_once(rsh)["running"] == []
