"""Local workers: one OS process per worker, started with ``subprocess``.

stderr goes to a file (``message_<id>.log`` in ``message_log``, else a private folder of
the controller, mode 0700), never to a pipe nobody reads; the log files rush creates are
readable by their owner only (0600). The Redis URL and the secret travel in the
environment, so neither shows in a process title. With ``supervise`` the worker dies with the
controller: Linux's parent-death signal (SIGTERM, on which the worker marks itself lost
before it ends), plus a check in the worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import BinaryIO

from .._process import die_with_parent
from ..config import RedisConfig, config_environment
from ..worker_options import WorkerOptions

_TAIL_LINES = 20


def _worker_env(config: RedisConfig) -> dict[str, str]:
    env = dict(os.environ, **config_environment(config))
    # the loop may live in a module the controller imported from its own sys.path
    paths = [os.getcwd() if p == "" else p for p in sys.path]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
    return env


def stderr_path(worker_id: str, options: WorkerOptions, log_dir: Path) -> Path:
    """Where a local worker's stderr goes."""
    return Path(options.message_log or log_dir) / f"message_{worker_id}.log"


def start_process(network_id: str, worker_id: str, incarnation: str, args_id: str,
                  config: RedisConfig, options: WorkerOptions, supervise: bool, log_dir: Path
                  ) -> subprocess.Popen:
    """Start one local worker process (``incarnation``: the token of this start) running
    start arguments ``args_id``."""
    command = [sys.executable, "-m", "rush", "worker", "--network-id", network_id,
               "--worker-id", worker_id, "--incarnation", incarnation, "--start-args", args_id,
               *options.to_cli(include_logs=False)]
    if supervise:
        command += ["--supervisor-pid", str(os.getpid())]
    out_path = Path(options.output_log) / f"output_{worker_id}.log" if options.output_log else None
    # Linux sends the parent-death signal when the *thread* that started the child ends:
    # only ask for it from the main thread; elsewhere the worker's own check of its
    # parent (--supervisor-pid) ends it within a second of the controller's death
    death_signal = supervise and threading.current_thread() is threading.main_thread()
    with open_private_log(stderr_path(worker_id, options, log_dir)) as err, \
            (open_private_log(out_path) if out_path else open(os.devnull, "wb")) as out:
        return subprocess.Popen(
            command, env=_worker_env(config), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            # its own process group, so a kill takes down whatever the loop started too
            close_fds=True, start_new_session=True,
            # SIGTERM: the worker's handler takes down what its loop started, then itself
            preexec_fn=(lambda: die_with_parent(signal.SIGTERM)) if death_signal else None)


def open_private_log(path: Path) -> BinaryIO:
    """Open a log file for appending; made readable by its owner only (0600) when new."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")


def tail(path: Path, lines: int = _TAIL_LINES) -> str:
    """The last lines of a file ("" if it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            return "".join(deque(f.read().decode(errors="replace").splitlines(True), maxlen=lines))
    except OSError:
        return ""
