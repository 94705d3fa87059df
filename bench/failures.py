"""``python -m bench.failures``: how fast failures reach the user.

- **crash -> WARNING**: a local worker whose loop raises on its first task; the
  controller does what the quick start does (``wait_for_workers``, then
  ``fetch_new_tasks(timeout=1)`` in a loop). Measured from the raise (the timestamp of
  the crash record) and from ``start_local_workers`` to the WARNING record on logger
  ``rush`` (its ``created`` time).
- **SIGKILL of a controller -> lost**: a controller process whose 2 supervised workers
  each run a task is killed with SIGKILL; measured until ``worker_info`` shows both
  workers ``lost`` (polled every 2 ms by another controller).

Each on its own private ``redis-server``; medians and maxima of ``--reps`` repetitions.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import rush


def wl_raise_on_first_task(rush) -> None:
    """The quick start's loop with a typo: its first task raises NameError."""
    keys = rush.push_running_tasks(xss=[{"x1": 1.0}])
    rush.push_results(keys, yss=[{"y": branni(1.0)}])  # noqa: F821 - the typo


def wl_block(rush, seconds: float = 60.0) -> None:
    """Run one task for ``seconds`` (a worker that is busy when its controller dies)."""
    rush.push_running_tasks(xss=[{"x1": 1.0}])
    time.sleep(seconds)


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "crashed" in record.getMessage():
            self.records.append(record)


def crash_to_warning(config: rush.RedisConfig) -> tuple[float, float]:
    """One repetition: (seconds from the raise, seconds from the start) to the WARNING."""
    caught = _Warnings()
    logging.getLogger("rush").addHandler(caught)
    controller = rush.rsh(f"bench-crash-{uuid.uuid4().hex[:8]}", config=config)
    try:
        started = time.time()
        controller.start_local_workers(wl_raise_on_first_task, n_workers=1)
        controller.wait_for_workers(1, timeout=60)
        deadline = time.monotonic() + 60
        while not caught.records and time.monotonic() < deadline:
            controller.fetch_new_tasks(timeout=1)
        if not caught.records:
            raise RuntimeError("no WARNING within 60 s")
        told = caught.records[0].created
        crashed = controller.worker_errors["timestamp"].iloc[0].timestamp()
        return told - crashed, told - started
    finally:
        logging.getLogger("rush").removeHandler(caught)
        controller.reset()
        controller.close()


CONTROLLER = textwrap.dedent("""
    import sys, time
    import rush
    from bench.failures import wl_block

    controller = rush.rsh(sys.argv[1], config=rush.RedisConfig(url=sys.argv[2]))
    controller.start_local_workers(wl_block, n_workers=2)
    controller.wait_for_workers(2, timeout=60)
    while controller.n_running_tasks < 2:
        time.sleep(0.01)
    print("ready", flush=True)
    time.sleep(120)
""")


def sigkill_to_lost(config: rush.RedisConfig, folder: Path) -> float:
    """One repetition: seconds from SIGKILL of the controller to both workers lost."""
    network_id = f"bench-dead-{uuid.uuid4().hex[:8]}"
    script = folder / "controller.py"
    script.write_text(CONTROLLER)
    root = str(Path(__file__).resolve().parent.parent)
    process = subprocess.Popen([sys.executable, str(script), network_id, config.url],
                               stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               env=dict(os.environ, PYTHONPATH=root))
    watcher = rush.rsh(network_id, config=config)
    try:
        if process.stdout.readline() != b"ready\n":
            raise RuntimeError("the controller did not start its workers")
        killed = time.monotonic()
        process.send_signal(signal.SIGKILL)
        while set(watcher.worker_info["state"]) != {"lost"}:
            if time.monotonic() - killed > 60:
                raise RuntimeError("the workers were not lost within 60 s")
            time.sleep(0.002)  # polling the state is what is measured here
        return time.monotonic() - killed
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
        watcher.reset()
        watcher.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.failures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=10)
    reps = parser.parse_args(argv).reps
    with rush.RedisServer() as server, tempfile.TemporaryDirectory() as folder:
        crash = [crash_to_warning(server.config) for _ in range(reps)]
        dead = [sigkill_to_lost(server.config, Path(folder)) for _ in range(reps)]
    rows = [("loop raises -> WARNING at the controller", [c[0] for c in crash]),
            ("start_local_workers -> WARNING (worker start included)", [c[1] for c in crash]),
            ("SIGKILL of the controller -> lost in worker_info", dead)]
    print(f"{reps} repetitions each; seconds")
    print(f"{'':58}{'median':>8}{'max':>8}")
    for name, values in rows:
        print(f"{name:58}{statistics.median(values):8.3f}{max(values):8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
