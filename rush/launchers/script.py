"""Script workers: a POSIX shell command that starts one worker wherever it runs."""

from __future__ import annotations

import shlex

from ..config import RedisConfig
from ..worker_options import WorkerOptions


def worker_command(network_id: str, config: RedisConfig, options: WorkerOptions,
                   python: str = "python") -> tuple[str, str]:
    """``(command, redacted command)``. The URL is passed in ``RUSH_REDIS_URL`` before the
    command, so the password is not in the worker's process title."""
    args = [python, "-m", "rush", "worker", "--network-id", network_id, *options.cli_args()]
    tail = " ".join(shlex.quote(a) for a in args)
    return (f"RUSH_REDIS_URL={shlex.quote(config.url)} {tail}",
            f"RUSH_REDIS_URL={shlex.quote(config.redacted_url)} {tail}")
