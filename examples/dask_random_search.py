"""Example 5: the random search of example 1 on a Dask cluster.

The workers run as long-running tasks of Dask (``start_remote_workers``); here a
``LocalCluster`` on this machine, but an ``SSHCluster`` or a dask-jobqueue cluster
(SLURM, PBS, ...) works the same way, given a Redis every machine can reach. Each remote
worker runs a heartbeat process, so a worker whose Dask process dies is found lost.

    python examples/dask_random_search.py            # 4 Dask workers, 1,000 evaluations
    python examples/dask_random_search.py --quick    # 2 Dask workers, 50 evaluations

Needs the remote extra: ``pip install -e ".[remote]"``.
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import uuid

from dask.distributed import Client, LocalCluster

import rush


def branin(x1: float, x2: float) -> float:
    return ((x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def wl_random_search(rush, n_evaluations: int) -> None:
    while rush.n_finished_tasks < n_evaluations and not rush.terminated:
        xs = {"x1": random.uniform(-5, 10), "x2": random.uniform(0, 15)}
        keys = rush.push_running_tasks(xss=[xs])
        rush.finish_tasks(keys, yss=[{"y": branin(**xs)}])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 Dask workers, 50 evaluations")
    args = p.parse_args(argv)
    n_workers, n_evaluations = (2, 50) if args.quick else (4, 1_000)

    with LocalCluster(n_workers=n_workers, threads_per_worker=1, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        controller = rush.rsh(network=f"example-dask-{uuid.uuid4().hex[:8]}")
        try:
            controller.start_remote_workers(wl_random_search, n_workers=n_workers,
                                            executor=client, n_evaluations=n_evaluations)
            controller.wait_for_workers(n_workers, timeout=120)
            while controller.n_running_workers > 0:
                controller.fetch_new_tasks(timeout=1)
                controller.detect_lost_workers()
            results = controller.fetch_finished_tasks()
            print(f"{len(results)} evaluations on {results['worker_id'].nunique()} Dask workers")
            workers = controller.worker_info[["worker_id", "pid", "remote", "state"]]
            print(workers.to_string(index=False))
            print(results.nsmallest(3, "y")[["x1", "x2", "y"]].to_string(index=False))
        finally:
            controller.reset()
            controller.close()


if __name__ == "__main__":
    main()
