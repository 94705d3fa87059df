"""Argument checks shared by the public API: clear errors before anything is written."""

from __future__ import annotations

import logging
import math
import os
import re
from typing import Any, Callable, Sequence


#: Level names accepted in ``lgr_thresholds`` (the R names and Python's) -> levels.
LEVELS = {"trace": 5, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "warning": logging.WARNING, "error": logging.ERROR, "fatal": logging.CRITICAL,
          "critical": logging.CRITICAL}


def dict_list(name: str, value: Any) -> list[dict]:
    """``value`` as a list of dicts, else ``TypeError`` naming ``name``."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of dicts, not {type(value).__name__}")
    for item in value:
        if not isinstance(item, dict):
            raise TypeError(f"{name} must be a list of dicts, found a {type(item).__name__}")
    return list(value)


def matching(name: str, value: Any, n: int, default: Any = None) -> list:
    """An optional list of dicts broadcast to length ``n`` (length 1 repeats)."""
    if value is None:
        return [default] * n
    items = dict_list(name, value)
    return broadcast(name, items, n)


def broadcast(name: str, items: list, n: int, against: str = "xss") -> list:
    """``items`` repeated when of length 1, else exactly ``n`` long (``ValueError``)."""
    if len(items) == n:
        return items
    if len(items) == 1:
        return items * n
    raise ValueError(f"{name} has length {len(items)} but {against} has length {n}")


def either(name: str, value: Any, alias: str, alias_value: Any) -> Any:
    """The one of two synonymous arguments that was given."""
    if value is not None and alias_value is not None:
        raise ValueError(f"give {name} or {alias}, not both")
    return value if value is not None else alias_value


def key_list(name: str, value: Any) -> list[str]:
    """Task keys: a str is one key, else a list of str."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not _all_str(value):
        raise TypeError(f"{name} must be a str or a list of str")
    return list(value)


def id_list(name: str, value: Any) -> list[str] | None:
    """Worker ids: ``None`` stays ``None``, a str is one id, else a list of str."""
    return None if value is None else key_list(name, value)


def field_list(name: str, value: Any) -> tuple[str, ...]:
    """Field names: a str is one field, else a sequence of str."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)) or not _all_str(value):
        raise TypeError(f"{name} must be a str or a list of str")
    return tuple(value)


def _all_str(items: list | tuple) -> bool:
    # A plain loop: all() over a generator costs more than the check itself for the
    # one-key lists of a worker's loop (called on every finish_tasks/pop_task).
    for item in items:
        if not isinstance(item, str):
            return False
    return True


def positive_number(name: str, value: Any, allow_zero: bool = True) -> float:
    """A real number >= 0 (> 0 without ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>=' if allow_zero else '>'} 0, got {value}")
    return float(value)


def states_list(name: str, value: Any, allowed: Sequence[str]) -> tuple[str, ...]:
    """State names, each one of ``allowed``."""
    states = field_list(name, value)
    for s in states:
        if s not in allowed:
            raise ValueError(f"{name} has unknown state {s!r}; allowed: {', '.join(allowed)}")
    return states


# -- task control ----------------------------------------------------------------------

def per_task(name: str, value: Any, n: int, check: Callable[[str, Any], Any]) -> list:
    """One value per task: a single value for all, or a list of ``n`` (length 1 repeats),
    each passed through ``check``."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(items) not in (1, n):
        raise ValueError(f"{name} has length {len(items)} but xss has length {n}")
    checked = [check(name, item) for item in items]
    return checked * n if len(checked) == 1 else checked


def check_timeout(name: str, value: Any) -> float:
    """A timeout: a finite number of seconds > 0."""
    seconds = positive_number(name, value, allow_zero=False)
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be a finite number of seconds, got {value}")
    return seconds


def non_negative_int(name: str, value: Any) -> int:
    """An int >= 0 (a number of retries, a seed, a buffer size)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def seed_list(value: Any, n: int) -> list[int]:
    """Explicit task seeds: a list of ``n`` ints >= 0."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"seeds must be a list of ints, one per task, not {type(value).__name__}")
    if len(value) != n:
        raise ValueError(f"seeds has length {len(value)} but xss has length {n}")
    return [non_negative_int("seeds", s) for s in value]


def priority_list(value: Any, n: int) -> list[str]:
    """Target workers of priority tasks: a list of ``n`` worker ids (``None``: the shared
    queue), as stored ("" for ``None``)."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"priority must be a list of worker ids, not {type(value).__name__}")
    if len(value) != n:
        raise ValueError(f"priority has length {len(value)} but xss has length {n}")
    for item in value:
        if item is not None and not isinstance(item, str):
            raise TypeError(f"priority must hold worker ids (str) or None, found a "
                            f"{type(item).__name__}")
    return ["" if item is None else item for item in value]


def value_list(name: str, value: Any) -> list:
    """A field of ``write_hashes``: a list of values, one per task."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of values, one per task, not "
                        f"{type(value).__name__}")
    return list(value)


# -- networks and workers ------------------------------------------------------------

#: What a network id may hold: letters, digits, ``-``, ``_`` and ``.`` (ASCII). No brace,
#: colon, glob character or space, so an id can neither leave its hash tag ``{id}`` nor
#: match another network's keys, channels or ACL patterns (``{a}:*`` never reaches ``{ab}:``).
NETWORK_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]+")


def check_network_id(network_id: Any) -> str:
    """A non-empty str of letters, digits, ``-``, ``_`` and ``.`` only."""
    if not isinstance(network_id, str):
        raise TypeError(f"network_id must be a str, not {type(network_id).__name__}")
    if NETWORK_ID_PATTERN.fullmatch(network_id) is None:
        raise ValueError(f"network_id may hold only letters, digits, '-', '_' and '.' (and "
                         f"not be empty), got {network_id!r}")
    return network_id


def check_start_args_id(args_id: Any) -> str:
    """The id of stored start arguments: 40 lower-case hex digits (a SHA-1)."""
    if not isinstance(args_id, str) or re.fullmatch(r"[0-9a-f]{40}", args_id) is None:
        raise ValueError(f"start arguments id must be 40 hex digits, got {args_id!r}")
    return args_id


def check_n_workers(n_workers: Any) -> int:
    """``n_workers`` must be an int >= 1."""
    if isinstance(n_workers, bool) or not isinstance(n_workers, int):
        raise TypeError(f"n_workers must be an int, not {type(n_workers).__name__}")
    if n_workers < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    return n_workers


def check_heartbeat(period: Any, expire: Any) -> tuple[float | None, float | None]:
    """Heartbeat options: seconds, floats allowed, expire >= period, default 3 x period."""
    if period is None:
        if expire is not None:
            raise ValueError("heartbeat_expire needs heartbeat_period")
        return None, None
    period = positive_number("heartbeat_period", period, allow_zero=False)
    expire = 3 * period if expire is None else positive_number("heartbeat_expire", expire)
    if expire < period:
        raise ValueError(f"heartbeat_expire ({expire:g}) must be >= heartbeat_period ({period:g})")
    return period, expire


def check_log_dir(name: str, path: Any) -> str | None:
    """An existing directory for message_log/output_log, else ``ValueError``."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path")
    if not os.path.isdir(path):
        raise ValueError(f"{name} {os.fspath(path)!r} is not an existing directory")
    return os.fspath(path)


