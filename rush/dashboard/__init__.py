"""The rush dashboard: a live web page of a network (the ``dashboard`` extra: starlette,
uvicorn and plotly).

``rush dashboard [--network-id X] [--host 127.0.0.1] [--port 8787]`` serves it until
Ctrl-C; ``rush.dashboard.start(...)`` serves it from a thread of this process (a
notebook). The page is bound to loopback unless told otherwise and needs a random token
in its URL. One thread per network reads it for every open page (``watch``), the app
(``app``) serves pages, JSON, server-sent events and the worker actions, ``tasks`` pages
through the tasks, ``page`` renders the HTML on the server.
"""

from __future__ import annotations

import importlib.util
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import RedisConfig
    from .server import DashboardServer

#: What the dashboard needs, beyond rush itself.
REQUIRED = ("starlette", "uvicorn", "plotly")


class DashboardMissing(ImportError):
    """A package of the ``dashboard`` extra is not installed."""


def require() -> None:
    """Raise a one-line instruction when a package of the extra is missing."""
    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        raise DashboardMissing(f"the rush dashboard needs {', '.join(missing)}: "
                               "pip install 'rush-redis[dashboard]'")


def start(config: "RedisConfig | None" = None, network_id: str | None = None,
          host: str = "127.0.0.1", port: int = 0, refresh_seconds: float | None = None
          ) -> "DashboardServer":
    """Serve the dashboard from a thread of this process (a notebook: open its ``url``);
    ``stop()`` ends it. ``port=0`` takes a free port; ``network_id`` is the network ``/``
    shows (default: the most recently active one)."""
    require()
    from .server import start as _start

    return _start(config, network_id, host, port, refresh_seconds)


def serve(config: "RedisConfig | None" = None, network_id: str | None = None,
          host: str = "127.0.0.1", port: int = 8787, out: "IO[str] | None" = None) -> None:
    """Serve the dashboard until Ctrl-C (``rush dashboard``), printing its URL once."""
    require()
    import sys

    from .server import serve as _serve

    _serve(config, network_id, host, port, out or sys.stdout)
