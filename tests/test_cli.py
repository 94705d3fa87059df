"""The command line (``rush worker``, ``rush status``, ``--version``, clean errors and
pipes) and ``rush.start_worker`` in-process. ``rush top`` is in test_top.py."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import loops
import rush
from conftest import wait_until
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


def test_worker_without_start_arguments_exits_with_one_line(config, network_id):
    done = run_cli("worker", "--network-id", network_id, "--url", config.url)
    assert done.returncode != 0
    assert "no start arguments" in done.stderr and network_id in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    with rush.rsh(network_id, config=config) as controller:
        assert controller.n_workers == 0  # it never registered


@pytest.mark.parametrize("command", [["worker", "--network-id", "n1"], ["status"], ["top"],
                                     ["dashboard"]])
def test_a_bad_url_is_one_line(command):
    done = run_cli(*command, "--url", "http://example.org/")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "http" in done.stderr


def test_version():
    done = run_cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"rush {rush.__version__}"


def test_a_worker_whose_loop_crashes_prints_the_traceback(rsh, config):
    rsh.worker_script(worker_loop=loops.wl_raise_mid_task)
    done = run_cli("worker", "--network-id", rsh.network_id, RUSH_REDIS_URL=config.url)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "ZeroDivisionError" in done.stderr
    assert "wl_raise_mid_task" in done.stderr  # the loop's own frame
    assert list(rsh.worker_info["state"]) == ["lost"]


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
    assert empty.returncode == 0, empty.stderr  # a controller attached: the network exists
    assert "0 queued" in empty.stdout and "no workers registered" in empty.stdout

    rsh.push_tasks([{"x1": 1.0}, {"x1": 2.0}])
    rsh.push_finished_tasks([{"x1": 3.0}], [{"y": 1.0}])
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_sleep_until_terminated, n_workers=1)
    rsh.wait_for_workers(1, timeout=SLOW)

    done = run_cli("status", "--network-id", rsh.network_id, "--url", config.url)

    assert done.returncode == 0, done.stderr
    assert "2 queued" in done.stdout and "1 finished" in done.stdout
    assert "0 running" in done.stdout and "0 failed" in done.stdout
    assert "workers: 1 running" in done.stdout
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
    assert len(failed) == 1
    assert failed["condition"][0]["message"] == "ZeroDivisionError: division by zero"


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


def test_status_of_an_unknown_network_is_an_error(config, network_id):
    done = run_cli("status", "--network-id", network_id, "--url", config.url)
    assert done.returncode == 1
    assert f"no network {network_id!r}" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
    with rush.RedisServer() as server:  # asking does not create the network
        assert run_cli("status", "--network-id", network_id, "--url", server.config.url
                       ).returncode == 1
        assert "no networks" in run_cli("status", "--url", server.config.url).stdout


def test_status_lists_every_network_of_the_server(tmp_path):
    with rush.RedisServer() as server:
        assert "no networks" in run_cli("status", "--url", server.config.url).stdout
        busy = rush.rsh("busy-net", config=server.config)
        worker = rush.RushWorker("busy-net", config=server.config)
        busy.push_tasks([{"x": 1}, {"x": 2}])
        worker.push_running_tasks([{"x": 3}])
        quiet = rush.rsh("quiet-net", config=server.config)
        quiet.push_finished_tasks([{"x": 1}], [{"y": 1}])
        gone = rush.rsh("gone-net", config=server.config)
        gone.push_tasks([{"x": 1}])
        gone.reset()  # a reset network leaves the list

        done = run_cli("status", "--url", server.config.url)

        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].startswith("2 network(s) on redis://")
        header, rows = lines[1].split(), {line.split()[0]: line for line in lines[2:]}
        assert header[:2] == ["network_id", "workers"]
        assert set(rows) == {"busy-net", "quiet-net"}
        assert rows["busy-net"].split()[1:6] == ["1", "running", "2", "1", "0"]
        assert rows["quiet-net"].split()[1:5] == ["-", "0", "0", "1"]
        assert all(line.endswith("ago") for line in rows.values())
        worker.close()
        for controller in (busy, quiet, gone):
            controller.close()


def test_status_piped_into_a_reader_that_leaves_is_quiet(config, rsh):
    process = subprocess.Popen([sys.executable, "-m", "rush", "status", "--url", config.url],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, env=dict(os.environ))
    process.stdout.close()  # the reader is gone before rush writes a byte
    _, err = process.communicate(timeout=SLOW)
    assert err == b""
    assert process.returncode == 141  # like a process ended by SIGPIPE

    shell = subprocess.run(f"{shlex.quote(sys.executable)} -m rush status --url "
                           f"{shlex.quote(config.url)} | head -n 1", shell=True,
                           capture_output=True, text=True, timeout=SLOW)
    assert shell.stderr == "" and shell.stdout.startswith(tuple("0123456789"))
