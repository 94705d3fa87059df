"""``rush demo``: the article's random search on Branin with local workers, live progress,
then the best tasks and ``worker_info``."""

from __future__ import annotations

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


class Progress:
    """A one-line progress bar (redrawn in place on a terminal, else a line per 10 %)."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out = total, out
        self.live = out.isatty()
        self.started = time.monotonic()
        self._last_decile = -1

    def show(self, done: int, best: float | None) -> None:
        done = min(done, self.total)
        fraction = done / self.total
        if not self.live and int(fraction * 10) == self._last_decile:
            return
        self._last_decile = int(fraction * 10)
        bar = "#" * int(fraction * 30)
        rate = done / max(time.monotonic() - self.started, 1e-9)
        text = (f"[{bar:<30}] {done}/{self.total} tasks  {rate:7.0f}/s  best y "
                f"{'-' if best is None else f'{best:.5f}'}")
        self.out.write(("\r" + text) if self.live else text + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.live:
            self.out.write("\n")


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
        _watch(controller, n_evaluations, out)
        _report(controller, out)
        return 0
    finally:
        controller.reset()
        controller.close()


def _watch(controller, n_evaluations: int, out: TextIO) -> None:
    progress = Progress(n_evaluations, out)
    best = None
    try:
        while True:
            running = controller.n_running_workers
            new = controller.fetch_new_tasks(fields=("ys",), timeout=0.2 if running else 0)
            if len(new):
                low = float(new["y"].min())
                best = low if best is None else min(best, low)
            progress.show(controller.n_finished_tasks, best)
            if not running:
                break
            controller.detect_lost_workers()
    finally:
        progress.close()


def _report(controller, out: TextIO) -> None:
    import pandas as pd

    finished = controller.fetch_finished_tasks()
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        print(f"\n{len(finished)} tasks finished; the best 5 (Branin minimum is "
              f"{BRANIN_MINIMUM}):", file=out)
        print(finished.nsmallest(5, "y")[["x1", "x2", "y", "worker_id"]].to_string(index=False),
              file=out)
        print("\nworker_info:", file=out)
        print(controller.worker_info.to_string(index=False), file=out)
