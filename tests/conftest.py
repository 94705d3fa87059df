"""Shared fixtures: one private redis-server per test session (never the shared one on
6379), a private ``RUSH_HOME`` per test (its local rush server is stopped afterwards), a
unique network per test, and a condition poller with a deadline."""

from __future__ import annotations

import logging
import threading
import os
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest

import rush
from rush import RedisServer
from rush.local_redis import LocalServer


@pytest.fixture(autouse=True)
def rush_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own ``RUSH_HOME`` (inherited by the processes it starts); a local
    rush server started there is stopped at the end, and none may be left running."""
    home = tmp_path / "home"  # short: the server's unix socket path is limited to 107 bytes
    monkeypatch.setenv("RUSH_HOME", str(home))
    yield home
    if home.exists():
        LocalServer(home).stop()
        left = local_servers(home)
        assert not left, f"redis-server {left} still runs in {home}"


def local_servers(home: Path) -> list[int]:
    """Pids of the live redis-server processes working in ``home`` (their cwd is its data dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            in_home = Path(os.readlink(entry / "cwd")).is_relative_to(home)
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile, or not ours to look at
        name, state = stat.split(" (", 1)[1].rsplit(") ", 1)
        if in_home and "redis" in name and state[0] != "Z":
            pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="session")
def redis_server():
    """A private redis-server on a free port, stopped after the session."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster():
    """A private 3-master Redis Cluster on free loopback ports, stopped after the session."""
    from cluster import LocalCluster  # tests/ is on sys.path (rootdir conftest)
    with LocalCluster() as cluster:
        yield cluster


@pytest.fixture
def cluster_config(redis_cluster, monkeypatch):
    """Config of the private cluster (``redis+cluster://``); env vars that could point
    elsewhere are removed."""
    for name in ("RUSH_REDIS_URL", "REDIS_URL", "RUSH_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return rush.RedisConfig(url=redis_cluster.url)


@pytest.fixture
def config(redis_server, monkeypatch):
    """Config of the private server; env vars that could point elsewhere are removed."""
    monkeypatch.delenv("RUSH_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("RUSH_SECRET", raising=False)
    return redis_server.config


@pytest.fixture
def network_id() -> str:
    """A network id no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def rsh(config, network_id):
    """A controller on a fresh network; its keys (and workers) are removed afterwards."""
    controller = rush.rsh(network_id, config=config)
    yield controller
    controller.reset()
    controller.close()


@pytest.fixture
def worker(config, network_id, rsh):
    """An in-process RushWorker on the test's network."""
    w = rush.RushWorker(network_id, config=config)
    yield w
    w.close()


@pytest.fixture
def make_worker(config, network_id, rsh):
    """Makes in-process RushWorkers on the test's network, each with its own connection."""
    made: list[rush.RushWorker] = []

    def make() -> rush.RushWorker:
        w = rush.RushWorker(network_id, config=config)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def rush_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "rush" and r.levelno == logging.WARNING]


def run_together(*targets) -> None:
    """Start the targets at the same moment in threads; re-raise their errors."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def run(target):
        try:
            barrier.wait(10)
            target()
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]


def wait_until(condition: Callable[[], object], timeout: float = 20.0, interval: float = 0.02,
               message: str = "condition") -> object:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)  # polling interval of the deadline-bounded wait
