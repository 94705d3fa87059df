"""How values are stored in Redis: pickle (protocol 5), cloudpickle when pickle cannot.

Unpickling runs code: rush only unpickles what it reads from the Redis you configured,
so anyone who can write to that Redis can run code in your controller and workers.
Protect it like your shell (bind address, password/ACL, TLS).
"""

from __future__ import annotations

import pickle
from typing import Any

PROTOCOL = 5


def dumps(value: Any) -> bytes:
    """Serialize ``value``; functions and classes defined in ``__main__`` go by value."""
    try:
        return pickle.dumps(value, PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        import cloudpickle  # only needed for what plain pickle refuses

        return cloudpickle.dumps(value, PROTOCOL)


def loads(data: bytes | None) -> Any:
    """Deserialize what ``dumps`` wrote; ``None`` stays ``None``."""
    return None if data is None else pickle.loads(data)


def dumps_code(value: Any) -> bytes:
    """Serialize a worker loop or globals by value (cloudpickle), so they run elsewhere."""
    import cloudpickle

    return cloudpickle.dumps(value, PROTOCOL)


def encode(value: Any) -> bytes | str:
    """A task field as stored: pickled, or "" for an absent field (``None``)."""
    return "" if value is None else dumps(value)
