"""``rush demo``: the article's random search on Branin with local workers, live progress,
then the best tasks and ``worker_info``."""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
import uuid
from typing import TextIO

from .config import RedisConfig
from .local_redis import LocalServer

#: Global minimum of the Branin function (at three points, e.g. (pi, 2.275)).
BRANIN_MINIMUM = 0.397887


def branin(x1: float, x2: float) -> float:
    """The Branin test function on [-5, 10] x [0, 15]."""
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def wl_random_search(rush, n_evaluations: int = 100) -> None:
    """A worker loop: evaluate random points until the network has ``n_evaluations``
    results or the controller says terminate."""
    while not rush.terminated and rush.n_finished_tasks < n_evaluations:
        xs = {"x1": random.uniform(-5, 10), "x2": random.uniform(0, 15)}
        keys = rush.push_running_tasks(xss=[xs])
        rush.push_results(keys, yss=[{"y": branin(xs["x1"], xs["x2"])}])


def run_demo(n_workers: int = 4, n_evaluations: int = 2000, config: RedisConfig | None = None,
             out: TextIO = sys.stdout) -> int:
    """Run the demo; returns the exit code. It deletes its own network at the end, and
    nothing else: on the local rush server, the other networks stay."""
    from . import rsh
    from .plan import resolve_config

    config = resolve_config(config)
    local = LocalServer()
    on_local = config.unix_socket_path == str(local.socket)
    controller = rsh(f"demo-{uuid.uuid4().hex[:8]}", config=config)
    print(f"rush demo: random search on Branin with {n_workers} local workers, "
          f"{n_evaluations} evaluations", file=out)
    print(f"Redis: {config.redacted_url}"
          f"{f' (the local rush server, data in {local.data_dir})' if on_local else ''}, "
          f"network {controller.network_id}", file=out)
    try:
        started = time.monotonic()
        controller.start_local_workers(wl_random_search, n_workers=n_workers,
                                       n_evaluations=n_evaluations)
        controller.wait_for_workers(n_workers, timeout=60)
        print(f"{n_workers} workers up in {time.monotonic() - started:.2f} s", file=out)
        searching = time.monotonic()
        _watch(controller, n_evaluations, out)
        _report(controller, time.monotonic() - searching, out)
        return 0
    finally:
        controller.reset()
        controller.close()


def _watch(controller, n_evaluations: int, out: TextIO) -> None:
    """Wait until the workers are done, with a live bar on a terminal (none when the output
    is captured: a file gets the final summary only)."""
    bar = controller.progress(total=n_evaluations, objective="y", file=out) if out.isatty() \
        else contextlib.nullcontext()
    with bar:
        while controller.n_running_workers:
            controller.fetch_new_tasks(fields=(), timeout=0.5)  # wakes up on new results
            controller.detect_lost_workers()


def _report(controller, seconds: float, out: TextIO) -> None:
    import pandas as pd

    finished = controller.fetch_finished_tasks()
    if not len(finished):
        print(f"no task finished in {seconds:.2f} s", file=out)
        return
    print(f"{len(finished)} tasks finished in {seconds:.2f} s "
          f"({len(finished) / max(seconds, 1e-9):.0f}/s), best y {finished['y'].min():.5f}",
          file=out)
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        print(f"\nthe best 5 (Branin minimum is {BRANIN_MINIMUM}):", file=out)
        print(finished.nsmallest(5, "y")[["x1", "x2", "y", "worker_id"]].to_string(index=False),
              file=out)
        print("\nworker_info:", file=out)
        print(controller.worker_info.to_string(index=False), file=out)
