"""Where Redis is: the ``RedisConfig`` value, ``redis_config()`` and URL parsing."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

#: Environment variables read by ``redis_config()`` without arguments, in order.
URL_ENV_VARS = ("RUSH_REDIS_URL", "REDIS_URL")
#: Environment variable carrying ``retry_seconds`` (the URL cannot hold it).
RETRY_ENV_VAR = "RUSH_RETRY_SECONDS"
#: Environment variable carrying the network secret that signs payloads (see
#: ``serialization``); read wherever rush makes a config itself.
SECRET_ENV_VAR = "RUSH_SECRET"
DEFAULT_RETRY_SECONDS = 30.0
#: The URL that means the local rush server (``RUSH_REDIS_URL=local``, ``--url local``),
#: understood where the config is resolved (``rsh()``, ``rush_plan()``, the command line).
LOCAL_URL = "local"

#: URL scheme -> (TLS, Redis Cluster)
_SCHEMES = {"redis": (False, False), "rediss": (True, False), "unix": (False, False),
            "redis+cluster": (False, True), "rediss+cluster": (True, True)}


@dataclass(frozen=True, init=False, repr=False)
class RedisConfig:
    """How to reach Redis: a small immutable value.

    ``RedisConfig(url="redis://:pw@host:6379/0")`` parses the URL into the fields, so
    two configs are equal when their fields are. ``repr()`` redacts the password and the
    secret. ``retry_seconds`` bounds how long a running network rides out an outage.
    ``secret``: with it, every payload rush stores is signed (HMAC-SHA256) and checked
    before it is unpickled (see ``rush.serialization``); it never goes to Redis.
    ``cluster``: ``host:port`` is a node of a Redis Cluster (URL schemes
    ``redis+cluster://`` and ``rediss+cluster://``), reached with redis-py's cluster
    client; each network lives in one slot of it (its keys share the hash tag).
    """

    host: str
    port: int
    db: int
    password: str | None
    username: str | None
    ssl: bool
    unix_socket_path: str | None
    retry_seconds: float
    secret: str | None
    cluster: bool

    def __init__(
        self,
        url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        username: str | None = None,
        ssl: bool = False,
        unix_socket_path: str | None = None,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        secret: str | None = None,
        cluster: bool = False,
    ) -> None:
        values = dict(host=host, port=port, db=db, password=password, username=username,
                      ssl=ssl, unix_socket_path=unix_socket_path, cluster=cluster)
        if url is not None:
            values.update(_parse_url(url))
        values["retry_seconds"] = retry_seconds
        values["secret"] = secret
        _validate(values)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> "RedisConfig":
        """Parse ``redis://``, ``rediss://`` (TLS), ``unix://``, ``redis+cluster://`` or
        ``rediss+cluster://`` (a node of a Redis Cluster) URLs."""
        return cls(url=url, **kw)

    @property
    def url(self) -> str:
        """The URL of this config, password included."""
        return self._url(self.password)

    @property
    def redacted_url(self) -> str:
        """The URL with the password replaced by ``***``: safe to log."""
        return self._url(None if self.password is None else "***")

    def redacted(self) -> "RedisConfig":
        """A copy with the password and the secret replaced by ``***``: safe to log."""
        if self.password is None and self.secret is None:
            return self
        return replace(self, password=None if self.password is None else "***",
                       secret=None if self.secret is None else "***")

    @property
    def location(self) -> str:
        """``host:port`` or the socket path: where a connection goes (no secrets)."""
        return self.unix_socket_path or f"{self.host}:{self.port}"

    def _url(self, password: str | None) -> str:
        auth = ""
        if self.username is not None or password is not None:
            user = quote(self.username or "", safe="")
            auth = user + (":" + (password if password == "***" else quote(password, safe=""))
                           if password is not None else "") + "@"
        if self.unix_socket_path:
            return f"unix://{auth}{quote(self.unix_socket_path)}?db={self.db}"
        scheme = ("rediss" if self.ssl else "redis") + ("+cluster" if self.cluster else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.cluster:  # a cluster has database 0 only
            return f"{scheme}://{auth}{host}:{self.port}"
        return f"{scheme}://{auth}{host}:{self.port}/{self.db}"

    def __repr__(self) -> str:
        signed = "" if self.secret is None else ", secret='***'"
        return (f"RedisConfig(url={self.redacted_url!r}, retry_seconds={self.retry_seconds!r}"
                f"{signed})")

    __str__ = __repr__

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis`` (contains the password: never log them);
        for a cluster, those of ``redis.cluster.RedisCluster`` (no ``db``)."""
        kw: dict[str, Any] = dict(password=self.password, username=self.username)
        if not self.cluster:
            kw["db"] = self.db
        if self.unix_socket_path:
            kw["unix_socket_path"] = self.unix_socket_path
        else:
            kw.update(host=self.host, port=self.port, ssl=self.ssl)
        return kw


def _parse_url(url: str) -> dict[str, Any]:
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    if url == LOCAL_URL:
        raise ValueError(f"url {LOCAL_URL!r} (the local rush server) is understood by rsh(), "
                         f"rush_plan() and the rush command, not by RedisConfig: "
                         f"rush.local_server() returns its config")
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ValueError(
            "url must start with redis://, rediss://, unix://, redis+cluster:// or "
            f"rediss+cluster://, got scheme {parts.scheme!r}")
    ssl, cluster = _SCHEMES[parts.scheme]
    out: dict[str, Any] = {"ssl": ssl, "cluster": cluster}
    if parts.username:
        out["username"] = unquote(parts.username)
    if parts.password is not None:
        out["password"] = unquote(parts.password)
    query = parse_qs(parts.query)
    if parts.scheme == "unix":
        out["unix_socket_path"] = unquote(parts.path)
    else:
        out["host"] = parts.hostname or "127.0.0.1"
        try:
            out["port"] = parts.port or 6379
        except ValueError:
            raise ValueError("url has an invalid port") from None
        path = parts.path.strip("/")
        if path:
            out["db"] = _parse_db(path)
    if "db" in query:
        out["db"] = _parse_db(query["db"][0])
    return out


def _parse_db(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"url has an invalid database number {text!r}")
    return int(text)


def _validate(v: dict[str, Any]) -> None:
    _check_type("host", v["host"], str)
    _check_type("port", v["port"], int)
    _check_type("db", v["db"], int)
    _check_type("ssl", v["ssl"], bool)
    _check_type("cluster", v["cluster"], bool)
    for name in ("password", "username", "unix_socket_path", "secret"):
        if v[name] is not None:
            _check_type(name, v[name], str)
    if v["secret"] == "":
        raise ValueError("secret must be a non-empty str, or None for no signing")
    if isinstance(v["retry_seconds"], bool) or not isinstance(v["retry_seconds"], (int, float)):
        raise TypeError("retry_seconds must be a number")
    if not 0 < v["port"] < 65536:
        raise ValueError(f"port must be in 1..65535, got {v['port']}")
    if v["db"] < 0:
        raise ValueError(f"db must be >= 0, got {v['db']}")
    if v["cluster"] and v["unix_socket_path"]:
        raise ValueError("a Redis Cluster is reached over TCP (host and port of a node), "
                         "not over a unix socket")
    if v["cluster"] and v["db"] != 0:
        raise ValueError(f"a Redis Cluster has database 0 only, got db={v['db']}")
    if v["retry_seconds"] < 0:
        raise ValueError(f"retry_seconds must be >= 0, got {v['retry_seconds']}")


def _check_type(name: str, value: Any, kind: type) -> None:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{name} must be {kind.__name__}, not {type(value).__name__}")


def redis_config(**kw: Any) -> RedisConfig:
    """Same as ``RedisConfig(**kw)`` (the R spelling).

    With no arguments it reads ``RUSH_REDIS_URL``, then ``REDIS_URL`` (and
    ``RUSH_RETRY_SECONDS``), then uses the default ``redis://127.0.0.1:6379/0``. Without
    ``secret`` it takes ``RUSH_SECRET``, if set.
    """
    if not kw:
        from_env = config_from_environment()
        if from_env is not None:
            return from_env
    kw.setdefault("secret", env_secret())
    return RedisConfig(**kw)


def env_url() -> str | None:
    """The Redis URL set in the environment, if any."""
    for name in URL_ENV_VARS:
        if os.environ.get(name):
            return os.environ[name]
    return None


def env_secret() -> str | None:
    """The network secret set in the environment (``RUSH_SECRET``), if any."""
    return os.environ.get(SECRET_ENV_VAR) or None


def config_from_environment() -> RedisConfig | None:
    """The config set in the environment (a URL variable, ``RUSH_RETRY_SECONDS`` and
    ``RUSH_SECRET``), or ``None`` when no URL is set."""
    url = env_url()
    if url is None:
        return None
    retry = os.environ.get(RETRY_ENV_VAR)
    if retry is None:
        return RedisConfig(url=url, secret=env_secret())
    try:
        seconds = float(retry)
    except ValueError:
        raise ValueError(f"{RETRY_ENV_VAR} must be a number of seconds, got {retry!r}") from None
    return RedisConfig(url=url, retry_seconds=seconds, secret=env_secret())


def config_environment(config: RedisConfig) -> dict[str, str]:
    """The environment variables that carry ``config`` to a worker or heartbeat process
    (read back by ``config_from_environment``). Secrets travel here, never in an argv;
    ``RUSH_SECRET`` is set empty without a secret, so a secret the launching environment
    happens to hold cannot slip in."""
    return {URL_ENV_VARS[0]: config.url, RETRY_ENV_VAR: repr(float(config.retry_seconds)),
            SECRET_ENV_VAR: config.secret or ""}
