"""Script workers: a POSIX shell command that starts one worker wherever it runs."""

from __future__ import annotations

import shlex

from ..config import RedisConfig, config_environment
from ..worker_options import WorkerOptions


def worker_command(network_id: str, args_id: str, config: RedisConfig, options: WorkerOptions,
                   python: str = "python") -> tuple[str, str]:
    """``(command, redacted command)``: a worker running start arguments ``args_id``.

    Where Redis is (password and secret included) goes in environment assignments in front
    of ``exec``: the shell that runs the command replaces itself with the worker, so no
    process keeps them in its argv for the worker's lifetime (``sh -c`` of dash would stay
    as its parent otherwise). The worker registers as remote: the command may run anywhere.
    """
    args = [python, "-m", "rush", "worker", "--network-id", network_id, "--remote",
            "--start-args", args_id, *options.to_cli()]
    tail = "exec " + " ".join(shlex.quote(a) for a in args)
    return (_assignments(config_environment(config)) + " " + tail,
            _assignments(config_environment(config.redacted())) + " " + tail)


def _assignments(env: dict[str, str]) -> str:
    return " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
