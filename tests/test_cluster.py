"""rush on a real Redis Cluster (three masters, ``tests/cluster.py``): networks on
different masters, local workers with the queue and the decentralized loops, fetches,
the dashboard's reads, ``rush status``, signed mode, ``reset()``; and what Cluster
enforces (every script and transaction within one slot)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import uuid

import pytest
import redis

import loops
import rush
from conftest import wait_until
from rush.config import config_environment, config_from_environment
from rush.errors import RushConnectionError, RushError
from rush.keys import NETWORKS, NetworkKeys
from rush.network_index import NetworkIndex
from rush.status import status_text

pytestmark = pytest.mark.timeout(300)


def ids_on_masters(cluster, n: int = 3) -> list[str]:
    """``n`` fresh network ids whose keys live on ``n`` different masters."""
    by_node: dict[int, str] = {}
    while len(by_node) < n:
        candidate = f"cl-{uuid.uuid4().hex[:10]}"
        by_node.setdefault(cluster.node_of(NetworkKeys(candidate).epoch), candidate)
    return list(by_node.values())[:n]


@pytest.fixture
def networks(redis_cluster, cluster_config):
    """Three controllers, each of a network on another master; reset afterwards."""
    made = [rush.rsh(nid, config=cluster_config) for nid in ids_on_masters(redis_cluster)]
    yield made
    for controller in made:
        controller.reset()
        controller.close()


def nodes_holding(cluster, network_id: str) -> set[int]:
    return {port for port in cluster.ports
            if cluster.keys_on(port, NetworkKeys(network_id).pattern())}


# -- the config -------------------------------------------------------------------------

def test_cluster_urls_select_the_cluster_client_and_travel_to_workers(monkeypatch):
    config = rush.RedisConfig(url="redis+cluster://:s3cret@10.0.0.5:7000", secret="k")
    assert config.cluster and not config.ssl and (config.host, config.port) == ("10.0.0.5", 7000)
    assert config.url == "redis+cluster://:s3cret@10.0.0.5:7000"
    assert "s3cret" not in repr(config) and "s3cret" not in config.redacted_url
    assert "redis+cluster://" in repr(config)
    assert pickle.loads(pickle.dumps(config)) == config
    assert rush.RedisConfig(url=config.url, secret="k") == config
    for name, value in config_environment(config).items():
        monkeypatch.setenv(name, value)
    assert config_from_environment() == config
    tls = rush.RedisConfig(url="rediss+cluster://node-1:7001")
    assert tls.cluster and tls.ssl and tls.url == "rediss+cluster://node-1:7001"
    assert rush.RedisConfig(host="h", port=7000, cluster=True).url == "redis+cluster://h:7000"
    assert not rush.RedisConfig(url="redis://h:7000/0").cluster


@pytest.mark.parametrize("kw, error, words", [
    (dict(url="redis+cluster://h:7000/2"), ValueError, "database 0 only"),
    (dict(cluster=True, db=1), ValueError, "database 0 only"),
    (dict(cluster=True, unix_socket_path="/tmp/r.sock"), ValueError, "unix socket"),
    (dict(cluster="yes"), TypeError, "cluster must be bool"),
    (dict(url="redis+clustr://h:7000"), ValueError, "redis+cluster://"),
])
def test_bad_cluster_configs_are_refused(kw, error, words):
    with pytest.raises(error, match=words.replace("+", r"\+")):
        rush.RedisConfig(**kw)


def test_a_cluster_url_at_a_single_server_is_a_clear_error(config, network_id):
    single = rush.RedisConfig(host=config.host, port=config.port, cluster=True)
    with pytest.raises(RushError, match="not a Redis Cluster node") as caught:
        rush.rsh(network_id, config=single)
    assert f"redis://{config.location}" in str(caught.value)
    assert not redis.Redis(**config.connection_kwargs()).exists(NetworkKeys(network_id).epoch)


def test_a_cluster_url_where_nothing_listens_is_a_connection_error(network_id):
    from rush.server import free_port
    nowhere = rush.RedisConfig(host="127.0.0.1", port=free_port(), cluster=True)
    with pytest.raises(RushConnectionError, match="cannot reach"):
        rush.rsh(network_id, config=nowhere)


# -- networks on several masters ---------------------------------------------------------

def test_networks_live_on_one_master_each_and_run_local_workers(redis_cluster, networks):
    queue, decentral, third = networks
    queue.push_tasks([{"x": i} for i in range(30)])
    queue.start_local_workers(worker_loop=loops.wl_queue, n_workers=2)
    decentral.start_local_workers(worker_loop=loops.wl_count_up, n_workers=2, n=40)
    third.push_tasks([{"x": 3}])
    third.start_local_workers(worker_loop=loops.wl_queue, n_workers=1)
    holders = [nodes_holding(redis_cluster, c.network_id) for c in networks]
    assert all(len(h) == 1 for h in holders), holders  # one network, one shard
    assert len(set().union(*holders)) == 3  # three networks, three masters

    wait_until(lambda: queue.n_finished_tasks == 30, timeout=120, message="30 queued tasks")
    wait_until(lambda: decentral.n_finished_tasks >= 40, timeout=120, message="40 created tasks")
    wait_until(lambda: third.n_finished_tasks == 1, timeout=120, message="the third network")

    finished = queue.fetch_finished_tasks()
    assert sorted(finished["y"]) == [i * i for i in range(30)]
    assert (decentral.fetch_finished_tasks()["y"] >= 0).all()
    assert third.fetch_tasks()["y"].tolist() == [9]
    assert queue.fetch_queued_tasks().empty and queue.fetch_failed_tasks().empty
    assert queue.fetch_tasks_with_state()["state"].eq("finished").all()
    new = queue.fetch_new_tasks(timeout=1)
    assert len(new) == 30
    for controller in networks:
        controller.stop_workers(type="terminate")
    for controller in networks:
        wait_until(lambda c=controller: c.n_running_workers == 0, timeout=60,
                   message="the workers to terminate")
        assert set(controller.worker_states["state"]) == {"terminated"}
    # still one master per network: no write wandered elsewhere
    assert [nodes_holding(redis_cluster, c.network_id) for c in networks] == holders


def test_signed_networks_run_on_a_cluster(redis_cluster, cluster_config):
    signed = rush.RedisConfig(url=cluster_config.url, secret="cluster-secret")
    nid = ids_on_masters(redis_cluster, 1)[0]
    controller = rush.rsh(nid, config=signed)
    try:
        controller.push_tasks([{"x": i} for i in range(5)])
        controller.start_local_workers(worker_loop=loops.wl_queue, n_workers=1)
        wait_until(lambda: controller.n_finished_tasks == 5, timeout=120, message="5 tasks")
        assert sorted(controller.fetch_finished_tasks()["y"]) == [0, 1, 4, 9, 16]
        unsigned = rush.rsh(nid, config=cluster_config)
        try:
            with pytest.raises(rush.RushSecurityError):
                unsigned.fetch_finished_tasks()
        finally:
            unsigned.close()
        controller.stop_workers(type="terminate")
    finally:
        controller.reset()
        controller.close()


def test_reset_frees_every_key_and_the_index_entry(redis_cluster, networks):
    target, *others = networks
    target.push_tasks([{"x": i} for i in range(200)])
    target.start_local_workers(worker_loop=loops.wl_queue, n_workers=1)
    wait_until(lambda: target.n_finished_tasks > 0, timeout=120, message="a finished task")
    for other in others:
        other.push_tasks([{"x": 1}])
    index = NetworkIndex(target.connector)
    assert target.network_id in index.network_ids()

    target.reset()
    assert nodes_holding(redis_cluster, target.network_id) == set()
    assert target.network_id not in index.network_ids()
    assert all(o.n_queued_tasks == 1 for o in others)
    # the network can be used again after its reset
    target.push_tasks([{"x": 2}])
    assert target.n_queued_tasks == 1


def test_scripts_are_loaded_again_on_a_node_that_forgot_them(redis_cluster, networks):
    controller = networks[0]
    controller.push_tasks([{"x": 1}])
    port = redis_cluster.node_of(controller.keys.epoch)
    node = redis.Redis(host="127.0.0.1", port=port)
    node.script_flush()
    node.close()
    controller.push_tasks([{"x": 2}])  # NOSCRIPT on that node: loaded again, then called
    assert controller.n_queued_tasks == 2


# -- what shows the networks -------------------------------------------------------------

def test_status_lists_the_networks_of_every_master(networks, cluster_config):
    for i, controller in enumerate(networks):
        controller.push_tasks([{"x": 0}] * (i + 1))
    text = status_text(networks[0].connector, cluster_config, None)
    for controller in networks:
        assert controller.network_id in text
    one = status_text(networks[0].connector, cluster_config, networks[2].network_id)
    assert "3 queued" in one, one
    env = {k: v for k, v in os.environ.items() if k not in ("RUSH_REDIS_URL", "REDIS_URL")}
    done = subprocess.run([sys.executable, "-m", "rush", "status", "--url", cluster_config.url],
                          env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert all(c.network_id in done.stdout for c in networks)


def test_the_dashboard_reads_networks_on_a_cluster(networks, cluster_config):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from rush.dashboard.app import Dashboard, create_app

    target = networks[1]
    worker = rush.RushWorker(target.network_id, config=cluster_config)
    try:
        keys = worker.push_running_tasks([{"x": i} for i in range(4)])
        worker.finish_tasks(keys, [{"y": i} for i in range(4)])
    finally:
        worker.close()
    d = Dashboard(cluster_config, target.network_id, refresh_seconds=0.05)
    with TestClient(create_app(d)) as client:
        def state():
            response = client.get(f"/api/networks/{target.network_id}",
                                  params={"token": d.token})
            assert response.status_code == 200, response.text
            return response.json()

        got = wait_until(lambda: (s := state())["summary"]["tasks"]["finished"] == 4 and s,
                         message="the dashboard to read 4 finished tasks")
        assert len(got["trace"]["values"]) == 4
        listed = client.get("/api/networks", params={"token": d.token})
        assert listed.status_code == 200, listed.text
        assert {c.network_id for c in networks} <= {n["network_id"] for n in listed.json()["networks"]}


def test_the_index_of_networks_is_on_its_own_slot(redis_cluster, networks):
    """rush:networks is written by separate commands: its slot differs from the networks'."""
    index_node = redis_cluster.node_of(NETWORKS)
    assert any(redis_cluster.node_of(c.keys.epoch) != index_node for c in networks)
    assert set(NetworkIndex(networks[0].connector).network_ids()) >= {c.network_id for c in networks}


