"""Script Workers and Error Handling (article sections): ``worker_script()`` run in a
shell, the redacted log line, heartbeats, lost detection by an expired heartbeat and
the kill through the heartbeat process. The Redis here has a password."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
from pathlib import Path

import pytest
import redis

import loops
import rush
from conftest import wait_until
from rush.states import KILLED_MESSAGE
from worker_helpers import SLOW, children_of, pid_alive, pids, states

SECRET = "s3cret-script-pw"
TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def secured_config():
    """A throwaway Redis that requires a password."""
    with rush.RedisServer() as server:
        client = redis.Redis(**server.config.connection_kwargs())
        client.config_set("requirepass", SECRET)
        client.close()
        yield rush.RedisConfig(host=server.config.host, port=server.config.port, password=SECRET)


@pytest.fixture
def secured(secured_config, network_id):
    controller = rush.rsh(network_id, config=secured_config)
    yield controller
    controller.reset()
    controller.close()


@pytest.fixture
def shell(tmp_path):
    """Runs a worker command the way a user would (``sh -c``); reaps it afterwards."""
    started: list[subprocess.Popen] = []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent)]))

    def run(command: str) -> subprocess.Popen:
        with open(tmp_path / f"shell-{len(started)}.err", "wb") as err:
            process = subprocess.Popen(command, shell=True, env=env, cwd=TESTS.parent,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=err, start_new_session=True)
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the shell and the worker it started
        process.wait(SLOW)


def _one_worker(controller) -> tuple[str, int]:
    wait_until(lambda: controller.n_workers == 1, SLOW, message="the script worker to register")
    (worker_id, pid), = pids(controller).items()
    return worker_id, int(pid)


# -- Script Workers -----------------------------------------------------------------------

def test_script_worker_runs_the_random_search(secured, shell, caplog):
    caplog.set_level(logging.INFO, logger="rush")

    command = secured.worker_script(worker_loop=loops.wl_random_search)

    assert isinstance(command, str)
    words = shlex.split(command)
    assert words[words.index("-m") + 1:words.index("-m") + 3] == ["rush", "worker"]
    assert words[words.index("--network-id") + 1] == secured.network_id
    assert SECRET in command
    logged = [r.getMessage() for r in caplog.records if r.name == "rush"
              and "python" in r.getMessage() and secured.network_id in r.getMessage()]
    assert logged, "the command is logged"
    assert all(SECRET not in m for m in logged)
    assert all(SECRET not in r.getMessage() for r in caplog.records)

    process = shell(command)
    _one_worker(secured)

    row = secured.worker_info.iloc[0]
    assert row["remote"] and not row["heartbeat"]  # a script worker may run anywhere
    wait_until(lambda: secured.n_terminated_workers == 1, SLOW, message="the worker to terminate")
    assert secured.n_finished_tasks >= 100
    assert process.wait(SLOW) == 0


def test_the_same_script_starts_as_many_workers_as_it_is_run(secured, shell):
    command = secured.worker_script(worker_loop=loops.wl_sleep_until_terminated)
    shell(command)
    shell(command)
    wait_until(lambda: secured.n_running_workers == 2, SLOW, message="2 script workers")
    secured.stop_workers(type="terminate")
    wait_until(lambda: secured.n_terminated_workers == 2, SLOW, message="2 terminated workers")


def test_script_workers_cannot_be_restarted(secured, shell):
    shell(secured.worker_script(worker_loop=loops.wl_sleep_until_terminated))
    worker_id, pid = _one_worker(secured)
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert SECRET.encode() not in f.read()  # the URL travels in the environment
    with pytest.raises(ValueError, match="script"):
        secured.restart_workers(worker_id)
    assert states(secured) == {worker_id: "running"} and pid_alive(pid)


def test_kill_without_heartbeat_stops_the_worker_at_its_next_step(secured, shell):
    process = shell(secured.worker_script(worker_loop=loops.wl_sleep_until_terminated))
    worker_id, pid = _one_worker(secured)

    secured.stop_workers(type="kill")

    assert states(secured) == {worker_id: "killed"}
    process.wait(SLOW)  # the loop reads its state and leaves
    wait_until(lambda: not pid_alive(pid), SLOW, message="the worker process to end")
    assert states(secured) == {worker_id: "killed"}


# -- Error Handling: heartbeats -------------------------------------------------------------

def test_heartbeat_worker_is_found_lost_after_sigkill(secured, shell):
    shell(secured.worker_script(worker_loop=loops.wl_sleep_until_terminated,
                                heartbeat_period=0.5))
    worker_id, pid = _one_worker(secured)
    assert bool(secured.worker_info.iloc[0]["heartbeat"])
    beats = wait_until(lambda: children_of(pid), SLOW, message="the heartbeat process")
    assert secured.detect_lost_workers() == []

    os.kill(pid, signal.SIGKILL)

    wait_until(lambda: not any(pid_alive(b) for b in beats), SLOW,
               message="the heartbeat process to exit")
    assert wait_until(lambda: secured.detect_lost_workers(), 10,
                      message="the worker to be found lost") == [worker_id]
    assert states(secured) == {worker_id: "lost"}
    assert secured.detect_lost_workers() == []


def test_kill_goes_through_the_heartbeat_process(secured, shell, tmp_path):
    release = tmp_path / "never"  # the loop blocks in its task and never looks at its state
    shell(secured.worker_script(worker_loop=loops.wl_block_in_task, release=str(release),
                                heartbeat_period=0.5, heartbeat_expire=5))
    worker_id, pid = _one_worker(secured)
    task = wait_until(lambda: secured.running_tasks, SLOW, message="a running task")

    secured.stop_workers(type="kill", worker_ids=worker_id)

    assert states(secured) == {worker_id: "killed"}
    wait_until(lambda: not pid_alive(pid), 10, message="the heartbeat to kill the worker")
    failed = secured.fetch_failed_tasks()
    assert list(failed["keys"]) == task
    assert failed["condition"][0]["message"] == KILLED_MESSAGE


def test_heartbeat_options_reach_the_worker(secured, shell):
    command = secured.worker_script(worker_loop=loops.wl_sleep_until_terminated,
                                    heartbeat_period=0.25, heartbeat_expire=2.5)
    words = shlex.split(command)
    assert words[words.index("--heartbeat-period") + 1] == "0.25"
    assert words[words.index("--heartbeat-expire") + 1] == "2.5"
    shell(command)
    worker_id, _ = _one_worker(secured)
    ttl = secured.connector.pttl(secured.keys.heartbeat(worker_id))
    assert 0 < ttl <= 2500


def test_script_worker_writes_its_message_and_output_logs(secured, shell, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    shell(secured.worker_script(worker_loop=loops.wl_print_both, message_log=str(logs),
                                output_log=str(logs)))
    worker_id, _ = _one_worker(secured)
    wait_until(lambda: secured.n_terminated_workers == 1, SLOW, message="the worker to terminate")
    assert f"stdout of {worker_id}" in (logs / f"output_{worker_id}.log").read_text()
    assert f"stderr of {worker_id}" in (logs / f"message_{worker_id}.log").read_text()


def test_every_value_of_the_command_is_shell_quoted(secured_config, shell, tmp_path):
    odd = tmp_path / "logs with 'quotes' and spaces"
    odd.mkdir()
    with rush.rsh("odd-net.work_1", config=secured_config) as controller:
        try:
            command = controller.worker_script(worker_loop=loops.wl_log_message,
                                               lgr_thresholds={"rush": "info"},
                                               message_log=str(odd))
            process = shell(command)
            assert process.wait(SLOW) == 0
            worker_id, _ = _one_worker(controller)
            assert states(controller) == {worker_id: "terminated"}
            assert f"This is an info message from worker {worker_id}" in \
                list(controller.read_log()["msg"])
            assert (odd / f"message_{worker_id}.log").exists()
        finally:
            controller.reset()
