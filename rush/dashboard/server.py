"""Serving the dashboard with uvicorn: in the foreground (``rush dashboard``), or in a
thread of the current process (``start``: a notebook, the tests, the benchmarks)."""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import time
from typing import IO, Any
from urllib.parse import quote, urlencode

import uvicorn

from ..config import RedisConfig
from ..errors import RushError
from ..plan import resolve_config
from .app import Dashboard, create_app

#: Seconds uvicorn waits for open event streams when it stops, before it cancels them.
GRACEFUL_SECONDS = 1


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (``port=0``: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as e:
        raise RushError(f"cannot listen on {host}:{port}: {e.strerror or e} "
                        "(--port chooses another port)") from None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def page_url(host: str, port: int, token: str, network_id: str | None = None) -> str:
    """The URL of the dashboard's page (with its token)."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    path = "/" if network_id is None else f"/networks/{quote(network_id, safe='')}"
    return f"http://{shown}:{port}{path}?{urlencode({'token': token})}"


class _Server(uvicorn.Server):
    """uvicorn's server, which ends the dashboard's event streams when it is told to stop
    (else it would wait for them, then cancel them with an error)."""

    def __init__(self, dashboard: Dashboard) -> None:
        # no access log: every URL holds the token
        super().__init__(uvicorn.Config(create_app(dashboard), log_level="warning",
                                        access_log=False, lifespan="on",
                                        timeout_graceful_shutdown=GRACEFUL_SECONDS))
        self.dashboard = dashboard

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.dashboard.end_streams()
        super().handle_exit(sig, frame)

    def stop(self) -> None:
        self.dashboard.end_streams()
        self.should_exit = True


class DashboardServer:
    """A dashboard served in a thread of this process; ``stop()`` (or the end of a
    ``with`` block) ends it."""

    def __init__(self, dashboard: Dashboard, host: str, port: int) -> None:
        sock = _listen(host, port)
        self.host = host
        self.port = sock.getsockname()[1]
        self.token = dashboard.token
        self.url = page_url(host, self.port, self.token, dashboard.default_network)
        self._server = _Server(dashboard)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="rush-dashboard", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RushError("the dashboard did not start (see the log above)")
            time.sleep(0.01)  # uvicorn offers no event to wait on

    def stop(self) -> None:
        """Close the event streams and the connections, and end the thread."""
        self._server.stop()
        self._thread.join(timeout=30)

    def __enter__(self) -> "DashboardServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<DashboardServer {self.url.split('?')[0]}>"


def start(config: RedisConfig | None = None, network_id: str | None = None,
          host: str = "127.0.0.1", port: int = 0, refresh_seconds: float | None = None
          ) -> DashboardServer:
    """Serve the dashboard in a thread of this process (e.g. from a notebook); its
    ``url`` (with the token) opens it. ``port=0`` takes a free port."""
    dashboard = Dashboard(resolve_config(config), network_id, refresh_seconds=refresh_seconds)
    try:
        return DashboardServer(dashboard, host, port)
    except BaseException:
        dashboard.close()
        raise


def serve(config: RedisConfig | None = None, network_id: str | None = None,
          host: str = "127.0.0.1", port: int = 8787, out: IO[str] = sys.stdout) -> None:
    """Serve the dashboard until Ctrl-C (``rush dashboard``); its URL, with the token, is
    printed once to ``out``."""
    config = resolve_config(config)
    dashboard = Dashboard(config, network_id)
    try:
        sock = _listen(host, port)
    except BaseException:
        dashboard.close()
        raise
    url = page_url(host, sock.getsockname()[1], dashboard.token, network_id)
    what = f"network {network_id!r}" if network_id else "the networks"
    print(f"rush dashboard of {what} on {config.redacted_url}\n  {url}\nCtrl-C stops it.",
          file=out, flush=True)
    if not _is_loopback(host):
        print(f"warning: the dashboard listens on {host}, not only on this machine: anyone "
              "who has its URL can see the network and kill its workers", file=sys.stderr)
    _Server(dashboard).run(sockets=[sock])
