"""Example 4: a simulation campaign on the task queue, with seeds, retries and timeouts.

A controller queues one task per (scenario, replicate) with a reproducible seed; workers
pop them and run a small Monte Carlo simulation (a random walk that must reach a
barrier), seeded with ``rush.task_seed``. Some simulations crash the process that runs
them, or hang: ``max_retries`` sends the task of a crashed worker back to the queue,
``timeouts`` stops a task that runs too long (its worker is killed, the task is retried
or fails), and ``detect_lost_workers(restart_local_workers=True)`` brings the workers
back. Every task ends finished or failed, exactly once; and as each simulation draws its
random numbers from its own seed, its result does not depend on which worker ran it, or
on how many workers there were.

    python examples/simulation_campaign.py            # 4 workers, 200 simulations
    python examples/simulation_campaign.py --quick    # 2 workers, 40 simulations
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import time
import uuid

import rush
from rush import task_seed

#: Scenarios: the barrier a walk must reach, and how it misbehaves now and then.
SCENARIOS = {"near": 5, "middle": 10, "far": 20}


def simulate(barrier: int, steps: int = 2_000) -> int:
    """Steps a +-1 random walk takes to reach ``barrier`` (``steps`` at most)."""
    position = 0
    for step in range(1, steps + 1):
        position += random.choice((-1, 1))
        if abs(position) >= barrier:
            return step
    return steps


def wl_campaign(rush) -> None:
    """Pop simulations until the campaign says the queue is done."""
    while not rush.terminated_on_idle and not rush.terminated:
        task = rush.pop_task(timeout=0.5)
        if task is None:
            continue
        xs = task["xs"]
        if xs.get("crash") and random.random() < 0.5:
            os.kill(os.getpid(), signal.SIGKILL)  # a segfault in native code, say
        if xs.get("hang"):
            time.sleep(3600)  # a simulation that never converges: its timeout ends it
        with task_seed(task["seed"]):  # not rush.task_seed: here `rush` is the worker
            steps = simulate(SCENARIOS[xs["scenario"]])
        rush.finish_tasks(task["key"], [{"steps": steps}])


def tasks(n: int) -> list[dict]:
    """``n`` simulations over the scenarios; a few crash (sometimes) or hang."""
    names = list(SCENARIOS)
    out = []
    for i in range(n):
        xs = {"scenario": names[i % len(names)], "replicate": i // len(names)}
        if i % 13 == 5:
            xs["crash"] = True
        if i == 7:
            xs["hang"] = True
        out.append(xs)
    return out


def run(n_workers: int, n_tasks: int, seed: int = 42, timeout: float = 2.0) -> "object":
    """Run the campaign on a fresh network; returns the finished tasks."""
    controller = rush.rsh(network=f"example-campaign-{uuid.uuid4().hex[:8]}", seed=seed)
    try:
        keys = controller.push_tasks(tasks(n_tasks), timeouts=timeout, max_retries=2,
                                     terminate_workers=True)
        controller.start_local_workers(wl_campaign, n_workers=n_workers)
        controller.wait_for_tasks(keys, detect_lost_workers=True, timeout=300)
        while controller.n_queued_tasks or controller.n_running_tasks:
            # restarts bring back the workers a crash or a timeout took down
            controller.detect_lost_workers(restart_local_workers=True)
            controller.wait_for_tasks(keys, detect_lost_workers=True, timeout=300)
        done = controller.fetch_finished_tasks(fields=["xs", "ys", "seed", "attempts"])
        failed = controller.fetch_failed_tasks(fields=["xs", "condition", "attempts"])
        print(f"{len(done)} simulations finished, {len(failed)} failed, on {n_workers} workers")
        print(done.groupby("scenario")["steps"].describe()[["count", "mean", "50%"]]
              .to_string())
        for message in failed["condition"].map(lambda c: c["message"]):
            print("failed:", message)
        return done
    finally:
        controller.reset()
        controller.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 workers, 40 simulations")
    args = p.parse_args(argv)
    n_workers, n_tasks = (2, 40) if args.quick else (4, 200)
    run(n_workers, n_tasks)


if __name__ == "__main__":
    main()
