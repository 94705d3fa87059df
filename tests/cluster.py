"""A private 3-master Redis Cluster on loopback ports, for tests (``LocalCluster``).

Three ``redis-server --cluster-enabled yes`` children in a temporary directory, joined by
``redis-cli --cluster create``; ready once every node reports ``cluster_state:ok``.
Stopped (and reaped) by ``stop()``, at interpreter exit, and by Linux if this process dies.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rush._process import die_with_parent, reap
from rush.config import RedisConfig
from rush.connection import answers
from rush.server import find_redis_server

_START_SECONDS = 60.0
#: Redis Cluster talks between nodes on the port + 10000 (the cluster bus).
_BUS_OFFSET = 10000


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_ports(n: int) -> list[int]:
    """``n`` ports whose cluster-bus ports (+10000) are free as well."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + _BUS_OFFSET < 65536 and port not in ports and _port_is_free(port + _BUS_OFFSET):
            ports.append(port)
    return ports


def _probe(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2,
                       socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))


class LocalCluster:
    """Three masters (no replicas) on 127.0.0.1; ``url`` is a ``redis+cluster://`` URL of
    the first node, ``ports`` the nodes' ports."""

    def __init__(self, masters: int = 3, appendonly: bool = False) -> None:
        self.appendonly = appendonly
        self.binary = find_redis_server()
        cli = shutil.which("redis-cli", path=str(Path(self.binary).parent)) or shutil.which("redis-cli")
        if cli is None:
            raise FileNotFoundError("redis-cli is needed to create a Redis Cluster")
        self._tmpdir = tempfile.TemporaryDirectory(prefix="rush-cluster-")
        self.dir = Path(self._tmpdir.name)
        self.ports = cluster_ports(masters)
        self.processes: list[subprocess.Popen] = []
        atexit.register(self.stop)
        try:
            for port in self.ports:
                self.processes.append(self._start_node(port))
            self._wait(lambda: all(answers(RedisConfig(host="127.0.0.1", port=p))
                                   for p in self.ports), "the nodes to answer")
            subprocess.run([cli, "--cluster", "create",
                            *[f"127.0.0.1:{p}" for p in self.ports],
                            "--cluster-replicas", "0", "--cluster-yes"],
                           check=True, capture_output=True, timeout=_START_SECONDS,
                           stdin=subprocess.DEVNULL)
            self._wait(self._state_ok, "cluster_state:ok on every node")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def _start_node(self, port: int) -> subprocess.Popen:
        node_dir = self.dir / str(port)
        node_dir.mkdir(exist_ok=True)
        log = open(node_dir / "redis-server.log", "ab")
        try:
            return subprocess.Popen(
                [self.binary, "--port", str(port), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-config-file", str(node_dir / "nodes.conf"),
                 "--cluster-node-timeout", "5000", "--save", "",
                 "--appendonly", "yes" if self.appendonly else "no",
                 "--dir", str(node_dir), "--daemonize", "no"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                # the parent-death signal follows the forking *thread*: main thread only
                preexec_fn=die_with_parent if threading.current_thread() is
                threading.main_thread() else None, close_fds=True)
        finally:
            log.close()

    def stop_node(self, port: int) -> None:
        """Stop one node (SIGTERM: with ``appendonly`` its data is on disk)."""
        reap(self.processes[self.ports.index(port)])

    def start_node(self, port: int) -> None:
        """Start a stopped node again (it rejoins with its ``nodes.conf``)."""
        self.processes[self.ports.index(port)] = self._start_node(port)

    def _wait(self, condition, what: str) -> None:
        deadline = time.monotonic() + _START_SECONDS
        while not condition():
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"a cluster node exited while waiting for {what}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.05)  # polling the nodes with a deadline

    def _state_ok(self) -> bool:
        for port in self.ports:
            probe = _probe(port)
            try:
                if probe.cluster("info").get("cluster_state") != "ok":
                    return False
            except (redis.exceptions.RedisError, OSError):
                return False
            finally:
                probe.close()
        return True

    def node_of(self, key: str) -> int:
        """Port of the master that serves ``key``'s slot."""
        probe = _probe(self.ports[0])
        try:
            slot = probe.cluster("keyslot", key)
            for start, end, master, *_ in probe.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        finally:
            probe.close()
        raise LookupError(f"no master serves the slot of {key!r}")

    def keys_on(self, port: int, pattern: str = "*") -> list[str]:
        """The keys stored on one node (tests only: rush never scans)."""
        probe = _probe(port)
        try:
            return [k.decode() for k in probe.keys(pattern)]
        finally:
            probe.close()

    def stop(self) -> None:
        """Stop every node and reap it (idempotent)."""
        for process in self.processes:
            reap(process)
        self.processes = []
        self._tmpdir.cleanup()
        atexit.unregister(self.stop)

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
