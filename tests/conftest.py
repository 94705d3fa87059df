"""Shared fixtures: one private redis-server per test session (never the shared one on
6379), a unique network per test, and a condition poller with a deadline."""

from __future__ import annotations

import time
import uuid
from typing import Callable

import pytest

import rush
from rush import RedisServer


@pytest.fixture(scope="session")
def redis_server():
    """A private redis-server on a free port, stopped after the session."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def config(redis_server, monkeypatch):
    """Config of the private server; env vars that could point elsewhere are removed."""
    monkeypatch.delenv("RUSH_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
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
