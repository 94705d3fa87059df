"""Workers under stress: killed mid-task (no task lost), the heartbeat process dying with
its worker, megabytes on stderr, and a dead controller leaving no orphan workers."""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from pathlib import Path


import loops
from conftest import wait_until
from rush.states import LOST_MESSAGE
from worker_helpers import controller_process as helper_controller_process
from worker_helpers import SLOW, children_of, pid_alive, pids, states

TESTS = Path(__file__).resolve().parent


def test_worker_killed_mid_task_loses_no_task(rsh, tmp_path):
    release = tmp_path / "release"
    keys = rsh.push_tasks([{"x1": float(i), "x2": 1.0} for i in range(10)])
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_pop_and_block, n_workers=2,
                                         release=str(release))
    wait_until(lambda: rsh.n_running_tasks == 2, SLOW, message="both workers inside a task")
    running = rsh.fetch_running_tasks()
    in_flight = dict(zip(running["worker_id"], running["keys"]))
    victim = worker_ids[0]

    os.kill(rsh.processes[victim].pid, signal.SIGKILL)
    wait_until(lambda: rsh.processes[victim].poll() is not None, SLOW, message="the kill")

    assert rsh.detect_lost_workers() == [victim]
    snapshot = rsh.tasks_with_state()
    placed = [k for ks in snapshot.values() for k in ks]
    assert sorted(placed) == sorted(keys)  # every key in exactly one state
    assert snapshot["failed"] == [in_flight[victim]]
    assert snapshot["running"] == [in_flight[worker_ids[1]]]
    failed = rsh.fetch_failed_tasks()
    assert failed["condition"][0]["message"] == LOST_MESSAGE
    assert failed["worker_id"][0] == victim

    release.touch()  # the survivor works through the rest of the queue
    wait_until(lambda: rsh.n_finished_tasks == 9, SLOW, message="9 finished tasks")
    snapshot = rsh.tasks_with_state()
    assert len(snapshot["finished"]) == 9 and snapshot["failed"] == [in_flight[victim]]
    assert snapshot["queued"] == [] and snapshot["running"] == []
    assert sorted(snapshot["finished"] + snapshot["failed"]) == sorted(keys)


def test_heartbeat_process_dies_with_its_worker(rsh):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_sleep_until_terminated,
                                         n_workers=1, heartbeat_period=0.5)
    rsh.wait_for_workers(1, timeout=SLOW)
    pid = rsh.processes[worker_ids[0]].pid
    beats = wait_until(lambda: children_of(pid), SLOW, message="the heartbeat process")
    assert bool(rsh.worker_info["heartbeat"][0])
    with open(f"/proc/{beats[0]}/cmdline", "rb") as f:
        assert b"rush.heartbeat" in f.read()

    os.kill(pid, signal.SIGKILL)

    wait_until(lambda: not any(pid_alive(b) for b in beats), SLOW,
               message="the heartbeat process to exit")
    # deleted by the heartbeat process on its way out, or expired if it died starting up
    wait_until(lambda: not rsh.connector.exists(rsh.keys.heartbeat(worker_ids[0])), 10,
               message="the heartbeat key to go")
    assert rsh.detect_lost_workers() == worker_ids


def test_heartbeat_process_ends_with_a_normal_worker_end(rsh):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_sleep_until_terminated,
                                         n_workers=1, heartbeat_period=0.5)
    rsh.wait_for_workers(1, timeout=SLOW)
    pid = rsh.processes[worker_ids[0]].pid
    beats = wait_until(lambda: children_of(pid), SLOW, message="the heartbeat process")

    rsh.stop_workers(type="terminate")

    wait_until(lambda: rsh.processes[worker_ids[0]].poll() is not None, SLOW,
               message="the worker to exit")
    assert rsh.processes[worker_ids[0]].returncode == 0
    assert not any(pid_alive(b) for b in beats)
    assert states(rsh) == {worker_ids[0]: "terminated"}
    assert rsh.detect_lost_workers() == []


def test_megabytes_on_stderr_do_not_block_the_worker(rsh, tmp_path):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_stderr_flood, n_workers=1,
                                         megabytes=8, message_log=str(tmp_path))
    wait_until(lambda: rsh.n_terminated_workers == 1, SLOW, message="the worker to terminate")
    assert rsh.n_finished_tasks == 1
    assert (tmp_path / f"message_{worker_ids[0]}.log").stat().st_size >= 8 * 1024 * 1024


def test_megabytes_on_stderr_without_a_log_dir(rsh):
    rsh.start_local_workers(worker_loop=loops.wl_stderr_flood, n_workers=2, megabytes=4)
    wait_until(lambda: rsh.n_terminated_workers == 2, SLOW, message="2 terminated workers")
    assert rsh.n_finished_tasks == 2


CONTROLLER = textwrap.dedent("""
    import sys, time
    import loops, rush

    network_id, url, supervise = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    controller = rush.rsh(network_id, config=rush.RedisConfig(url=url))
    ids = controller.start_local_workers(worker_loop=loops.wl_random_search_terminate,
                                         n_workers=2, supervise=supervise, pause=0.02)
    controller.wait_for_workers(2, timeout=30)
    print(" ".join(str(controller.processes[w].pid) for w in ids), flush=True)
    time.sleep(120)  # until the test kills this process
""")


