"""Worker loops for the remote-worker tests (importable by Dask and pool processes)."""

import os
import signal
import threading


def wl_queue(rush):
    """Finish queued tasks until told to terminate."""
    while not rush.terminated:
        task = rush.pop_task(timeout=0.2)
        if task is not None:
            rush.finish_tasks(task["key"], [{"y": task["xs"]["x"] * 2, "pid": os.getpid()}])


def wl_pop_then_die(rush):
    """Take one queued task, then die like a segfault."""
    rush.pop_task(timeout=10)
    os.kill(os.getpid(), signal.SIGKILL)


def wl_hold(rush):
    """Take one queued task and hold it forever, deaf to terminate (only a kill stops it)."""
    rush.pop_task(timeout=10)
    while True:
        threading.Event().wait(0.05)
