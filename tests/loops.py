"""Worker loops for the end-to-end worker tests.

They live in an importable module so the worker processes import them by reference
(the controller passes its ``sys.path`` to local workers as ``PYTHONPATH``). Each loop
gets a ``RushWorker`` as its first argument. Loops that block wait on a file the test
creates, with a deadline, so a forgotten worker never runs forever.
"""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import sys
import time
from pathlib import Path

#: How long a blocking loop waits for its release file before giving up.
BLOCK_SECONDS = 60.0


def branin(x1: float, x2: float) -> float:
    """The Branin function of the article."""
    return ((x2 - 5.1 / (4 * math.pi ** 2) * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def _one_evaluation(rush) -> None:
    xs = {"x1": random.uniform(-5, 10), "x2": random.uniform(0, 15)}
    keys = rush.push_running_tasks(xss=[xs])
    rush.push_results(keys, yss=[{"y": branin(xs["x1"], xs["x2"])}])


def _wait_for(path: str | os.PathLike, seconds: float = BLOCK_SECONDS) -> bool:
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)  # the test creates the file; nothing to block on instead
    return True


def wl_random_search(rush, n_evaluations: int = 100) -> None:
    """The article's loop: random search on Branin until 100 tasks are finished."""
    while rush.n_finished_tasks < n_evaluations:
        _one_evaluation(rush)


def wl_random_search_terminate(rush, pause: float = 0.0) -> None:
    """The article's loop that runs until the controller terminates it."""
    while not rush.terminated:
        _one_evaluation(rush)
        if pause:
            time.sleep(pause)  # keeps a test's many workers from hogging a small machine


def wl_failed_worker(rush) -> None:
    """The article's simulated segfault: the worker SIGKILLs itself."""
    os.kill(os.getpid(), signal.SIGKILL)


def wl_crash_mid_task(rush) -> None:
    """Start a task, then die with it running."""
    rush.push_running_tasks(xss=[{"x1": 1.0, "x2": 2.0}])
    sys.stderr.write(f"last words of {rush.worker_id}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def wl_crash_once(rush, marker_dir: str, pause: float = 0.01) -> None:
    """SIGKILL itself on its first run (marker file per worker id); afterwards random
    search until terminated."""
    marker = Path(marker_dir) / rush.worker_id
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    wl_random_search_terminate(rush, pause=pause)


def wl_block_in_task(rush, release: str) -> None:
    """Push one running task and block in it until ``release`` exists; then finish it."""
    keys = rush.push_running_tasks(xss=[{"x1": 0.0, "x2": 0.0}])
    if _wait_for(release):
        rush.push_results(keys, yss=[{"y": 0.0}])


def wl_pop_and_block(rush, release: str) -> None:
    """Work the queue; each task blocks until ``release`` exists (the centralized pattern)."""
    while not rush.terminated:
        task = rush.pop_task(timeout=0.5)
        if task is None:
            continue
        if not _wait_for(release):
            return
        xs = task["xs"]
        rush.push_results(task["key"], yss=[{"y": branin(xs["x1"], xs["x2"])}])


def wl_log_message(rush) -> None:
    """The article's log loop."""
    lg = logging.getLogger("rush")
    lg.info("This is an info message from worker %s", rush.worker_id)


def wl_log_many(rush, n: int = 5) -> None:
    """Several info records (for a buffered handler)."""
    lg = logging.getLogger("rush")
    for i in range(n):
        lg.info("record %d of %s", i, rush.worker_id)


def wl_uses_global(rush) -> None:
    """Reads ``OFFSET``, a name this module never defines: it comes from ``globals``."""
    rush.push_finished_tasks(xss=[{"x1": 0.0}], yss=[{"y": OFFSET}])  # noqa: F821


def wl_uses_package(rush) -> None:
    """Reports whether the ``packages`` of the start arguments were imported."""
    rush.push_finished_tasks(xss=[{"x1": 0.0}],
                             yss=[{"y": float("loop_package" in sys.modules)}])


def wl_stderr_flood(rush, megabytes: int = 8) -> None:
    """Write megabytes to stderr, then finish one task."""
    line = "x" * 1023 + "\n"
    for _ in range(megabytes * 1024):
        sys.stderr.write(line)
    sys.stderr.flush()
    keys = rush.push_running_tasks(xss=[{"x1": 1.0}])
    rush.push_results(keys, yss=[{"y": 1.0}])


def wl_sleep_until_terminated(rush, pause: float = 0.05) -> None:
    """Idle until terminated (a worker that stays alive and cheap)."""
    while not rush.terminated:
        time.sleep(pause)  # the loop's own pacing, not a test waiting for state


def wl_big_kwargs(rush, payload: bytes) -> None:
    """Records the size of a large kwarg it received."""
    rush.push_finished_tasks(xss=[{"x1": 0.0}], yss=[{"y": float(len(payload))}])


def wl_print_both(rush) -> None:
    """One line to stdout, one to stderr."""
    print(f"stdout of {rush.worker_id}", flush=True)
    print(f"stderr of {rush.worker_id}", file=sys.stderr, flush=True)


def wl_raise_mid_task(rush) -> None:
    """Start a task, then raise out of the loop."""
    rush.push_running_tasks(xss=[{"x1": 1.0}])
    _ = 1 / 0  # the loop crashes mid-task


def wl_log_custom_logger(rush) -> None:
    """A debug record on a logger of the user's own package."""
    logging.getLogger("mypkg.search").debug("debug from %s", rush.worker_id)
    logging.getLogger("mypkg.search").error("error from %s", rush.worker_id)


def wl_log_then_block(rush, release: str) -> None:
    """Three info records, then a running task that blocks until ``release`` exists."""
    for i in range(3):
        logging.getLogger("rush").info("buffered %d", i)
    wl_block_in_task(rush, release)


def wl_report_config(rush) -> None:
    """Reports the ``retry_seconds`` of the config this worker connected with."""
    rush.push_finished_tasks(xss=[{"x1": 0.0}], yss=[{"retry_seconds": rush.config.retry_seconds}])


def wl_spawn_child(rush, pid_dir: str) -> None:
    """Start a ``sleep 300`` child (its pid in ``pid_dir/<worker_id>``), then idle."""
    import subprocess

    child = subprocess.Popen(["sleep", "300"])
    (Path(pid_dir) / rush.worker_id).write_text(str(child.pid))
    wl_sleep_until_terminated(rush)


def wl_queue(rush) -> None:
    """The centralized pattern: pop tasks, square x, until the controller terminates."""
    while not rush.terminated:
        task = rush.pop_task(timeout=0.2)
        if task is not None:
            rush.finish_tasks(task["key"], [{"y": task["xs"]["x"] ** 2}])


def wl_count_up(rush, n: int) -> None:
    """The decentralized pattern: create and finish tasks until the network has ``n``."""
    i = 0
    while rush.n_finished_tasks < n:
        keys = rush.push_running_tasks([{"x": i}])
        rush.finish_tasks(keys, [{"y": i * i}])
        i += 1


def wl_slow_exit_on_sigterm(rush, pause: float = 0.05) -> None:
    """Random search that, told to stop with SIGTERM, takes its time to leave."""
    signal.signal(signal.SIGTERM, lambda *_: time.sleep(3))
    wl_random_search_terminate(rush, pause=pause)

def evaluate(rush, task: dict, log_dir: str | None = None) -> None:
    """Evaluate one popped task of the task-control tests, as its ``xs`` says: ``crash``
    (SIGKILL this worker), ``raise`` (the loop raises), ``hang`` (block for good), ``sleep``
    seconds, else finish. A crash first appends a line to ``<log_dir>/crashes``."""
    xs = task["xs"]
    if xs.get("crash") or xs.get("raise"):
        if log_dir is not None:
            with open(os.path.join(log_dir, "crashes"), "a") as f:
                f.write(f"{rush.worker_id} {task['key']}\n")
        if xs.get("crash"):
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError(f"poison task {xs}")
    if xs.get("hang"):
        time.sleep(BLOCK_SECONDS)  # a task that never ends on its own
    if xs.get("sleep"):
        time.sleep(xs["sleep"])  # the task's own work
    rush.finish_tasks(task["key"], yss=[{"y": xs.get("x", 0), "by": rush.worker_id}])


def wl_task_queue(rush, log_dir: str | None = None) -> None:
    """A queue loop of the task-control tests: pop and evaluate until the queue runs dry
    after ``terminate_workers=True``, or until terminated."""
    while not rush.terminated_on_idle and not rush.terminated:
        task = rush.pop_task(timeout=0.5)
        if task is not None:
            evaluate(rush, task, log_dir)


def wl_seeded_queue(rush) -> None:
    """Evaluate each task with its seed: draws of ``random`` and numpy's global generator."""
    import numpy as np

    import rush as rush_package

    while not rush.terminated_on_idle:
        task = rush.pop_task(timeout=0.5)
        if task is None:
            continue
        with rush_package.task_seed(task["seed"]):
            y = random.random() + float(np.random.normal())
        time.sleep(task["xs"].get("sleep", 0))  # the task's own work
        rush.finish_tasks(task["key"], yss=[{"y": y}])


def wl_typo_on_first_task(rush) -> None:
    """The quick start with a typo: the first task raises NameError."""
    while rush.n_finished_tasks < 100:
        xs = {"x1": random.uniform(-5, 10), "x2": random.uniform(0, 15)}
        keys = rush.push_running_tasks(xss=[xs])
        ys = {"y": branni(xs["x1"], xs["x2"])}  # noqa: F821 - the typo this loop is about
        rush.push_results(keys, yss=[ys])


def wl_pop_and_raise(rush) -> None:
    """Take a queued task, then raise."""
    task = rush.pop_task(timeout=5)
    raise ValueError(f"cannot evaluate {task['xs'] if task else None}")


def wl_pop_and_return(rush) -> None:
    """Take a queued task, then leave the loop without finishing or failing it."""
    rush.pop_task(timeout=5)


def wl_reports_its_own_error(rush) -> None:
    """Catch the error of a task and report it with fail_tasks: not a crash."""
    keys = rush.push_running_tasks(xss=[{"x1": 0.0}])
    try:
        _ = 1 / 0
    except ZeroDivisionError as e:
        rush.fail_tasks(keys, conditions=[{"message": f"bad input: {e}"}])


def wl_raise_when_released(rush, release: str) -> None:
    """Run a task until ``release`` exists, then raise in it."""
    rush.push_running_tasks(xss=[{"x1": 0.0}])
    _wait_for(release)
    raise RuntimeError("released into an error")


def wl_push_label(rush, label: str) -> None:
    """One finished task whose output names the loop's ``label`` (which start arguments ran)."""
    rush.push_finished_tasks(xss=[{"x": 0}], yss=[{"label": label}])


def wl_branin_logged(rush, pause: float = 0.02, log_every: int = 10) -> None:
    """Random search on Branin until terminated, paced, with an info record every
    ``log_every`` evaluations (for the dashboard's log tail)."""
    lg = logging.getLogger("rush")
    i = 0
    while not rush.terminated:
        xs = {"x1": random.uniform(-5, 10), "x2": random.uniform(0, 15)}
        keys = rush.push_running_tasks(xss=[xs])
        y = branin(xs["x1"], xs["x2"])
        rush.push_results(keys, yss=[{"y": y}])
        i += 1
        if i % log_every == 0:
            lg.info("evaluation %d: y = %.4f", i, y)
        time.sleep(pause)  # the loop's own pacing: a steady, watchable stream of results


def wl_step_queue(rush) -> None:
    """The queue loop in one round trip per task: finish this task and pop the next."""
    task = None
    while not rush.terminated_on_idle and not rush.terminated:
        task = rush.pop_task(timeout=0.5) if task is None else task
        while task is not None:
            y = {"y": task["xs"]["x"] ** 2, "by": rush.worker_id}
            task = rush.finish_and_pop_task(task["key"], [y], timeout=0.5)


def wl_step_count_up(rush, n: int) -> None:
    """The decentralized loop in one round trip per task: finish this task and create the
    next, until the network has ``n`` finished tasks."""
    i = 0
    keys = rush.push_running_tasks([{"x": i}])
    while rush.n_finished_tasks < n:
        i += 1
        keys = rush.finish_and_push_running_tasks(keys, [{"y": (i - 1) ** 2}], [{"x": i}])
    rush.finish_tasks(keys, [{"y": i * i}])
