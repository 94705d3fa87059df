"""The command line (``rush worker``, ``rush status``) and ``rush.start_worker`` in-process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import loops
import rush
from conftest import wait_until
from rush.states import LOST_MESSAGE
from worker_helpers import SLOW, states

TESTS = Path(__file__).resolve().parent


def run_cli(*args: str, executable: list[str] | None = None, **env: str
            ) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent)]),
                    **env)
    full_env.pop("REDIS_URL", None)
    command = (executable or [sys.executable, "-m", "rush"]) + list(args)
    return subprocess.run(command, env=full_env, cwd=TESTS.parent, capture_output=True,
                          text=True, timeout=SLOW, stdin=subprocess.DEVNULL)


def test_worker_without_start_arguments_exits_with_a_clear_error(config, network_id):
    done = run_cli("worker", "--network-id", network_id, "--url", config.url)
    assert done.returncode != 0
    assert "RuntimeError" in done.stderr
    assert "no start arguments" in done.stderr and network_id in done.stderr
    with rush.rsh(network_id, config=config) as controller:
        assert controller.n_workers == 0  # it never registered


def test_worker_command_reads_the_url_from_the_environment(rsh, config):
    rsh.worker_script(worker_loop=loops.wl_random_search, n_evaluations=5)
    done = run_cli("worker", "--network-id", rsh.network_id, RUSH_REDIS_URL=config.url)
    assert done.returncode == 0, done.stderr
    assert rsh.n_finished_tasks >= 5
    assert list(rsh.worker_info["state"]) == ["terminated"]


@pytest.mark.skipif(shutil.which("rush") is None, reason="the rush console script is not installed")
def test_rush_console_script_runs_a_worker(rsh, config):
    rsh.worker_script(worker_loop=loops.wl_random_search, n_evaluations=3)
    done = run_cli("worker", "--network-id", rsh.network_id, "--url", config.url,
                   executable=[shutil.which("rush")])
    assert done.returncode == 0, done.stderr
    assert rsh.n_terminated_workers == 1


def test_status_prints_counts_and_the_worker_table(rsh, config):
    empty = run_cli("status", "--network-id", rsh.network_id, "--url", config.url)
    assert empty.returncode == 0, empty.stderr
    assert "0 queued" in empty.stdout and "no workers registered" in empty.stdout

    rsh.push_tasks([{"x1": 1.0}, {"x1": 2.0}])
    rsh.push_finished_tasks([{"x1": 3.0}], [{"y": 1.0}])
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_sleep_until_terminated, n_workers=1)
    rsh.wait_for_workers(1, timeout=SLOW)

    done = run_cli("status", "--network-id", rsh.network_id, "--url", config.url)

    assert done.returncode == 0, done.stderr
    assert "2 queued" in done.stdout and "1 finished" in done.stdout
    assert "0 running" in done.stdout and "0 failed" in done.stdout
    assert "running workers: 1" in done.stdout
    assert worker_ids[0] in done.stdout
    header = next(line for line in done.stdout.splitlines() if "worker_id" in line)
    assert header.split() == ["worker_id", "pid", "remote", "hostname", "heartbeat", "state"]


def test_start_worker_in_process(rsh, config):
    rsh.worker_script(worker_loop=loops.wl_random_search, n_evaluations=4)

    worker_id = rush.start_worker(rsh.network_id, config=config)

    assert states(rsh) == {worker_id: "terminated"}
    assert rsh.n_finished_tasks >= 4
    assert set(rsh.fetch_finished_tasks()["worker_id"]) == {worker_id}


def test_start_worker_in_process_whose_loop_raises_is_lost(rsh, config):
    rsh.worker_script(worker_loop=loops.wl_raise_mid_task)

    with pytest.raises(ZeroDivisionError):
        rush.start_worker(rsh.network_id, worker_id="crashing_worker_1", config=config)

    assert states(rsh) == {"crashing_worker_1": "lost"}
    failed = rsh.fetch_failed_tasks()
    assert len(failed) == 1 and failed["condition"][0]["message"].startswith(LOST_MESSAGE)


def test_start_worker_without_start_arguments(config, network_id):
    with pytest.raises(RuntimeError, match="no start arguments"):
        rush.start_worker(network_id, config=config)


def test_local_worker_whose_loop_raises_is_reported_lost(rsh):
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_raise_mid_task, n_workers=1)
    wait_until(lambda: rsh.processes[worker_ids[0]].poll() is not None, SLOW,
               message="the worker to exit")
    assert rsh.processes[worker_ids[0]].returncode != 0
    assert states(rsh) == {worker_ids[0]: "lost"}
    assert rsh.detect_lost_workers() == []  # already recorded by the worker itself
    assert rsh.n_failed_tasks == 1
