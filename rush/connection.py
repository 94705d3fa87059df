"""Redis clients built from a ``RedisConfig``: retry with backoff, first-connect check,
and the translation of redis-py errors into ``RushConnectionError``."""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, TypeVar

import redis
import redis.cluster
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from .config import RedisConfig
from .errors import RushConnectionError, RushError, RushNetworkLostError, RushOutOfMemoryError

#: How long the first contact with Redis (``rsh()``, a worker's start) may take.
FIRST_CONNECT_SECONDS = 5.0
#: How long one command may wait for its reply before the connection counts as broken
#: (then the call is retried until ``retry_seconds`` have passed).
SOCKET_TIMEOUT = 5.0
SOCKET_CONNECT_TIMEOUT = 2.0
_BACKOFF_CAP = 1.0
_BACKOFF_BASE = 0.02
TRANSIENT_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
#: What redis-py's cluster client raises, besides ``TRANSIENT_ERRORS``, while a node or
#: the slots it serves cannot be reached.
CLUSTER_OUTAGE_ERRORS = (redis.exceptions.ClusterDownError, redis.exceptions.SlotNotCoveredError)
_NO_NODE = "Redis Cluster cannot be connected"

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class DeadlineRetry(Retry):
    """Retries a call after transient errors, with capped exponential backoff, until
    ``seconds`` of wall-clock time have passed since the call began: time spent waiting
    for replies that never came counts, so a hung Redis ends the call after at most
    ``seconds`` plus one socket timeout.

    Every call rush resends is safe to resend: reads, idempotent writes, and the task
    steps, which the scripts make idempotent (see ``_lib.lua``).
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(ExponentialBackoff(cap=_BACKOFF_CAP, base=_BACKOFF_BASE), -1,
                         supported_errors=TRANSIENT_ERRORS)
        self.seconds = seconds

    def call_with_retry(self, do: Callable[[], T], fail: Callable[..., Any],
                        is_retryable: Callable[[Exception], bool] | None = None,
                        with_failure_count: bool = False) -> T:
        self._backoff.reset()
        deadline = time.monotonic() + self.seconds
        failures = 0
        while True:
            try:
                return do()
            except self._supported_errors as error:
                if is_retryable is not None and not is_retryable(error):
                    raise
                failures += 1
                if with_failure_count:
                    fail(error, failures)
                else:
                    fail(error)
                pause = self._backoff.compute(failures)
                if time.monotonic() + pause > deadline:
                    raise error
                time.sleep(pause)  # backoff before the next attempt


def connect(config: RedisConfig, retry_seconds: float | None = None) -> redis.Redis:
    """A client that retries transient errors for ``config.retry_seconds`` (a wall-clock
    deadline per call).

    For a cluster (``config.cluster``), redis-py's ``RedisCluster`` (``DeadlineCluster``):
    it finds the nodes and slots now (``RushConnectionError`` if it cannot) and follows
    MOVED/ASK.
    """
    seconds = config.retry_seconds if retry_seconds is None else retry_seconds
    if config.cluster:
        return _connect_cluster(config, seconds)
    return redis.Redis(**config.connection_kwargs(), retry=DeadlineRetry(seconds),
                       socket_timeout=SOCKET_TIMEOUT,
                       socket_connect_timeout=SOCKET_CONNECT_TIMEOUT, health_check_interval=30)


def cluster_outage(error: BaseException) -> bool:
    """Whether ``error`` says that a cluster node or its slots cannot be reached now."""
    return (isinstance(error, TRANSIENT_ERRORS + CLUSTER_OUTAGE_ERRORS)
            or (isinstance(error, redis.exceptions.RedisClusterException)
                and _NO_NODE in str(error)))


class DeadlineCluster(redis.cluster.RedisCluster):
    """redis-py's cluster client, whose commands ride out an outage like ``DeadlineRetry``
    does: a command that fails because a node or its slots cannot be reached (after
    redis-py's own retries, which refresh the topology) is sent again, with capped
    backoff, until ``retry_seconds`` have passed since it began. (Pipelines and pub/sub
    keep redis-py's policy.)"""

    def __init__(self, *args: Any, retry_seconds: float, **kwargs: Any) -> None:
        self.retry_seconds = retry_seconds  # first: the constructor sends commands
        super().__init__(*args, **kwargs)

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        backoff = ExponentialBackoff(cap=_BACKOFF_CAP, base=_BACKOFF_BASE)
        deadline = time.monotonic() + self.retry_seconds
        failures = 0
        while True:
            try:
                return super().execute_command(*args, **kwargs)
            except Exception as error:
                if not cluster_outage(error):
                    raise
                failures += 1
                pause = backoff.compute(failures)
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)  # backoff before the next attempt


def _connect_cluster(config: RedisConfig, seconds: float) -> redis.Redis:
    try:
        return DeadlineCluster(  # type: ignore[return-value]
            **config.connection_kwargs(), retry_seconds=seconds, socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_CONNECT_TIMEOUT, health_check_interval=30)
    except redis.exceptions.RedisClusterException as e:
        if "Cluster mode is not enabled" in str(e):
            raise not_a_cluster_error(config) from None
        raise connection_error(config, e) from None
    except redis.exceptions.AuthenticationError as e:
        raise connection_error(config, e) from None


def not_a_cluster_error(config: RedisConfig) -> RushError:
    """The error of a cluster URL that points at a Redis without cluster mode."""
    scheme = "rediss" if config.ssl else "redis"
    return RushError(
        f"Redis at {config.location} is not a Redis Cluster node (cluster mode is not "
        f"enabled there), but the config asks for one ({config.redacted_url}): use "
        f"{scheme}://{config.location} for a single server")


def connection_error(config: RedisConfig, cause: BaseException) -> RushConnectionError:
    """A ``RushConnectionError`` naming where rush tried, never the password."""
    reason = type(cause).__name__
    if config.cluster and not isinstance(cause, redis.exceptions.AuthenticationError):
        # the node named in the config may answer while the master of a network does not
        return RushConnectionError(
            f"cannot reach the Redis Cluster at {config.location} or one of its masters "
            f"({reason}: {cause}): start the node that is down, or wait for the cluster "
            "to fail over to a replica")
    if isinstance(cause, redis.exceptions.AuthenticationError):
        hint = "check the username and password of the Redis config"
    else:
        hint = ("start redis-server there, or point rush elsewhere with RedisConfig(...) "
                "or the RUSH_REDIS_URL environment variable")
    return RushConnectionError(f"cannot reach Redis at {config.location} ({reason}): {hint}")


def check_connection(config: RedisConfig, seconds: float = FIRST_CONNECT_SECONDS) -> None:
    """PING Redis, retrying for about ``seconds``; raise ``RushConnectionError`` if it never answers."""
    # for a cluster, the one node named: its answer tells whether it is a cluster node
    probe = _probe(config, SOCKET_CONNECT_TIMEOUT) if config.cluster else connect(config, 0)
    deadline = time.monotonic() + seconds
    delay = _BACKOFF_BASE
    try:
        while True:
            try:
                probe.ping()
                if config.cluster and not _cluster_enabled(probe):
                    raise not_a_cluster_error(config)
                return
            except redis.exceptions.AuthenticationError as e:
                raise connection_error(config, e) from None
            except TRANSIENT_ERRORS as e:
                if time.monotonic() + delay > deadline:
                    raise connection_error(config, e) from None
                time.sleep(delay)  # backoff between connection attempts
                delay = min(delay * 2, _BACKOFF_CAP)
    finally:
        probe.close()


def answers(config: RedisConfig, timeout: float = 0.2) -> bool:
    """True when something answers PING at ``config`` right now (no retry)."""
    probe = _probe(config, timeout)
    try:
        return bool(probe.ping())
    except (redis.exceptions.RedisError, OSError):
        return False
    finally:
        probe.close()


def _probe(config: RedisConfig, timeout: float) -> redis.Redis:
    """A plain client of the one node ``config`` names (for a cluster too), without retry."""
    # retry=Retry(NoBackoff(), 0): redis-py >= 6 retries 3 times by default, which turned
    # this probe into ~4 s on a closed port (and slowed every RedisServer start-up)
    return redis.Redis(**config.connection_kwargs(), socket_connect_timeout=timeout,
                       socket_timeout=timeout, retry=Retry(NoBackoff(), 0))


def _cluster_enabled(probe: redis.Redis) -> bool:
    # CLUSTER INFO rather than INFO: the cluster client needs the CLUSTER commands anyway,
    # so a least-privilege user (rush acl) may run it
    try:
        probe.execute_command("CLUSTER INFO")
    except redis.exceptions.ResponseError as e:
        if "cluster support disabled" in str(e):
            return False
        raise
    return True


def translate_errors(config_of: Callable[[Any], RedisConfig],
                     on_lost: Callable[[Any, RushNetworkLostError], BaseException] | None = None
                     ) -> Callable[[type], type]:
    """Class decorator: public methods and properties (and ``__str__``) raise
    ``RushConnectionError``
    instead of redis-py's connection errors, with a message naming
    ``config_of(self).location``, and ``RushOutOfMemoryError`` when Redis is full;
    ``on_lost(self, error)`` may replace a ``RushNetworkLostError``."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except RushNetworkLostError as e:
                if on_lost is None:
                    raise
                raise on_lost(self, e) from None
            except TRANSIENT_ERRORS as e:
                raise connection_error(config_of(self), e) from None
            except (redis.exceptions.RedisClusterException, *CLUSTER_OUTAGE_ERRORS) as e:
                if cluster_outage(e):
                    raise connection_error(config_of(self), e) from None
                raise
            except redis.exceptions.NoPermissionError as e:
                raise permission_error(config_of(self), e) from None
            except redis.exceptions.ResponseError as e:
                if _OOM in str(e):
                    raise out_of_memory_error(config_of(self), e) from None
                raise
        return wrapper  # type: ignore[return-value]

    def decorate(cls: type) -> type:
        for name, value in list(vars(cls).items()):
            if name.startswith("_") and name != "__str__":
                continue
            if isinstance(value, property) and value.fget is not None:
                setattr(cls, name, property(wrap(value.fget), value.fset, value.fdel,
                                            value.__doc__))
            elif callable(value) and not isinstance(value, (staticmethod, classmethod, type)):
                setattr(cls, name, wrap(value))
        return cls

    return decorate


_OOM = "OOM command not allowed"


def permission_error(config: RedisConfig, cause: BaseException) -> RushError:
    """A ``RushError`` for a command the Redis user of ``config`` may not run (an ACL)."""
    user = f"user {config.username!r}" if config.username else "the default user"
    return RushError(
        f"Redis at {config.location} refused a command of {user} ({cause}): its ACL does "
        "not let it touch this network, or run this command. `rush acl --network-id <id>` "
        "prints the rules of a user for one network (controller and workers of that "
        "network need nothing more; redis_info() and snapshot_schedule need an "
        "administrator)")


def out_of_memory_error(config: RedisConfig, cause: BaseException) -> RushOutOfMemoryError:
    """A ``RushOutOfMemoryError`` with Redis's message and what to do."""
    return RushOutOfMemoryError(
        f"Redis at {config.location} is full and refused the write ({cause}); nothing of "
        "this call was written. Free memory (reset() networks you no longer need, or "
        "delete their results after fetching them) or raise Redis's maxmemory")
