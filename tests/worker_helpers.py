"""Helpers of the end-to-end worker tests: process liveness and worker state look-ups."""

from __future__ import annotations

import os
import subprocess
from typing import Sequence

#: Deadline for anything that involves starting or stopping processes on a busy machine.
SLOW = 30.0


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a live process; a zombie (exited, not yet reaped) is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # the state follows the parenthesized command name, which may itself hold spaces
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux ``/proc/<pid>/task/<tid>/children``)."""
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except FileNotFoundError:
        pass
    return out


def states(rsh) -> dict[str, str]:
    """worker_id -> state, from ``worker_info``."""
    info = rsh.worker_info
    return dict(zip(info["worker_id"], info["state"]))


def pids(rsh) -> dict[str, int]:
    """worker_id -> pid, from ``worker_info``."""
    info = rsh.worker_info
    return dict(zip(info["worker_id"], info["pid"]))


def all_exited(rsh, worker_ids: Sequence[str]) -> bool:
    """Whether the local processes of these workers have exited (reaping them)."""
    return all(rsh.processes[w].poll() is not None for w in worker_ids)


def reap_shell(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Kill and reap a process a test started itself."""
    if process.poll() is None:
        process.kill()
    process.wait(timeout)
