"""The rush plan: process-wide defaults used by ``rsh()`` and the start methods, and
where the Redis config comes from when none is given."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from .config import LOCAL_URL, RedisConfig, config_from_environment, env_secret, env_url
from .connection import answers, check_connection
from .local_redis import local_server
from .validation import (check_buffer_size, check_executor, check_n_workers, check_thresholds,
                         positive_number)

logger = logging.getLogger("rush")

WORKER_TYPES = ("local", "remote", "script")
#: Default of ``max_object_size`` and ``max_value_size``: the largest Redis string, in MiB.
DEFAULT_MAX_OBJECT_SIZE = 512
DEFAULT_MAX_VALUE_SIZE = 512

_plan: dict[str, Any] | None = None
_lock = threading.Lock()


def rush_plan(n_workers: int | None = None, config: RedisConfig | None = None,
              lgr_thresholds: dict[str, str] | None = None, lgr_buffer_size: int | None = None,
              large_objects_path: str | os.PathLike | None = None, worker_type: str = "local",
              start_worker_timeout: float | None = None, max_object_size: float | None = None,
              executor: Any = None, max_value_size: float | None = None) -> None:
    """Set process-wide defaults for ``rsh()`` and the start methods.

    Checks that Redis answers (``RushConnectionError`` otherwise). ``worker_type`` tells
    code built on rush which start method to use (``"local"``, ``"remote"``, ``"script"``).
    """
    global _plan
    if n_workers is not None:
        check_n_workers(n_workers)
    if config is not None and not isinstance(config, RedisConfig):
        raise TypeError("config must be a RedisConfig")
    if lgr_thresholds is not None:
        check_thresholds(lgr_thresholds)
    if lgr_buffer_size is not None:
        check_buffer_size(lgr_buffer_size)
    if large_objects_path is not None and not os.path.isdir(large_objects_path):
        raise ValueError(f"large_objects_path {str(large_objects_path)!r} is not an existing directory")
    if worker_type not in WORKER_TYPES:
        raise ValueError(f"worker_type must be one of {', '.join(WORKER_TYPES)}, got {worker_type!r}")
    if start_worker_timeout is not None:
        positive_number("start_worker_timeout", start_worker_timeout)
    if max_object_size is not None:
        positive_number("max_object_size", max_object_size, allow_zero=False)
    if max_value_size is not None:
        positive_number("max_value_size", max_value_size, allow_zero=False)
        if max_value_size > DEFAULT_MAX_VALUE_SIZE:
            raise ValueError(f"max_value_size must be <= {DEFAULT_MAX_VALUE_SIZE} MiB (the "
                             f"largest Redis string), got {max_value_size}")
    if executor is not None:
        check_executor(executor)
    config = resolve_config(config, use_plan=False)
    check_connection(config)
    with _lock:
        _plan = dict(n_workers=n_workers, config=config, lgr_thresholds=lgr_thresholds,
                     lgr_buffer_size=lgr_buffer_size, large_objects_path=large_objects_path,
                     worker_type=worker_type, start_worker_timeout=start_worker_timeout,
                     max_object_size=max_object_size, executor=executor,
                     max_value_size=max_value_size)


def rush_config() -> dict[str, Any]:
    """The plan as a dict (every key of ``rush_plan``); empty when no plan is set."""
    with _lock:
        return dict(_plan) if _plan is not None else {}


def rush_available() -> bool:
    """Whether a plan is set."""
    return _plan is not None


def remove_rush_plan() -> None:
    """Forget the plan."""
    global _plan
    with _lock:
        _plan = None


def plan_value(name: str, default: Any = None) -> Any:
    """One value of the plan, or ``default`` when unset."""
    value = rush_config().get(name)
    return default if value is None else value


def resolve_config(config: RedisConfig | None, use_plan: bool = True) -> RedisConfig:
    """The config to use: the given one, the plan's, ``$RUSH_REDIS_URL``/``$REDIS_URL``,
    a Redis answering on 127.0.0.1:6379 (with ``$RUSH_SECRET``), else the local rush server
    (started if needed; it has a secret of its own).
    ``RUSH_REDIS_URL=local`` goes to the local rush server without probing 6379."""
    if config is not None:
        if not isinstance(config, RedisConfig):
            raise TypeError(f"config must be a RedisConfig, not {type(config).__name__}")
        return config
    planned = plan_value("config") if use_plan else None
    if planned is not None:
        return planned
    if env_url() == LOCAL_URL:
        return local_server()
    from_env = config_from_environment()
    if from_env is not None:
        return from_env
    default = RedisConfig(secret=env_secret())
    if answers(default):
        return default
    return local_server()