def check_thresholds(thresholds: Any) -> dict[str, str]:
    """``lgr_thresholds`` maps logger names to level names."""
    if not isinstance(thresholds, dict):
        raise TypeError("lgr_thresholds must be a dict of logger name -> level name")
    for name, level in thresholds.items():
        if not isinstance(name, str) or not isinstance(level, str):
            raise TypeError("lgr_thresholds must be a dict of logger name -> level name")
        if level.lower() not in LEVELS:
            raise ValueError(f"lgr_thresholds has unknown level {level!r} for logger {name!r}")
    return thresholds


def check_buffer_size(size: Any) -> int:
    """``lgr_buffer_size`` is an int >= 0."""
    return non_negative_int("lgr_buffer_size", size)


def check_packages(packages: Any) -> list[str]:
    """``packages`` as a list of module names."""
    if packages is None:
        return []
    if isinstance(packages, str):
        packages = [packages]
    if not isinstance(packages, (list, tuple)) or not all(isinstance(p, str) for p in packages):
        raise TypeError("packages must be a list of module names")
    return list(packages)


def check_executor(executor: Any) -> Any:
    """An object with a callable ``submit``."""
    if not callable(getattr(executor, "submit", None)):
        raise TypeError(f"executor must have a submit(fn, *args, **kwargs) method, "
                        f"got {type(executor).__name__}")
    return executor


def check_schedule(schedule: Any) -> str:
    """A Redis ``save`` schedule: pairs of ints "seconds changes" (a str or a list of
    ints); "" or [] turns snapshots off."""
    if isinstance(schedule, str):
        parts = schedule.split()
        if not all(p.isdigit() for p in parts):
            raise ValueError(f"snapshot_schedule must hold whole numbers, got {schedule!r}")
        numbers = [int(p) for p in parts]
    elif isinstance(schedule, (list, tuple)):
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in schedule):
            raise ValueError(f"snapshot_schedule must hold ints >= 0, got {schedule!r}")
        numbers = list(schedule)
    else:
        raise TypeError("snapshot_schedule must be a str like '60 1000' or a list of ints")
    if len(numbers) % 2:
        raise ValueError("snapshot_schedule must hold pairs of 'seconds changes', got "
                         f"{len(numbers)} number(s)")
    return " ".join(str(x) for x in numbers)
