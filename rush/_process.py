"""Small helpers for the processes rush starts."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (no-op elsewhere).

    Used as ``preexec_fn`` so a child never outlives a controller killed with SIGKILL.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def kill(process: subprocess.Popen) -> int:
    """SIGKILL ``process`` (if alive) and reap it."""
    if process.poll() is None:
        process.kill()
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
