"""Start arguments of workers: the loop, its kwargs, globals and packages, pickled once
per network into Redis (or, when too large, into a file under ``large_objects_path``).

Their id is the hash of the pickle. The value in Redis (``keys.start_args_blob(id)``) and
a large-object file are sealed by the network's ``Serializer`` for that key (the file for
its field ``large_object``), so a worker refuses arguments written without the secret.
A large-object file is written readable by its owner only (mode 0600).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Sequence

from .plan import DEFAULT_MAX_OBJECT_SIZE, plan_value
from .serialization import Serializer, dumps_code

#: The field of the start arguments' key that a large-object file is sealed for.
LARGE_OBJECT_FIELD = "large_object"

_MIB = 1024 * 1024


def resolve_globals(globals_: Any, frame: FrameType | None) -> dict[str, Any]:
    """``globals`` as a dict: a dict stays, a list of names is looked up in ``frame``
    (the caller's module namespace, then its locals)."""
    if globals_ is None:
        return {}
    if isinstance(globals_, dict):
        if not all(isinstance(k, str) for k in globals_):
            raise TypeError("globals must be a dict with str keys or a list of names")
        return dict(globals_)
    if isinstance(globals_, str):
        globals_ = [globals_]
    if not isinstance(globals_, (list, tuple)) or not all(isinstance(n, str) for n in globals_):
        raise TypeError("globals must be a list of names or a dict")
    scopes = [] if frame is None else [frame.f_locals, frame.f_globals]
    out = {}
    for name in globals_:
        for scope in scopes:
            if name in scope:
                out[name] = scope[name]
                break
        else:
            raise ValueError(f"globals: no variable named {name!r} in the caller's namespace")
    return out


def user_frame() -> FrameType | None:
    """The innermost frame outside the rush package: the user's call of a start method,
    whose namespace ``globals`` names are looked up in (however many rush frames, such
    as error translation, lie in between)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and _in_rush(frame):
        frame = frame.f_back
    return frame


def _in_rush(frame: FrameType) -> bool:
    name = frame.f_globals.get("__name__", "")
    return name == "rush" or name.startswith("rush.")


def pack(worker_loop: Callable, kwargs: dict[str, Any], globals_: dict[str, Any],
         packages: Sequence[str]) -> bytes:
    """Pickle the start arguments by value; fails here, in the controller, if they can't be."""
    if not callable(worker_loop):
        raise TypeError(f"worker_loop must be callable, not {type(worker_loop).__name__}")
    code = getattr(worker_loop, "__code__", None)
    try:
        return dumps_code({"worker_loop": worker_loop, "kwargs": kwargs, "globals": globals_,
                           "packages": list(packages),
                           "source_file": getattr(code, "co_filename", None)})
    except Exception as e:  # cloudpickle raises many types; all mean the same here
        raise TypeError(f"the worker loop or its arguments cannot be pickled: {e}") from e


def place(blob: bytes, serializer: Serializer, max_object_size: float | None,
          large_objects_path: str | os.PathLike | None) -> tuple[str, bytes]:
    """Where the start arguments go: ``(id, value to store in Redis)``, sealed. Blobs
    larger than ``max_object_size`` MiB are written to a file and Redis gets only its path."""
    digest = hashlib.sha1(blob).hexdigest()
    where = Serializer.place(serializer.keys.start_args_blob(digest))
    limit = (max_object_size or plan_value("max_object_size", DEFAULT_MAX_OBJECT_SIZE)) * _MIB
    if len(blob) <= limit:
        return digest, serializer.seal(blob, where)
    folder = large_objects_path or plan_value("large_objects_path")
    if folder is None:
        raise ValueError(
            f"the start arguments take {len(blob) / _MIB:.1f} MiB, more than max_object_size "
            f"({limit / _MIB:g} MiB); set large_objects_path in rush_plan() to a directory "
            "shared by the controller and the workers")
    path = Path(folder) / f"rush-{serializer.keys.network_id}-{digest}.pkl"
    write_private(path, serializer.seal(
        blob, Serializer.place(serializer.keys.start_args_blob(digest), LARGE_OBJECT_FIELD)))
    return digest, serializer.dumps({"large_object_path": str(path)}, where)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, readable by the owner only (mode 0600): into a new file
    first, then renamed, so it never lands in a file someone else made."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def unpack(args_id: str, stored: bytes, serializer: Serializer) -> dict[str, Any]:
    """The start arguments ``args_id`` read back in a worker (following a large-object
    file), each payload checked before it is unpickled (``RushSecurityError``)."""
    key = serializer.keys.start_args_blob(args_id)
    args = serializer.loads(stored, Serializer.place(key))
    if "large_object_path" in args:
        data = Path(args["large_object_path"]).read_bytes()
        args = serializer.loads(data, Serializer.place(key, LARGE_OBJECT_FIELD))
    _restore_source_file(args["worker_loop"], args.get("source_file"))
    return args


#: The file name cloudpickle gives the code it pickles by value.
_DYNAMIC_CODE = "<dynamic-code>"


def _restore_source_file(loop: Any, source_file: str | None) -> None:
    """Give a loop pickled by value (and the functions of its module pickled with it) its
    file name back, so a traceback of the loop shows the file and its lines."""
    if not source_file or source_file == _DYNAMIC_CODE:
        return
    module = getattr(loop, "__module__", None)
    for fn in [loop, *getattr(loop, "__globals__", {}).values()]:
        code = getattr(fn, "__code__", None)
        if code is not None and code.co_filename == _DYNAMIC_CODE \
                and getattr(fn, "__module__", None) == module:
            fn.__code__ = code.replace(co_filename=source_file)