def test_a_least_privilege_user_runs_its_network_on_a_cluster(redis_cluster, network_id,
                                                               monkeypatch):
    from rush.acl import acl_setuser

    for name in ("RUSH_REDIS_URL", "REDIS_URL", "RUSH_SECRET"):
        monkeypatch.delenv(name, raising=False)
    user = f"u-{network_id}"
    for port in redis_cluster.ports:  # ACL users are per node
        admin = redis.Redis(host="127.0.0.1", port=port)
        admin.execute_command(*acl_setuser(network_id, user, "pw-1").split())
        admin.close()
    config = rush.RedisConfig(url=f"redis+cluster://{user}:pw-1@127.0.0.1:{redis_cluster.ports[1]}")
    controller = rush.rsh(network_id, config=config)
    try:
        controller.push_tasks([{"x": 4}])
        worker = rush.RushWorker(network_id, config=config)
        task = worker.pop_task(timeout=5)
        worker.finish_tasks(task["key"], [{"y": 16}])
        worker.close()
        assert controller.fetch_finished_tasks()["y"].tolist() == [16]
        controller.reset()
        assert nodes_holding(redis_cluster, network_id) == set()
    finally:
        controller.close()
        for port in redis_cluster.ports:
            admin = redis.Redis(host="127.0.0.1", port=port)
            admin.acl_deluser(user)
            admin.close()