def controller_process(tmp_path, network_id, config, supervise: bool):
    """A controller in its own process that started 2 local workers: yields the process and
    the worker pids; kills whatever is left of them afterwards, even when the test fails."""
    script = tmp_path / "controller.py"
    script.write_text(CONTROLLER)
    return helper_controller_process(script, [network_id, config.url, "1" if supervise else "0"])


def test_supervised_workers_die_with_a_sigkilled_controller(rsh, config, network_id, tmp_path):
    with controller_process(tmp_path, network_id, config, supervise=True) as (controller,
                                                                              worker_pids):
        assert sorted(pids(rsh).values()) == sorted(worker_pids)
        assert all(pid_alive(p) for p in worker_pids)

        controller.send_signal(signal.SIGKILL)
        controller.wait(SLOW)

        wait_until(lambda: not any(pid_alive(p) for p in worker_pids), SLOW,
                   message="the supervised workers to die")


def test_unsupervised_workers_outlive_the_controller_and_can_still_be_killed(
        rsh, config, network_id, tmp_path):
    with controller_process(tmp_path, network_id, config, supervise=False) as (controller,
                                                                               worker_pids):
        controller.send_signal(signal.SIGKILL)
        controller.wait(SLOW)
        done = rsh.n_finished_tasks
        wait_until(lambda: rsh.n_finished_tasks >= done + 10, SLOW,
                   message="the orphaned workers to keep working")
        assert all(pid_alive(p) for p in worker_pids)

        # no process handle, no heartbeat: marked killed, their next step ends them
        rsh.stop_workers(type="kill")

        assert set(states(rsh).values()) == {"killed"}
        wait_until(lambda: not any(pid_alive(p) for p in worker_pids), SLOW,
                   message="the killed workers to leave")


def test_workers_started_from_a_thread_outlive_the_thread(rsh):
    started: list[list[str]] = []
    thread = threading.Thread(target=lambda: started.append(
        rsh.start_local_workers(worker_loop=loops.wl_random_search_terminate, n_workers=2,
                                pause=0.01)))
    thread.start()
    thread.join()
    worker_ids = started[0]
    rsh.wait_for_workers(2, timeout=SLOW)
    done = rsh.n_finished_tasks
    wait_until(lambda: rsh.n_finished_tasks >= done + 20, SLOW,
               message="the workers to keep working after their thread ended")
    assert all(rsh.processes[w].poll() is None for w in worker_ids)
    assert rsh.detect_lost_workers() == []


def test_reset_kills_every_worker_and_removes_every_key(rsh):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_sleep_until_terminated,
                                         n_workers=2, heartbeat_period=0.5,
                                         lgr_thresholds={"rush": "info"})
    rsh.wait_for_workers(2, timeout=SLOW)
    processes = dict(rsh.processes)
    beats = [b for w in worker_ids
             for b in wait_until(lambda w=w: children_of(processes[w].pid), SLOW,
                                 message="the heartbeat processes")]

    rsh.reset()

    assert rsh.processes == {}
    assert all(p.returncode is not None for p in processes.values())
    wait_until(lambda: not any(pid_alive(b) for b in beats), SLOW,
               message="the heartbeat processes to exit")
    wait_until(lambda: not list(rsh.connector.scan_iter(match=rsh.keys.pattern())), SLOW,
               message="no key of the network left")
    assert rsh.n_workers == 0 and rsh.worker_info.empty


def test_heartbeat_period_longer_than_the_socket_timeout_keeps_beating(rsh):
    # redis-py >= 6 gives every client a 5 s socket timeout: one BLPOP blocking for the
    # whole period would time out, be retried, and never refresh the key
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_sleep_until_terminated,
                                         n_workers=1, heartbeat_period=5.5, heartbeat_expire=7)
    rsh.wait_for_workers(1, timeout=SLOW)
    beat = rsh.keys.heartbeat(worker_ids[0])
    lowest = [rsh.connector.pttl(beat)]

    def refreshed() -> bool:
        ttl = rsh.connector.pttl(beat)
        lowest[0] = min(lowest[0], ttl)
        return ttl > lowest[0] + 1000

    wait_until(refreshed, 12, interval=0.1, message="the heartbeat to refresh its key")
    assert rsh.detect_lost_workers() == []
    rsh.stop_workers(worker_ids=worker_ids)  # the kill channel still answers at once
    assert states(rsh) == {worker_ids[0]: "killed"}


def test_pop_task_blocking_longer_than_the_socket_timeout_returns(worker):
    began = time.monotonic()
    assert worker.pop_task(timeout=5.5) is None
    assert 5.4 < time.monotonic() - began < 9
    key = worker.push_tasks([{"x1": 1.0}])[0]
    assert worker.pop_task(timeout=5.5)["key"] == key
    began = time.monotonic()
    assert worker.pop_task(timeout=0.0004) is None  # 0 ms would mean "forever" to Redis
    assert time.monotonic() - began < 5
