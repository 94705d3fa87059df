"""Argument checks shared by the public API: clear errors before anything is written."""

from __future__ import annotations

import os
from typing import Any, Sequence

from .logs import LEVELS


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


# -- networks and workers ------------------------------------------------------------

def check_network_id(network_id: Any) -> str:
    """A non-empty str without braces (they would break the network's hash tag)."""
    if not isinstance(network_id, str):
        raise TypeError(f"network_id must be a str, not {type(network_id).__name__}")
    if not network_id or "{" in network_id or "}" in network_id:
        raise ValueError(f"network_id must be a non-empty str without braces, got {network_id!r}")
    return network_id


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
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError("lgr_buffer_size must be an int")
    if size < 0:
        raise ValueError(f"lgr_buffer_size must be >= 0, got {size}")
    return size


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
