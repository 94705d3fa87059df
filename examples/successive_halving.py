"""Example 3: asynchronous successive halving (ASHA) as a plain rush loop.

Each worker draws a configuration and trains it on a growing budget (1, 3, 9, ...
epochs: one *rung* per budget). After each rung it reads from Redis the results that
every worker has reported at that rung so far, and carries on only if its result is in the
best 1/eta of them; otherwise it stops early and draws the next configuration. No
scheduler decides: each result is a rush task (``rung``, ``budget``, ``y``), and
``fetch_finished_tasks()`` reads only the results that are new since the last call.

    python examples/successive_halving.py            # 4 workers, 25 configurations each
    python examples/successive_halving.py --quick    # 2 workers, 6 configurations each
"""

from __future__ import annotations

import argparse
import math
import random
import time
import uuid

import rush


def branin(x1: float, x2: float) -> float:
    return ((x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def train(x1: float, x2: float, budget: int) -> float:
    """A stand-in for training: the loss approaches branin(x1, x2) as the budget grows,
    and a bigger budget takes longer."""
    time.sleep(0.002 * budget)
    return branin(x1, x2) + 30 * math.exp(-budget / 4)


def in_top_fraction(rush, rung: int, y: float, eta: int) -> bool:
    """Whether ``y`` is among the best 1/eta of every result reported at ``rung``."""
    done = rush.fetch_finished_tasks()
    at_rung = done.loc[done["rung"] == rung, "y"]
    k = max(1, len(at_rung) // eta)
    return y <= at_rung.nsmallest(k).max()


def wl_asha(rush, n_configs: int, n_rungs: int, eta: int) -> None:
    for _ in range(n_configs):
        if rush.terminated:
            return
        config = {"config": uuid.uuid4().hex[:8],
                  "x1": random.uniform(-5, 10), "x2": random.uniform(0, 15)}
        for rung in range(n_rungs):
            budget = eta**rung
            keys = rush.push_running_tasks([{**config, "rung": rung, "budget": budget}])
            y = train(config["x1"], config["x2"], budget)
            rush.finish_tasks(keys, [{"y": y}])
            if not in_top_fraction(rush, rung, y, eta):
                break  # stopped early: not promising enough at this rung


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 workers, 6 configurations each")
    args = p.parse_args(argv)
    n_workers, n_configs, n_rungs, eta = (2, 6, 3, 3) if args.quick else (4, 25, 4, 3)

    controller = rush.rsh(network=f"example-asha-{uuid.uuid4().hex[:8]}")
    try:
        controller.start_local_workers(wl_asha, n_workers=n_workers, n_configs=n_configs,
                                       n_rungs=n_rungs, eta=eta)
        controller.wait_for_workers(n_workers, timeout=60)
        while controller.n_running_workers > 0:
            controller.fetch_new_tasks(timeout=1)
            controller.detect_lost_workers()
        results = controller.fetch_finished_tasks()
        per_rung = results.groupby("rung")["config"].nunique()
        print("configurations per rung:", per_rung.to_dict())
        spent = results["budget"].sum()
        full = n_workers * n_configs * eta ** (n_rungs - 1)
        print(f"budget spent {spent} of {full} without early stopping")
        top = results[results["rung"] == n_rungs - 1]
        best = (top if len(top) else results).nsmallest(1, "y")
        print(best[["config", "x1", "x2", "rung", "y"]].to_string(index=False))
    finally:
        controller.reset()
        controller.close()


if __name__ == "__main__":
    main()
