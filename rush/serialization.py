"""How values are stored in Redis: pickle (protocol 5), cloudpickle when pickle cannot;
the task fields the Lua scripts read as text (``TEXT_FIELDS``); and the condition
templates in which a script fills in a number (``placeholder_template``).

Unpickling runs code: rush only unpickles what it reads from the Redis you configured,
so anyone who can write to that Redis can run code in your controller and workers.
Protect it like your shell (bind address, password/ACL, TLS).
"""

from __future__ import annotations

import math
import pickle
from typing import Any, Callable

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


# -- task fields stored as text ------------------------------------------------------
# The Lua scripts read these fields, so they are stored as text, not pickled: the worker
# id, and the numbers of task control (a timeout in seconds, the retries allowed, the
# attempts so far). Every other task field is a pickle.


def _text_int(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"must be an int, not {type(value).__name__}")
    return str(value)


def _text_float(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"must be a finite number, not {value!r}")
    return repr(float(value))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"must be a str, not {type(value).__name__}")
    return value


#: field -> (encoder to text, decoder from the bytes Redis returns)
TEXT_FIELDS: dict[str, tuple[Callable[[Any], str], Callable[[bytes], Any]]] = {
    "worker_id": (_text, bytes.decode),
    "timeout": (_text_float, float),
    "max_retries": (_text_int, int),
    "attempts": (_text_int, int),
}
_PICKLED = (encode, loads)


def field_encoder(field: str) -> Callable[[Any], "bytes | str"]:
    """How a value of task field ``field`` is stored (``None`` -> "" = absent)."""
    return TEXT_FIELDS.get(field, _PICKLED)[0]


def field_decoder(field: str) -> Callable[[bytes], Any]:
    """How a stored value of task field ``field`` is read back."""
    return TEXT_FIELDS.get(field, _PICKLED)[1]


def placeholder_template(value: Any, placeholder: str) -> bytes:
    """``value`` pickled in the text protocol 0, whose strings are stored unframed and
    without a length: a Lua script can replace the first ``placeholder`` (ASCII, put in a
    ``str`` of ``value`` by the caller) with digits and still have a valid pickle."""
    data = pickle.dumps(value, 0)
    if placeholder.encode() not in data:
        raise ValueError("the placeholder must appear in the pickled value")
    return data
