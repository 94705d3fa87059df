"""The local rush server: one persistent ``redis-server`` per user, under ``$RUSH_HOME``.

It is the zero-setup default of ``rsh()``, ``rush_plan()`` and the ``rush`` command: it
is started detached on first use, outlives the process that started it, and every
later rush process of the user reuses it, so results survive the script that made them.

The home directory (``$RUSH_HOME``, default the platform's per-user state directory,
e.g. ``~/.local/state/rush``) holds::

    password      generated once (mode 0600)
    secret        the network secret that signs every payload (mode 0600; generated once,
                  see ``rush.serialization``)
    redis.conf    the server's configuration, password included (mode 0600)
    redis.sock    the unix socket the server listens on (plus loopback TCP)
    redis.pid     the pid of the running server, written by redis-server
    server.host   the host it runs on (a home shared over NFS must not get a second server)
    redis.log     its log
    data/         its append-only file
    server.lock   held (flock) while the server is started or stopped

A password never goes on a command line: redis-server reads it from ``redis.conf``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import platformdirs
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .config import RedisConfig
from .connection import answers
from .server import find_redis_server, free_port

logger = logging.getLogger("rush")

#: Environment variable naming the directory of the local rush server.
HOME_ENV_VAR = "RUSH_HOME"
#: How long a start may take until the server answers (a large append-only file loads slowly).
START_SECONDS = 30.0
#: How long a stop waits for the server to exit before it is killed.
STOP_SECONDS = 10.0
#: Longest unix socket path the system accepts (bytes, without the final NUL).
MAX_SOCKET_PATH = 103 if sys.platform == "darwin" else 107
_POLL_SECONDS = 0.005

_announced: set[Path] = set()
_announce_lock = threading.Lock()
# Servers this process started. Kept so that the Popen objects are never collected while
# the server runs (that would warn) and so that one that exits is reaped, not a zombie.
_started: list[subprocess.Popen] = []


def rush_home() -> Path:
    """The directory of the local rush server: ``$RUSH_HOME`` or the per-user state dir."""
    configured = os.environ.get(HOME_ENV_VAR)
    home = configured if configured else platformdirs.user_state_dir("rush", appauthor=False)
    return Path(os.path.abspath(os.path.expanduser(home)))


@dataclass(frozen=True)
class ServerStatus:
    """What ``LocalServer.status()`` found (no secrets: safe to print)."""

    running: bool
    pid: int | None
    socket: Path
    port: int | None
    data_dir: Path

    def describe(self) -> str:
        """One line for people."""
        if not self.running:
            return f"the local rush server is not running (data in {self.data_dir})"
        tcp = f" and 127.0.0.1:{self.port}" if self.port else ""
        return (f"the local rush server is running (pid {self.pid}) at {self.socket}{tcp} "
                f"(data in {self.data_dir})")


class LocalServer:
    """The local rush server of one home directory (``rush_home()`` by default).

    ``start()`` returns its config, starting it unless it runs; ``stop()`` shuts it
    down with its data kept. Both are safe to call from several processes at once.
    """

    def __init__(self, home: str | os.PathLike | None = None) -> None:
        self.home = Path(os.path.abspath(home)) if home is not None else rush_home()
        self.socket = self.home / "redis.sock"
        self.data_dir = self.home / "data"
        self.password_file = self.home / "password"
        self.secret_file = self.home / "secret"
        self.conf_file = self.home / "redis.conf"
        self.pid_file = self.home / "redis.pid"
        self.log_file = self.home / "redis.log"
        self.lock_file = self.home / "server.lock"
        self.host_file = self.home / "server.host"

    def __repr__(self) -> str:
        return f"LocalServer(home={str(self.home)!r})"

    # -- configs -------------------------------------------------------------------

    def config(self) -> RedisConfig:
        """The config of the unix socket (with the password and the secret; the server may
        be down)."""
        password = self._read_password()
        return RedisConfig(unix_socket_path=str(self.socket), password=password,
                           secret=self._read_secret())

    def tcp_config(self) -> RedisConfig:
        """The config of the loopback TCP port, for workers that cannot use the socket.
        Raises ``RuntimeError`` when the server has never been started."""
        port = self._configured_port()
        if port is None:
            raise RuntimeError(f"the local rush server in {self.home} has never been started")
        return RedisConfig(host="127.0.0.1", port=port, password=self._read_password(),
                           secret=self._read_secret())

    # -- start, stop, status -------------------------------------------------------

    def start(self) -> RedisConfig:
        """Start the server unless it already answers; return its config."""
        config = self._answering_config()
        if config is not None:
            return config  # the common case: no lock, one PING
        _check_socket_path(self.socket)
        try:
            binary = find_redis_server()
        except FileNotFoundError as e:
            raise FileNotFoundError(f"cannot start the local rush server: {e}; or point rush "
                                    f"at a running Redis with RUSH_REDIS_URL") from None
        with self._locked():
            # another process may have started it while we waited for the lock
            if self._answering_config() is None:
                self._start_locked(binary)
        return self.config()

    def stop(self) -> int | None:
        """Shut the server down (its data stays); return its pid, or None if it was
        not running."""
        if not self.home.exists():
            return None  # never started: create nothing
        with self._locked():
            self._check_host()
            pid = self._running_pid()
            if pid is None:
                self._remove_stale_files()
                return None
            self._shutdown(pid)
            return pid

    def status(self) -> ServerStatus:
        """Whether the server runs, its pid, socket, TCP port and data directory."""
        running = self._answering_config() is not None
        return ServerStatus(running=running, pid=self._running_pid() if running else None,
                            socket=self.socket,
                            port=self._configured_port() if running else None,
                            data_dir=self.data_dir)

    # -- internals -----------------------------------------------------------------

    def _answering_config(self) -> RedisConfig | None:
        if not self.password_file.exists():
            return None  # never started
        config = self.config()
        return config if answers(config) else None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the home's flock: two processes starting the server at once must not
        start two servers (the second sees the first one's server once it has the lock)."""
        import fcntl  # POSIX only: importing rush elsewhere must still work

        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _start_locked(self, binary: str) -> None:
        self._check_host()
        pid = self._pid()
        if pid is not None and self._is_ours(pid):
            # alive but not answering: still loading its data, or the password file changed
            self._wait_until_ready(pid, lambda: self._is_ours(pid), started_here=False)
            return
        self._remove_stale_files()
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self._ensure_password()
        self._read_secret()  # made now, with the password
        self._write_conf(free_port())
        self.host_file.write_text(platform.node() + "\n")
        _reap_exited()
        with open(self.log_file, "ab") as log:
            # its own session: the server outlives this process, and a Ctrl-C in this
            # terminal does not reach it
            process = subprocess.Popen([binary, str(self.conf_file)], stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=log, close_fds=True,
                                       start_new_session=True)
        _started.append(process)
        self._wait_until_ready(process.pid, lambda: process.poll() is None, started_here=True)
        logger.debug("started the local rush server (pid %s) in %s", process.pid, self.home)

    def _wait_until_ready(self, pid: int, alive: Callable[[], bool], started_here: bool) -> None:
        deadline = time.monotonic() + START_SECONDS
        while self._answering_config() is None:
            exited = not alive()
            if exited or time.monotonic() > deadline:
                if started_here and not exited:
                    _signal(pid, signal.SIGKILL)
                raise RuntimeError(self._failure(pid, exited, started_here))
            time.sleep(_POLL_SECONDS)  # the server is starting: nothing to block on yet

    def _failure(self, pid: int, exited: bool, started_here: bool) -> str:
        if exited:
            what = "exited while starting"
        elif started_here:
            what = f"did not answer within {START_SECONDS:.0f} s and was killed"
        else:
            what = (f"(pid {pid}) does not answer with the password in {self.password_file}; "
                    f"stop it with `rush server stop`")
        return f"the local rush server in {self.home} {what}" + self._log_tail()

    def _check_host(self) -> None:
        """A home shared by several hosts (over NFS) holds the server of one of them: its
        pid and socket mean nothing here, and a second server would write the same data."""
        try:
            host = self.host_file.read_text().strip()
        except FileNotFoundError:
            return
        if host != platform.node() and self.pid_file.exists():
            raise RuntimeError(
                f"the local rush server in {self.home} belongs to host {host!r}, not to this "
                f"one ({platform.node()!r}): point RUSH_REDIS_URL at a Redis, or set "
                f"{HOME_ENV_VAR} to a directory of this host; if that server no longer runs, "
                f"delete {self.pid_file}")

    def _is_ours(self, pid: int) -> bool:
        """True when ``pid`` is the live server of this home. A pid file can outlive its
        server, and the pid be reused by another program, even another redis-server: ours
        works in our data directory (redis-server changes into it)."""
        if not _alive(pid):
            return False
        try:
            return Path(os.readlink(f"/proc/{pid}/cwd")) == Path(os.path.realpath(self.data_dir))
        except FileNotFoundError:
            return not sys.platform.startswith("linux")  # no /proc: trust the live pid
        except OSError:
            return False  # e.g. another user's process

    def _running_pid(self) -> int | None:
        """The pid of the running server: its pid file, else asked over the socket."""
        pid = self._pid()
        if pid is not None and self._is_ours(pid):
            return pid
        config = self._answering_config()
        if config is None:
            return None
        client = _client(config)
        try:
            return int(client.info("server")["process_id"])
        finally:
            client.close()

    def _shutdown(self, pid: int) -> None:
        """SHUTDOWN (the append-only file is synced first); SIGTERM if the server does
        not take the command (e.g. the password file was replaced); SIGKILL as a last resort."""
        if not self._send_shutdown():
            _signal(pid, signal.SIGTERM)
        if not _wait_for_exit(pid, STOP_SECONDS):
            _signal(pid, signal.SIGKILL)
            _wait_for_exit(pid, STOP_SECONDS)
        self._remove_stale_files()

    def _send_shutdown(self) -> bool:
        if not self.password_file.exists():
            return False
        client = _client(self.config())
        try:
            client.shutdown()
            return True
        except (redis.exceptions.RedisError, OSError):
            return False
        finally:
            client.close()

    def _pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _remove_stale_files(self) -> None:
        for path in (self.pid_file, self.socket):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _read_password(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError:
            raise RuntimeError(f"the local rush server in {self.home} has no password file "
                               f"yet: start it with rush.local_server() or `rush server start`"
                               ) from None

    def _read_secret(self) -> str:
        """The secret of this home, made on first use (a home made before rush signed
        payloads gets one too). Lock-free: of two processes making it at once, the first
        link wins and both read that one."""
        with contextlib.suppress(FileNotFoundError):
            secret = self.secret_file.read_text().strip()
            if secret:
                return secret
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.home / f"secret.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(tmp, self.secret_file)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return self.secret_file.read_text().strip()

    def _ensure_password(self) -> None:
        if self.password_file.exists():
            os.chmod(self.password_file, 0o600)
            return
        _write_private(self.password_file, secrets.token_urlsafe(32) + "\n")

    def _write_conf(self, port: int) -> None:
        settings = {
            "port": str(port), "bind": "127.0.0.1", "protected-mode": "yes",
            "unixsocket": _quote(self.socket), "unixsocketperm": "700",
            "requirepass": _quote(self._read_password()),
            "daemonize": "no", "pidfile": _quote(self.pid_file),
            "logfile": _quote(self.log_file), "dir": _quote(self.data_dir),
            "appendonly": "yes", "appendfsync": "everysec", "save": '""',
        }
        _write_private(self.conf_file, "".join(f"{k} {v}\n" for k, v in settings.items()))

    def _configured_port(self) -> int | None:
        try:
            lines = self.conf_file.read_text().splitlines()
        except FileNotFoundError:
            return None
        ports = [int(line.split()[1]) for line in lines if line.startswith("port ")]
        return ports[0] if ports else None

    def _log_tail(self, n: int = 5) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return ""
        return f"; its log {self.log_file} ends with:\n" + "\n".join(lines[-n:]) if lines else ""


def local_server() -> RedisConfig:
    """The config of the local rush server, started if it does not run (no probe of
    127.0.0.1:6379). Says once per process, at INFO, where it is and where its data lives."""
    server = LocalServer()
    config = server.start()
    with _announce_lock:
        if server.home not in _announced:
            _announced.add(server.home)
            logger.info("using the local rush server at %s (data in %s)", server.socket,
                        server.data_dir)
    return config


def _client(config: RedisConfig) -> redis.Redis:
    # no retries: SHUTDOWN closes the connection, which a retry would take for an outage
    return redis.Redis(**config.connection_kwargs(), socket_timeout=STOP_SECONDS,
                       retry=Retry(NoBackoff(), 0))


def _check_socket_path(socket: Path) -> None:
    if len(os.fsencode(socket)) > MAX_SOCKET_PATH:
        raise ValueError(f"the unix socket path {str(socket)!r} is longer than the "
                         f"{MAX_SOCKET_PATH} bytes the system allows: set {HOME_ENV_VAR} to a "
                         f"shorter directory")


def _quote(value: object) -> str:
    """A value for redis.conf: double-quoted, with backslashes and quotes escaped."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (never briefly wider)."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) does not."""
    _reap_exited()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return not sys.platform.startswith("linux")


def _wait_for_exit(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_SECONDS)  # not our child (detached): no wait() to block on
    return True


def _reap_exited() -> None:
    for process in list(_started):
        if process.poll() is not None:
            with contextlib.suppress(ValueError):  # another thread reaped it first
                _started.remove(process)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
