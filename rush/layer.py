"""What the Redis access layers of one network (the task store and the worker registry)
are built on: its client, key names, scripts and config."""

from __future__ import annotations

import uuid
from typing import Any, Callable, Sequence, TypeVar

import redis

from .config import RedisConfig
from .connection import connect
from .errors import RushNetworkLostError, WorkerStoppedError
from .keys import NetworkKeys
from .scripts import Scripts
from .serialization import Serializer


def decode(value: bytes | str) -> str:
    """Text of a Redis reply that may be bytes."""
    return value.decode() if isinstance(value, bytes) else value


Layer = TypeVar("Layer", bound="NetworkLayer")


class Epoch:
    """The epoch of the network a controller or worker knows, shared by its layers: ""
    while the network has none (nobody wrote to it yet, or it was reset)."""

    __slots__ = ("value",)

    def __init__(self, value: str = "") -> None:
        self.value = value


class NetworkLayer:
    """Base of the Redis access layers of one network.

    Each layer states its invariants in its docstring; every public method is one round
    trip (a Lua script, a pipeline or MULTI) and raises ``RushConnectionError`` when
    Redis cannot be reached.

    ``epoch`` is the token of the network this handle joined: writes carry it, and with
    ``guard_reads`` (a controller's handles) every read checks it too, so a network whose
    data vanished raises ``RushNetworkLostError`` instead of reading empty. Layers of one
    controller share one ``Epoch``.

    ``serializer`` writes and reads every payload of the network (signed when the config
    has a secret).
    """

    def __init__(self, client: redis.Redis, keys: NetworkKeys, scripts: Scripts,
                 config: RedisConfig, serializer: Serializer | None = None) -> None:
        self.client = client
        self.keys = keys
        self.scripts = scripts
        self.config = config
        self.serializer = serializer or Serializer(keys, config.secret)
        self.shared_epoch = Epoch()
        self.guard_reads = False

    @property
    def epoch(self) -> str:
        """The network's epoch, for a write: a network without one gets one now."""
        if not self.shared_epoch.value:
            self.join()
        return self.shared_epoch.value

    def join(self) -> str:
        """Make the network's epoch if it has none; adopt it (one MULTI). Returns it."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.epoch, uuid.uuid4().hex, nx=True)
        pipe.get(self.keys.epoch)
        self.shared_epoch.value = decode(pipe.execute()[1])
        return self.shared_epoch.value

    def look(self) -> str:
        """Adopt the network's epoch as it is now, "" when it has none (nothing written)."""
        found = self.client.get(self.keys.epoch)
        self.shared_epoch.value = "" if found is None else decode(found)
        return self.shared_epoch.value

    def network_lost(self) -> RushNetworkLostError:
        """The error of a network whose data vanished."""
        return RushNetworkLostError(
            f"network {self.keys.network_id!r} is gone from Redis at {self.config.location}: "
            "the server was restarted without persistence, flushed, or the network was "
            "reset by another controller")

    def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Call a script, turning its refusals into rush errors."""
        try:
            return self.scripts.call(name, keys, args)
        except redis.exceptions.ResponseError as e:
            message = str(e)
            if message.startswith("WORKER_STOPPED"):
                raise WorkerStoppedError(
                    "this worker no longer runs (it was killed, found lost or has "
                    "terminated, or another start of its id replaced it): Redis refuses "
                    "its task writes") from None
            if message.startswith("NETWORK_LOST"):
                raise self.network_lost() from None
            raise

    @property
    def _read_epoch(self) -> str:
        """The epoch a read script checks ("": none). A guarded handle that knows no epoch
        yet looks again first: a network made since is its own from now on."""
        if not self.guard_reads:
            return ""
        return self.shared_epoch.value or self.look()

    def _run(self, pipe: Any) -> list:
        """Execute a pipeline of reads; with ``guard_reads``, in the same round trip check
        that the network is still the one this handle knows."""
        if not self.guard_reads:
            return pipe.execute()
        pipe.get(self.keys.epoch)
        *replies, found = pipe.execute()
        found = "" if found is None else decode(found)
        if not self.shared_epoch.value:
            self.shared_epoch.value = found  # a network made since: ours from now on
        elif found != self.shared_epoch.value:
            raise self.network_lost()
        return replies

    def _one(self, command: Callable[[Any], Any]) -> Any:
        """One read command (``command(client_or_pipeline)``), checked like ``_run``."""
        if not self.guard_reads:
            return command(self.client)
        pipe = self.client.pipeline(transaction=False)
        command(pipe)
        return self._run(pipe)[0]

    @classmethod
    def connect(cls: type[Layer], network_id: str, config: RedisConfig) -> Layer:
        """A layer with a client of its own (for processes that need only this layer)."""
        client = connect(config)
        return cls(client, NetworkKeys(network_id), Scripts(client), config)

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
