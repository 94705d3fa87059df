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


def host_identity() -> str:
    """What tells this host's processes apart from any other's: the kernel's boot id and
    this process's pid namespace ("" where ``/proc`` cannot say, i.e. not Linux).

    A hostname would not do: containers and cluster nodes may share one, and a pid is
    only meaningful within one pid namespace of one boot.
    """
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot_id = f.read().strip()
        return f"{boot_id}:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), ``None`` if it does not exist
    or has exited (a zombie); Linux only (``None`` elsewhere)."""
    try:  # os.open/os.read: a third of open()'s cost, and a sweep reads one per worker
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        try:
            stat = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError:
        return None
    # the fields after the command name, which is in parentheses and may hold anything
    fields = stat.rsplit(b")", 1)[1].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])  # field 22 of proc(5), counted from the state (field 3)


def process_gone(pid: int, started: int | None) -> bool:
    """True when process ``pid``, which started at ``started`` (``process_start``), no
    longer runs: it is absent, a zombie, or its pid now belongs to a newer process."""
    now = process_start(pid)
    return now is None or (started is not None and now != started)
