"""Argument checks shared by the public API: clear errors before anything is written."""

from __future__ import annotations

from typing import Any, Sequence


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
