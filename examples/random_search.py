"""Example 1: the article's random search, decentralized.

Each worker runs the same loop: draw a point, mark it running in Redis, evaluate the
Branin function, store the result. No scheduler hands out work: every worker decides for
itself and stops once the network holds enough results (workers that check at the same
moment may each add one more: for exactly n evaluations, queue n tasks and let the
workers ``pop_task()`` them, as ``rush.optuna`` does with its trial slots).

    python examples/random_search.py            # 4 workers, 1,000 evaluations
    python examples/random_search.py --quick    # 2 workers, 50 evaluations

Redis: ``$RUSH_REDIS_URL``, else 127.0.0.1:6379, else the local rush server.
"""

from __future__ import annotations

import argparse
import math
import random
import uuid

import rush


def branin(x1: float, x2: float) -> float:
    return ((x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def wl_random_search(rush, n_evaluations: int) -> None:
    """The worker loop: its first argument is the worker's view of the network."""
    while rush.n_finished_tasks < n_evaluations and not rush.terminated:
        xs = {"x1": random.uniform(-5, 10), "x2": random.uniform(0, 15)}
        keys = rush.push_running_tasks(xss=[xs])
        rush.finish_tasks(keys, yss=[{"y": branin(**xs)}])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 workers, 50 evaluations")
    args = p.parse_args(argv)
    n_workers, n_evaluations = (2, 50) if args.quick else (4, 1_000)

    controller = rush.rsh(network=f"example-random-search-{uuid.uuid4().hex[:8]}")
    try:
        controller.start_local_workers(wl_random_search, n_workers=n_workers,
                                       n_evaluations=n_evaluations)
        controller.wait_for_workers(n_workers, timeout=60)
        while controller.n_running_workers > 0:      # each loop ends once enough results exist
            controller.fetch_new_tasks(timeout=1)    # blocks until new results arrive
            controller.detect_lost_workers()         # a crashed worker must not block the wait
        results = controller.fetch_finished_tasks()
        print(f"{len(results)} evaluations by {results['worker_id'].nunique()} worker(s) "
              f"on network {controller.network_id}")
        print(results.nsmallest(3, "y")[["x1", "x2", "y", "worker_id"]].to_string(index=False))
    finally:
        controller.reset()                           # kill the workers, delete the network
        controller.close()


if __name__ == "__main__":
    main()
