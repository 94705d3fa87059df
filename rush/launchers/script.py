"""Script workers: a POSIX shell command that starts one worker wherever it runs."""

from __future__ import annotations

import shlex

from ..config import RedisConfig, config_environment
from ..worker_options import WorkerOptions


def worker_command(network_id: str, config: RedisConfig, options: WorkerOptions,
                   python: str = "python") -> tuple[str, str]:
    """``(command, redacted command)``. Where Redis is goes in environment variables set
    before the command, so the password is not in the worker's process title. The worker
    registers as remote: the command may run anywhere."""
    args = [python, "-m", "rush", "worker", "--network-id", network_id, "--remote",
            *options.to_cli()]
    tail = " ".join(shlex.quote(a) for a in args)
    return (_assignments(config_environment(config)) + " " + tail,
            _assignments(config_environment(config.redacted())) + " " + tail)


def _assignments(env: dict[str, str]) -> str:
    return " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
