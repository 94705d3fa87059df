"""rediss:// end to end: a controller and a local worker talk to Redis through TLS.

The redis-server here may be built without TLS, so the test puts a TLS-terminating proxy
(asyncio, in a thread) in front of the private server; the client side is the real one.
The certificate comes from a throwaway CA trusted through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading

import pytest

import rush
from conftest import wait_until
from remote_loops import wl_queue


def _make_certificates(folder) -> tuple[str, str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    ca_key, ca_crt = folder / "ca.key", folder / "ca.crt"
    key, csr, crt, ext = (folder / n for n in ("server.key", "server.csr", "server.crt", "ext.cnf"))
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt,
         "-days", "1", "-subj", "/CN=rush-test-ca"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
         "-out", crt, "-days", "1", "-extfile", ext],
    ):
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True,
                       timeout=30)
    return str(ca_crt), str(crt), str(key)


class TlsProxy:
    """Accepts TLS on a free loopback port and relays plain bytes to ``target_port``."""

    def __init__(self, cert: str, key: str, target_port: int) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._target_port = target_port
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the TLS proxy did not start")

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._relay, "127.0.0.1", 0, ssl=self._context))
        self.port = self._server.sockets[0].getsockname()[1]
        started.set()
        self._loop.run_forever()

    async def _relay(self, client_reader, client_writer) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1",
                                                                         self._target_port)

        async def pump(reader, writer) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pump(client_reader, upstream_writer),
                             pump(upstream_reader, client_writer))

    def close(self) -> None:
        async def shut() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def tls_config(redis_server, tmp_path, monkeypatch):
    ca, cert, key = _make_certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", ca)  # trusted by the controller and its workers
    proxy = TlsProxy(cert, key, redis_server.config.port)
    yield rush.RedisConfig(url=f"rediss://127.0.0.1:{proxy.port}/0")
    proxy.close()


def test_controller_and_workers_over_tls(tls_config, network_id):
    assert tls_config.ssl and tls_config.url.startswith("rediss://")
    controller = rush.rsh(network_id, config=tls_config)
    try:
        ids = controller.start_local_workers(wl_queue, n_workers=1)
        controller.wait_for_workers(worker_ids=ids, timeout=30)
        keys = controller.push_tasks([{"x": i} for i in range(5)])
        controller.wait_for_tasks(keys, timeout=30)
        assert sorted(controller.fetch_finished_tasks()["y"]) == [0, 2, 4, 6, 8]
        controller.stop_workers(type="terminate")
        wait_until(lambda: controller.n_terminated_workers == 1, 30, message="terminated")
    finally:
        controller.reset()
        controller.close()


def test_tls_with_an_untrusted_certificate_is_a_connection_error(redis_server, tmp_path,
                                                                 monkeypatch):
    _, cert, key = _make_certificates(tmp_path)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    proxy = TlsProxy(cert, key, redis_server.config.port)
    try:
        config = rush.RedisConfig(url=f"rediss://127.0.0.1:{proxy.port}/0")
        with pytest.raises(rush.RushConnectionError, match=f"127.0.0.1:{proxy.port}"):
            rush.rsh(config=config)
    finally:
        proxy.close()
