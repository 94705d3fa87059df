"""What the Redis access layers of one network (the task store and the worker registry)
are built on: its client, key names, scripts and config."""

from __future__ import annotations

from typing import TypeVar

import redis

from .config import RedisConfig
from .connection import connect
from .keys import NetworkKeys
from .scripts import Scripts


def decode(value: bytes | str) -> str:
    """Text of a Redis reply that may be bytes."""
    return value.decode() if isinstance(value, bytes) else value


Layer = TypeVar("Layer", bound="NetworkLayer")


class NetworkLayer:
    """Base of the Redis access layers of one network.

    Each layer states its invariants in its docstring; every public method is one round
    trip (a Lua script, a pipeline or MULTI) and raises ``RushConnectionError`` when
    Redis cannot be reached.
    """

    def __init__(self, client: redis.Redis, keys: NetworkKeys, scripts: Scripts,
                 config: RedisConfig) -> None:
        self.client = client
        self.keys = keys
        self.scripts = scripts
        self.config = config

    @classmethod
    def connect(cls: type[Layer], network_id: str, config: RedisConfig) -> Layer:
        """A layer with a client of its own (for processes that need only this layer)."""
        client = connect(config)
        return cls(client, NetworkKeys(network_id), Scripts(client), config)

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