def test_heartbeats_kills_and_timeouts_work_on_a_cluster(redis_cluster, networks):
    """The heartbeat process reads the deadlines with the clock of the network's master."""
    controller = networks[2]
    controller.push_tasks([{"x": 1, "hang": True}, {"x": 2}], timeouts=1.0)
    worker_id = controller.start_local_workers(loops.wl_task_queue, n_workers=1,
                                               heartbeat_period=0.3)[0]
    wait_until(lambda: controller.n_failed_tasks == 1, 120, message="the heartbeat's timeout")
    failed = controller.fetch_failed_tasks()
    assert failed["condition"].tolist() == [{"message": "Task timed out after 1 s"}]
    assert dict(controller.worker_states.values) == {worker_id: "lost"}
    assert controller.detect_lost_workers(restart_local_workers=True) == []
    wait_until(lambda: controller.n_finished_tasks == 1, 120, message="the restarted worker")
    controller.stop_workers(type="kill")
    assert dict(controller.worker_states.values) == {worker_id: "killed"}


def test_server_reads_go_to_the_networks_master(redis_cluster, networks):
    controller = networks[0]
    controller.push_tasks([{"x": 1}])
    assert controller.redis_info()["tcp_port"] == redis_cluster.node_of(controller.keys.epoch)
    assert controller.snapshot_schedule == ""
    controller.snapshot_schedule = "900 1"
    try:
        assert controller.snapshot_schedule == "900 1"
        for port in redis_cluster.ports:  # every master snapshots
            node = redis.Redis(host="127.0.0.1", port=port)
            assert node.config_get("save")["save"] == "900 1"
            node.close()
    finally:
        controller.snapshot_schedule = ""


