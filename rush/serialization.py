"""How values are stored in Redis: the ``Serializer`` of a network, and the task fields the
Lua scripts read as text (``TEXT_FIELDS``).

Every payload rush stores (task fields, the conditions the scripts place, start arguments,
large-object files) is a pickle (protocol 5; cloudpickle when pickle cannot), written and
read by the one ``Serializer`` of its network. Unpickling runs code, so:

- without a secret, a payload is the bare pickle, and whoever can write to the Redis can
  run code in every worker and controller of it;
- with a secret (``RedisConfig(secret=...)``, ``RUSH_SECRET``) every payload is sealed:
  ``MAGIC + HMAC-SHA256 tag + pickle``, the tag taken over the pickle *and* the place it
  is stored at (the Redis key, and the field of a hash), so a payload written without
  the secret, or moved from another task, field or network, fails. Every read checks the
  tag before anything is unpickled and raises ``RushSecurityError`` naming the key.

The text fields (``worker_id``, ``timeout``, ``max_retries``, ``attempts``) are never
unpickled and not signed: the scripts read and write them.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import pickle
from typing import Any, Callable

from .errors import RushSecurityError
from .keys import NetworkKeys

PROTOCOL = 5
#: First bytes of a sealed payload (no pickle starts with them: ``R`` is a pickle opcode
#: that needs a value on the stack).
MAGIC = b"RSH1"
TAG_BYTES = 32
_HEADER = len(MAGIC) + TAG_BYTES


def dumps(value: Any) -> bytes:
    """Pickle ``value``; functions and classes defined in ``__main__`` go by value."""
    try:
        return pickle.dumps(value, PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        import cloudpickle  # only needed for what plain pickle refuses

        return cloudpickle.dumps(value, PROTOCOL)


def dumps_code(value: Any) -> bytes:
    """Pickle a worker loop or globals by value (cloudpickle), so they run elsewhere."""
    import cloudpickle

    return cloudpickle.dumps(value, PROTOCOL)


def _netstring(text: str) -> bytes:
    data = text.encode()
    return b"%d:%s" % (len(data), data)


class Serializer:
    """Writes and reads the payloads of one network, signed when it has a ``secret``.

    A payload's *place* is the Redis key it is stored under and, in a hash, its field
    (``place(key, field)``); a large-object file's place is the key naming its content.
    """

    __slots__ = ("keys", "_key", "_encoders", "_decoders")

    def __init__(self, keys: NetworkKeys, secret: str | None = None) -> None:
        self.keys = keys
        # a key of its own for payloads, derived from the secret (never the secret itself)
        self._key = None if secret is None else _HmacSha256(
            hmac.digest(secret.encode(), b"rush payload signing v1", "sha256"))
        self._encoders: dict[str, Callable[[str, Any], bytes | str]] = {}
        self._decoders: dict[str, Callable[[str, bytes], Any]] = {}

    def __repr__(self) -> str:
        return f"Serializer(network_id={self.keys.network_id!r}, signed={self.signed})"

    @property
    def signed(self) -> bool:
        """Whether payloads are signed (the network has a secret)."""
        return self._key is not None

    @staticmethod
    def place(key: str, field: str = "") -> bytes:
        """The place a payload is stored at, as the tag covers it (unambiguous bytes)."""
        return _netstring(key) + _netstring(field)

    # -- sealing -------------------------------------------------------------------

    def seal(self, data: bytes, place: bytes) -> bytes:
        """``data`` (a pickle) as stored at ``place``: with a secret, behind its tag."""
        if self._key is None:
            return data
        return MAGIC + self._tag(data, place) + data

    def open(self, stored: bytes, place: bytes) -> bytes | memoryview:
        """The pickle inside a stored payload, once its tag checks out for ``place``;
        else ``RushSecurityError`` (nothing is unpickled)."""
        if self._key is None:
            if stored[:len(MAGIC)] == MAGIC:
                raise RushSecurityError(
                    f"{_describe(place)} is signed with a network secret, and this config has "
                    "none: give the network's secret (RedisConfig(secret=...) or RUSH_SECRET)")
            return stored
        if stored[:len(MAGIC)] != MAGIC:
            raise RushSecurityError(
                f"{_describe(place)} is not signed with the network's secret: refused, not "
                "unpickled (someone wrote to Redis without the secret, or the value predates "
                "the secret)")
        body = memoryview(stored)[_HEADER:]
        if not hmac.compare_digest(stored[len(MAGIC):_HEADER], self._tag(body, place)):
            raise RushSecurityError(
                f"{_describe(place)} has a signature that does not match: refused, not "
                "unpickled (written without the network's secret, or moved there from "
                "another key, field or network)")
        return body

    def _tag(self, data: bytes | memoryview, place: bytes) -> bytes:
        assert self._key is not None
        return self._key.tag(place, data)

    # -- values --------------------------------------------------------------------

    def dumps(self, value: Any, place: bytes) -> bytes:
        """``value`` pickled and sealed for ``place``."""
        return self.seal(dumps(value), place)

    def dumps_code(self, value: Any, place: bytes) -> bytes:
        """``value`` pickled by value (cloudpickle) and sealed for ``place``."""
        return self.seal(dumps_code(value), place)

    def loads(self, stored: bytes, place: bytes) -> Any:
        """The value of a payload stored at ``place``, checked before it is unpickled."""
        return pickle.loads(self.open(stored, place))

    # -- task fields ---------------------------------------------------------------

    def task_place(self, key: str, field: str) -> bytes:
        """The place of field ``field`` of task ``key`` (its hash, see ``keys.py``)."""
        return self.place(self.keys.task(key), field)

    def encoder(self, field: str) -> Callable[[str, Any], "bytes | str"]:
        """How a value of task field ``field`` of task ``key`` is stored:
        ``encode(key, value)``; ``None`` -> "" (the field is absent)."""
        coder = self._encoders.get(field)
        if coder is None:
            coder = self._encoders[field] = self._make_encoder(field)
        return coder

    def decoder(self, field: str) -> Callable[[str, bytes], Any]:
        """How a stored value of task field ``field`` is read back: ``decode(key, raw)``,
        checked before it is unpickled (the hot path of every fetch)."""
        coder = self._decoders.get(field)
        if coder is None:
            coder = self._decoders[field] = self._make_decoder(field)
        return coder

    def _make_encoder(self, field: str) -> Callable[[str, Any], "bytes | str"]:
        text = TEXT_FIELDS.get(field)
        if text is not None:
            to_text = text[0]
            return lambda key, value: to_text(value)
        if self._key is None:
            return lambda key, value: "" if value is None else dumps(value)
        place = self._task_place_of(field)
        seal = self.seal
        return lambda key, value: "" if value is None else seal(dumps(value), place(key))

    def _make_decoder(self, field: str) -> Callable[[str, bytes], Any]:
        text = TEXT_FIELDS.get(field)
        if text is not None:
            from_text = text[1]
            return lambda key, raw: from_text(raw)
        if self._key is None:
            def decode_plain(key: str, raw: bytes) -> Any:
                if raw.startswith(MAGIC):
                    self.open(raw, self.task_place(key, field))  # raises, saying why
                return pickle.loads(raw)
            return decode_plain
        place, open_ = self._task_place_of(field), self.open
        return lambda key, raw: pickle.loads(open_(raw, place(key)))

    def _task_place_of(self, field: str) -> Callable[[str], bytes]:
        """``task_place(key, field)`` for one field, with its constant parts made once."""
        head, tail = self.keys.task_prefix.encode(), _netstring(field)

        def place(key: str) -> bytes:
            name = head + key.encode()
            return b"%d:%s%s" % (len(name), name, tail)
        return place


class _HmacSha256:
    """HMAC-SHA256 (RFC 2104) of one key, keyed once: the hashes of the padded key are
    made here and copied for each tag. The same tags as ``hmac.digest(key, msg,
    "sha256")`` (a test checks it), at about half the cost of copying an ``hmac.HMAC``,
    which a task write or read pays for each payload."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        block = hashlib.sha256().block_size
        if len(key) > block:
            key = hashlib.sha256(key).digest()
        key = key.ljust(block, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def tag(self, *parts: bytes | memoryview) -> bytes:
        """The tag of the concatenation of ``parts``."""
        inner = self._inner.copy()
        for part in parts:
            inner.update(part)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def _describe(place: bytes) -> str:
    """Words for a place (a key, maybe a field), for an error message."""
    key, field = _split(place)
    return f"the value at {key!r}" + (f", field {field!r}," if field else "")


def _split(place: bytes) -> tuple[str, str]:
    parts = []
    rest = place
    while rest:
        size, _, rest = rest.partition(b":")
        parts.append(rest[:int(size)].decode(errors="replace"))
        rest = rest[int(size):]
    return parts[0], parts[1] if len(parts) > 1 else ""


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
