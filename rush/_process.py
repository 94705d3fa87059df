"""Small helpers for the processes rush starts."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from typing import Collection

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (no-op elsewhere).

    Used as ``preexec_fn`` so a child never outlives a controller killed with SIGKILL.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first), from Linux's ``/proc``; [] elsewhere."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tids = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``, its process group when it leads one, and every process below it
    (but the calling process, when it is one of them).

    The process is stopped first so that it cannot start more children meanwhile.
    """
    _signal(pid, signal.SIGSTOP)
    below = [p for p in descendants(pid) if p != os.getpid()]
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
    except OSError:  # gone already
        pass
    for child in below:
        _signal(child, signal.SIGKILL)
    _signal(pid, signal.SIGKILL)


def kill_descendants(spare: Collection[int | None] = ()) -> None:
    """SIGKILL every process below this one but those in ``spare``."""
    for child in descendants(os.getpid()):
        if child not in spare:
            _signal(child, signal.SIGKILL)


def end_own_tree() -> None:
    """SIGKILL every process below this one, then this process (with its process group
    when it leads one). Never returns."""
    for child in descendants(os.getpid()):
        _signal(child, signal.SIGKILL)
    if os.getpgrp() == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
    raise SystemExit(137)  # unreachable: SIGKILL cannot be caught


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:  # gone already
        pass


def kill(process: subprocess.Popen) -> int:
    """SIGKILL ``process`` (if alive) with everything it started, and reap it."""
    if process.poll() is None:
        kill_tree(process.pid)
    return process.wait()


def reap(process: subprocess.Popen, timeout: float = 5.0) -> int | None:
    """Terminate ``process`` if alive, then wait for it (SIGKILL after ``timeout``)."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
