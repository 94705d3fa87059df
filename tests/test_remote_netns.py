"""A worker on a second "host": its own network namespace, reaching Redis over a veth
pair with a password. Needs root and `ip netns`; skipped cleanly otherwise."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys

import pytest

import rush
from conftest import wait_until
from remote_loops import wl_queue
from rush.server import find_redis_server, free_port


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def namespace():
    """A network namespace joined to this host by a veth pair: (name, host ip, ns ip)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    tag = secrets.token_hex(3)
    name, host_if, ns_if = f"rush-{tag}", f"vrh{tag}", f"vrn{tag}"
    subnet = f"10.213.{secrets.randbelow(250) + 1}"
    try:
        _ip("netns", "add", name)
    except (subprocess.CalledProcessError, OSError) as e:
        pytest.skip(f"cannot create a network namespace here: {e}")
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", name)
        _ip("addr", "add", f"{subnet}.1/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("netns", "exec", name, "ip", "addr", "add", f"{subnet}.2/30", "dev", ns_if)
        _ip("netns", "exec", name, "ip", "link", "set", ns_if, "up")
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name, f"{subnet}.1", f"{subnet}.2"
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


@pytest.fixture
def veth_redis(namespace, tmp_path):
    """A password-protected redis-server listening on the host side of the veth pair."""
    _, host_ip, _ = namespace
    password = secrets.token_hex(8)
    port = free_port()
    server = subprocess.Popen(
        [find_redis_server(), "--port", str(port), "--bind", host_ip, "--requirepass", password,
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    config = rush.RedisConfig(host=host_ip, port=port, password=password)
    try:
        wait_until(lambda: rush.connection.answers(config), 10, message="redis-server up")
        yield config
    finally:
        server.terminate()
        server.wait(10)


def test_script_worker_in_another_network_namespace(namespace, veth_redis, tmp_path):
    ns, _, _ = namespace
    controller = rush.rsh("netns-" + secrets.token_hex(4), config=veth_redis)
    command = controller.worker_script(wl_queue, heartbeat_period=0.5)
    tests_dir = os.path.dirname(__file__)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([tests_dir, *sys.path[1:]]))
    stderr = open(tmp_path / "worker.err", "wb")
    worker = subprocess.Popen(["ip", "netns", "exec", ns, "sh", "-c",
                               command.replace("python ", f"{sys.executable} ", 1)],
                              env=env, cwd=tests_dir, stderr=stderr)
    try:
        controller.wait_for_workers(1, timeout=30)
        keys = controller.push_tasks([{"x": i} for i in range(10)])
        controller.wait_for_tasks(keys, timeout=30)
        assert sorted(controller.fetch_finished_tasks()["y"]) == [2 * i for i in range(10)]
        assert controller.worker_info["heartbeat"].all()
        controller.stop_workers(type="terminate")
        assert worker.wait(30) == 0
        assert controller.terminated_worker_ids == controller.worker_ids
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(10)
        stderr.close()
        controller.reset()
        controller.close()