def test_a_network_rides_out_a_restart_of_its_master(network_id, monkeypatch):
    """Commands sent while the network's master is down are sent again until it is back
    (within ``retry_seconds``); a master that stays down is a clear connection error."""
    import threading
    import time

    from cluster import LocalCluster

    for name in ("RUSH_REDIS_URL", "REDIS_URL", "RUSH_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with LocalCluster(appendonly=True) as own:
        controller = rush.rsh(network_id, config=rush.RedisConfig(url=own.url, retry_seconds=30))
        try:
            controller.push_tasks([{"x": 1}])
            port = own.node_of(controller.keys.epoch)
            own.stop_node(port)
            restart = threading.Timer(1.0, own.start_node, args=(port,))
            restart.start()
            try:
                started = time.monotonic()
                controller.push_tasks([{"x": 2}])  # waits for the master to come back
                assert time.monotonic() - started >= 0.9
            finally:
                restart.join()
            assert controller.n_queued_tasks == 2

            own.stop_node(port)
            other = next(p for p in own.ports if p != port)  # the URL names a live node
            short = rush.RedisConfig(url=f"redis+cluster://127.0.0.1:{other}", retry_seconds=1)
            with pytest.raises(RushConnectionError, match="cannot reach the Redis Cluster") as e:
                rush.rsh(network_id, config=short)
            assert f"127.0.0.1:{port}" in str(e.value)  # the master that is down
        finally:
            controller.close()


def test_a_password_cluster_reaches_script_and_local_workers_without_leaking(network_id,
                                                                            monkeypatch,
                                                                            tmp_path):
    """The URL (password included) travels in the environment: never in an argv, a repr or
    a log line; a script worker run in a shell and local workers both get there."""
    from cluster import LocalCluster

    password = "cl-pw-7d1e"
    for name in ("RUSH_REDIS_URL", "REDIS_URL", "RUSH_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with LocalCluster() as own:
        for port in own.ports:
            node = redis.Redis(host="127.0.0.1", port=port)
            node.config_set("requirepass", password)
            node.close()
        config = rush.RedisConfig(url=f"redis+cluster://:{password}@127.0.0.1:{own.ports[2]}")
        controller = rush.rsh(network_id, config=config)
        shell = None
        try:
            assert password not in repr(controller) and password not in str(config)
            controller.push_tasks([{"x": i} for i in range(10)])
            controller.start_local_workers(worker_loop=loops.wl_queue, n_workers=1)
            command = controller.worker_script(worker_loop=loops.wl_queue)
            tests = os.path.dirname(os.path.abspath(__file__))
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([tests, os.path.dirname(tests)]))
            with open(tmp_path / "script.err", "wb") as err:
                shell = subprocess.Popen(command, shell=True, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err,
                                         start_new_session=True)
            wait_until(lambda: controller.n_running_workers == 2, 120, message="2 workers")
            wait_until(lambda: controller.n_finished_tasks == 10, 120, message="10 tasks")
            for pid in controller.worker_info["pid"]:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    assert password.encode() not in f.read()
            assert set(controller.worker_info["remote"]) == {True, False}
            controller.stop_workers(type="terminate")
            wait_until(lambda: controller.n_running_workers == 0, 120, message="the ends")
            assert shell.wait(60) == 0
        finally:
            if shell is not None and shell.poll() is None:
                os.killpg(shell.pid, 9)
                shell.wait()
            controller.reset()
            controller.close()
