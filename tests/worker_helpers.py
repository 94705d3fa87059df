"""Helpers of the end-to-end worker tests: process liveness and worker state look-ups."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import pytest

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


TESTS = Path(__file__).resolve().parent


@contextmanager
def controller_process(script: Path, args: Sequence[str], n_workers: int = 2
                       ) -> Iterator[tuple[subprocess.Popen, list[int]]]:
    """A controller in its own process (``script``, which prints the pids of the
    ``n_workers`` it started on one line): yields the process and the worker pids; kills
    whatever is left of them afterwards, even when the test fails."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    process = subprocess.Popen([sys.executable, str(script), *args], env=env,
                               stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    worker_pids: list[int] = []
    try:
        ready, _, _ = select.select([process.stdout], [], [], SLOW)
        if not ready:
            pytest.fail("the controller did not start its workers")
        assert process.stdout is not None
        worker_pids = [int(p) for p in process.stdout.readline().split()]
        assert len(worker_pids) == n_workers
        yield process, worker_pids
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdout, process.stdin):
            if stream is not None:
                stream.close()
        for pid in worker_pids:  # never leave an orphan behind
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
