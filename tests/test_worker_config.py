"""Every kind of worker, and every heartbeat, connects with the whole config the
controller has: ``retry_seconds`` too (the URL alone cannot carry it)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import loops
import rush
from conftest import wait_until
from rush.config import config_environment, config_from_environment
from worker_helpers import SLOW, children_of

TESTS = Path(__file__).resolve().parent
RETRY = 120.0


@pytest.fixture
def patient(config, network_id):
    """A controller whose config rides out outages of up to 120 s."""
    controller = rush.rsh(network_id, config=rush.RedisConfig(url=config.url, retry_seconds=RETRY))
    yield controller
    controller.reset()
    controller.close()


def _reported(controller) -> list[float]:
    return controller.fetch_finished_tasks()["retry_seconds"].tolist()


def test_the_environment_carries_every_config_field(monkeypatch):
    config = rush.RedisConfig(url="redis://user:pw@example.org:6390/3", retry_seconds=7.5)
    env = config_environment(config)
    assert "pw" not in env["RUSH_RETRY_SECONDS"]
    for name in ("RUSH_REDIS_URL", "REDIS_URL", "RUSH_RETRY_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert config_from_environment() == config
    assert config_from_environment().retry_seconds == 7.5
    assert rush.redis_config() == config


def test_a_bad_retry_seconds_in_the_environment_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("RUSH_REDIS_URL", "redis://127.0.0.1:6390/0")
    monkeypatch.setenv("RUSH_RETRY_SECONDS", "soon")
    with pytest.raises(ValueError, match="RUSH_RETRY_SECONDS"):
        config_from_environment()


def test_local_workers_and_their_heartbeats_keep_retry_seconds(patient):
    worker_ids = patient.start_local_workers(loops.wl_report_config, n_workers=1)
    wait_until(lambda: patient.n_finished_tasks == 1, SLOW, message="the worker's report")
    assert _reported(patient) == [RETRY]

    patient.start_local_workers(loops.wl_sleep_until_terminated, n_workers=1, heartbeat_period=1)
    patient.wait_for_workers(2, timeout=SLOW)
    pid = int(patient.worker_info.set_index("worker_id").drop(worker_ids)["pid"].iloc[0])
    heartbeat = wait_until(lambda: _heartbeat_of(pid), SLOW, message="the heartbeat process")
    with open(f"/proc/{heartbeat}/environ", "rb") as f:
        environ = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
    assert float(environ[b"RUSH_RETRY_SECONDS"]) == RETRY


def _heartbeat_of(pid: int) -> int | None:
    """The heartbeat process of a worker, once it runs its own program (after exec)."""
    for child in children_of(pid):
        with open(f"/proc/{child}/cmdline", "rb") as f:
            if b"rush.heartbeat" in f.read():
                return child
    return None


def test_script_workers_keep_retry_seconds(patient, tmp_path):
    command = patient.worker_script(loops.wl_report_config)
    assert f"RUSH_RETRY_SECONDS={RETRY!r}" in shlex.split(command)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    env.pop("RUSH_RETRY_SECONDS", None)
    done = subprocess.run(command, shell=True, env=env, cwd=TESTS.parent, timeout=SLOW,
                          stdin=subprocess.DEVNULL, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    assert _reported(patient) == [RETRY]


def test_remote_workers_keep_retry_seconds(patient):
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1) as executor:
        patient.start_remote_workers(loops.wl_report_config, n_workers=1, executor=executor)
        wait_until(lambda: patient.n_finished_tasks == 1, SLOW, message="the worker's report")
    assert _reported(patient) == [RETRY]
    assert sys.modules["rush"] is rush
