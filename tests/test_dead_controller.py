"""A dead controller leaves a true state: its supervised local workers end ``lost``, their
running tasks failed with "Controller of the worker exited", whichever way the
controller went (SIGKILL, SIGTERM, SIGINT, leaving ``with rsh(...)``, workers started
from a thread); and any controller's ``detect_lost_workers()`` finds workers of its host
whose process is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import loops
import rush
from conftest import wait_until
from rush._process import process_gone, process_start
from rush.states import CONTROLLER_EXITED_MESSAGE, LOST_MESSAGE
from worker_helpers import controller_process as helper_controller_process
from worker_helpers import SLOW, pid_alive, states

TESTS = Path(__file__).resolve().parent

CONTROLLER = textwrap.dedent("""
    import sys, threading, time
    import loops, rush

    network_id, url, release, how = sys.argv[1:5]
    with rush.rsh(network_id, config=rush.RedisConfig(url=url)) as controller:
        controller.push_tasks([{"x1": 1.0, "x2": 2.0}] * 3)

        def start():
            controller.start_local_workers(worker_loop=loops.wl_pop_and_block, n_workers=2,
                                           release=release)

        if how == "thread":
            thread = threading.Thread(target=start)
            thread.start()
            thread.join()
        else:
            start()
        controller.wait_for_workers(2, timeout=30)
        print(" ".join(str(p.pid) for p in controller.processes.values()), flush=True)
        if how == "with":
            sys.stdin.readline()  # the test says when to leave the with block
        else:
            time.sleep(120)  # until the test ends this process
    print("left", flush=True)
    time.sleep(120)
""")


def controller_process(tmp_path, network_id, config, how: str):
    """A controller in its own process whose 2 supervised workers each block in a popped
    task; yields the process and the worker pids; kills whatever is left afterwards."""
    script = tmp_path / "controller.py"
    script.write_text(CONTROLLER)
    return helper_controller_process(
        script, [network_id, config.url, str(tmp_path / "never"), how])


def end_controller(process: subprocess.Popen, how: str) -> None:
    if how == "with":
        process.stdin.write(b"\n")
        process.stdin.flush()
        assert process.stdout.readline() == b"left\n"
    else:
        process.send_signal({"sigint": signal.SIGINT, "sigterm": signal.SIGTERM}.get(
            how, signal.SIGKILL))
        process.wait(SLOW)


@pytest.mark.parametrize("how", ["sigkill", "sigterm", "sigint", "with", "thread"])
def test_workers_of_a_dead_controller_end_lost(rsh, config, network_id, tmp_path, how,
                                               record_property):
    with controller_process(tmp_path, network_id, config, how) as (controller, worker_pids):
        wait_until(lambda: rsh.n_running_tasks == 2, SLOW, message="both workers in a task")
        assert set(states(rsh).values()) == {"running"}

        started = time.monotonic()
        end_controller(controller, how)  # "thread": SIGKILL, workers without death signal
        wait_until(lambda: set(states(rsh).values()) == {"lost"}, SLOW,
                   message="the workers to be marked lost")
        record_property("controller_end_to_lost_s", round(time.monotonic() - started, 3))

        failed = rsh.fetch_failed_tasks()
        assert len(failed) == 2
        assert {c["message"] for c in failed["condition"]} == {CONTROLLER_EXITED_MESSAGE}
        assert rsh.n_queued_tasks == 1 and rsh.n_running_tasks == 0
        wait_until(lambda: not any(pid_alive(p) for p in worker_pids), SLOW,
                   message="the workers to exit")


def test_a_sigterm_to_a_worker_marks_it_lost(rsh, tmp_path):
    worker_id = rsh.start_local_workers(worker_loop=loops.wl_block_in_task, n_workers=1,
                                        release=str(tmp_path / "never"))[0]
    wait_until(lambda: rsh.n_running_tasks == 1, SLOW, message="the task to start")

    rsh.processes[worker_id].terminate()  # SIGTERM, the controller is alive

    wait_until(lambda: states(rsh) == {worker_id: "lost"}, SLOW, message="the worker lost")
    assert rsh.processes[worker_id].wait(SLOW) == 128 + signal.SIGTERM
    assert rsh.fetch_failed_tasks()["condition"].iloc[0] == {"message": LOST_MESSAGE}


ORPHAN = textwrap.dedent("""
    import os, sys
    import rush

    worker = rush.RushWorker(sys.argv[1], config=rush.RedisConfig(url=sys.argv[2]))
    worker.push_running_tasks([{"x1": 1.0}])
    print(worker.worker_id, flush=True)
    os._exit(0)  # no goodbye: the registration says running
""")


def test_detect_lost_workers_finds_workers_of_this_host_whose_process_is_gone(
        rsh, worker, config, network_id, tmp_path):
    script = tmp_path / "orphan.py"
    script.write_text(ORPHAN)
    done = subprocess.run([sys.executable, str(script), network_id, config.url],
                          capture_output=True, text=True, timeout=SLOW,
                          env=dict(os.environ, PYTHONPATH=str(TESTS.parent)))
    orphan = done.stdout.strip()
    assert states(rsh) == {worker.worker_id: "running", orphan: "running"}

    assert rsh.detect_lost_workers() == [orphan]  # no handle, no heartbeat: its pid is gone

    assert states(rsh) == {worker.worker_id: "running", orphan: "lost"}  # this one lives
    assert rsh.fetch_failed_tasks()["condition"].iloc[0] == {"message": LOST_MESSAGE}
    assert rsh.detect_lost_workers() == []


def test_a_pid_that_now_belongs_to_another_process_is_gone():
    me = os.getpid()
    started = process_start(me)
    assert started is not None
    assert not process_gone(me, started)
    assert process_gone(me, started + 1)  # same pid, another start: a reused pid
    zombie = subprocess.Popen(["true"])
    try:
        wait_until(lambda: _state(zombie.pid) == "Z", SLOW, message="a zombie")
        assert process_gone(zombie.pid, None)
    finally:
        zombie.wait()
    assert process_gone(zombie.pid, None)


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_another_controller_leaving_does_not_touch_the_workers(rsh, config, network_id):
    """A controller attaching to the same network and leaving supervises none of the
    workers of the first one: they go on."""
    worker_id = rsh.start_local_workers(worker_loop=loops.wl_sleep_until_terminated,
                                        n_workers=1)[0]
    rsh.wait_for_workers(1, timeout=SLOW)
    with rush.rsh(network_id, config=config) as other:
        assert other.n_workers == 1
    assert states(rsh) == {worker_id: "running"}
    assert rsh.processes[worker_id].poll() is None
