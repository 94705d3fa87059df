"""Helpers of the end-to-end worker tests: process liveness and worker state look-ups."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import pytest

from conftest import wait_until

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


def kill_at_random_until_settled(rsh, n: int, rng: random.Random, every: float,
                                 timeout: float) -> int:
    """Until all ``n`` tasks have ended: SIGKILL a random live local worker every
    ``every`` seconds and restart the lost ones, checking at each look that no task is in
    two states. Returns the number of kills."""
    last_kill = time.monotonic()
    kills = 0

    def settled() -> bool:
        nonlocal last_kill, kills
        snapshot = rsh.tasks_with_state()
        placed = [k for ks in snapshot.values() for k in ks]
        assert len(placed) == len(set(placed))  # never in two states at once
        if len(snapshot["finished"]) + len(snapshot["failed"]) == n:
            return True
        now = time.monotonic()
        if now - last_kill > every:
            registered = pids(rsh)
            alive = [w for w, p in rsh.processes.items()
                     if p.poll() is None and registered.get(w) == p.pid]
            if alive:
                os.kill(rsh.processes[rng.choice(alive)].pid, signal.SIGKILL)
                kills += 1
                last_kill = now
        rsh.detect_lost_workers(restart_local_workers=True)
        return False

    wait_until(settled, timeout, interval=0.05, message="every task to end")
    return kills
