"""``python -m bench``: run the workloads, print a table, optionally write JSON.

    python -m bench                  # full run (several minutes)
    python -m bench --quick          # under 2 minutes
    python -m bench --smoke          # tiny sizes: checks the harness, not performance
    python -m bench --json out.json --only w1,w2
    python -m bench --only optuna --optuna-quality   # + TPE quality, rush.optuna vs n_jobs
    python -m bench --only dashboard                 # the dashboard: page load, updates, Redis CPU
    python -m bench --only w7,w8                     # 1,000 workers; 1,000,000 tasks
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import redis

import rush
from bench import env, report, workloads
from bench.timing import ratio

#: Sizes per mode: W1/W2 tasks per repetition, repetitions, W3 tasks, W4 tasks, peers;
#: rush.optuna (O1): trials per run, repetitions, trials held before the sync figures,
#: and for --optuna-quality trials per problem and seeds.
SIZES: dict[str, dict[str, Any]] = {
    "full": dict(n=10_000, reps=9, w3_n=100_000, w3_reps=5, w3_incr=1_000, w4_n=20_000,
                 w4_workers=[1, 2, 4, 8], optuna=1_000, rq_simple=2_000, rq_fork=300,
                 dask=5_000, w6_n=3_000, w6_reps=3, w6_held=10_000,
                 quality={"branin": 100, "hartmann6": 200}, quality_seeds=10,
                 dash_n=100_000, dash_reps=5, dash_incr=1_000, dash_update_reps=9,
                 dash_w4_n=40_000, dash_w4_reps=5,
                 w7_n=1_000, w7_window=5.0, w7_reps=9, w8_n=1_000_000, w8_reps=2),
    "quick": dict(n=2_000, reps=5, w3_n=100_000, w3_reps=3, w3_incr=1_000, w4_n=5_000,
                  w4_workers=[1, 2, 4, 8], optuna=200, rq_simple=500, rq_fork=60, dask=1_000,
                  w6_n=1_000, w6_reps=1, w6_held=10_000,
                  quality={"branin": 50, "hartmann6": 100}, quality_seeds=10,
                  dash_n=100_000, dash_reps=3, dash_incr=1_000, dash_update_reps=5,
                  dash_w4_n=20_000, dash_w4_reps=4,
                  w7_n=1_000, w7_window=3.0, w7_reps=5, w8_n=200_000, w8_reps=1),
    "smoke": dict(n=50, reps=2, w3_n=500, w3_reps=2, w3_incr=50, w4_n=200,
                  w4_workers=[1, 2], optuna=10, rq_simple=20, rq_fork=4, dask=20,
                  w6_n=20, w6_reps=1, w6_held=100,
                  quality={"branin": 6, "hartmann6": 6}, quality_seeds=2,
                  dash_n=2_000, dash_reps=1, dash_incr=100, dash_update_reps=2,
                  dash_w4_n=300, dash_w4_reps=1,
                  w7_n=20, w7_window=0.3, w7_reps=2, w8_n=2_000, w8_reps=1),
}
WORKLOADS = ("w1", "w2", "w6", "w3", "w4", "w5", "optuna", "dashboard", "w7", "w8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller sizes, under 2 minutes")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes (for the smoke test)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--only", default=",".join(WORKLOADS),
                   help="comma-separated workloads to run (default: all)")
    p.add_argument("--n", type=int, help="W1/W2 tasks per repetition")
    p.add_argument("--reps", type=int, help="W1/W2 repetitions")
    p.add_argument("--w3-n", type=int, help="W3 finished tasks (default 100,000)")
    p.add_argument("--w3-reps", type=int, help="W3 repetitions")
    p.add_argument("--w4-n", type=int, help="W4 tasks per worker count")
    p.add_argument("--w4-workers", help="W4 worker counts, e.g. 1,2,4,8")
    p.add_argument("--peers-scale", type=float, default=1.0,
                   help="multiply every peer's N by this")
    p.add_argument("--core", type=int, default=None,
                   help="core W1-W3 are pinned to (default: the last one)")
    p.add_argument("--no-pin", action="store_true", help="do not pin W1-W3")
    p.add_argument("--unpinned", action="store_true",
                   help="also run W1 unpinned (the scheduler's placement)")
    p.add_argument("--optuna-quality", action="store_true",
                   help="also compare TPE's results: rush.optuna vs Optuna n_jobs (slow)")
    return p.parse_args(argv)


def sizes_for(args: argparse.Namespace) -> dict[str, Any]:
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    s = dict(SIZES[mode], mode=mode)
    for name in ("n", "reps", "w3_n", "w3_reps", "w4_n"):
        if getattr(args, name) is not None:
            s[name] = getattr(args, name)
    if args.w4_workers:
        s["w4_workers"] = [int(x) for x in args.w4_workers.split(",") if x.strip()]
    for peer in ("optuna", "rq_simple", "rq_fork", "dask"):
        s[peer] = max(2, int(s[peer] * args.peers_scale))
    return s


def peer_ratios(r: dict[str, Any]) -> None:
    """Each peer next to its rush counterpart: Optuna (each process makes its own trial)
    against W1, the queues against W2, 2-process peers also against W4 with 2 workers."""
    w4_2_us = 1e6 / r["w4_tasks_per_s_2"] if r.get("w4_tasks_per_s_2") else None
    pairs = [("peer_optuna_1p", "w1_rush_us", "vs_w1"), ("peer_optuna_2p", "w1_rush_us", "vs_w1"),
             ("peer_rq_simple", "w2_rush_us", "vs_w2"), ("peer_rq_burst", "w2_rush_us", "vs_w2"),
             ("peer_dask", "w2_rush_us", "vs_w2")]
    for peer, ref, suffix in pairs:
        if f"{peer}_us" in r and ref in r:
            r[f"{peer}_ratio_{suffix}"] = ratio(r[f"{peer}_us"], r[ref])
    for peer in ("peer_optuna_2p", "peer_dask"):
        if f"{peer}_us" in r and w4_2_us:
            r[f"{peer}_ratio_vs_w4_2"] = ratio(r[f"{peer}_us"], w4_2_us)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    s = sizes_for(args)
    only = {w.strip() for w in args.only.split(",")}
    unknown = only - set(WORKLOADS)
    if unknown:
        print(f"unknown workloads: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    started = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    for var in ("RUSH_REDIS_URL", "REDIS_URL"):  # never fall back to a shared server
        os.environ.pop(var, None)
    results: dict[str, Any] = {}
    samples: dict[str, Any] = {}
    meta = env.machine_info()
    meta.update(mode=s["mode"], sizes={k: v for k, v in s.items() if k != "mode"})

    def keep(r: dict[str, Any]) -> None:
        for k, v in r.items():
            (samples if k.startswith("_samples_") else results)[k.removeprefix("_samples_")] = v

    with rush.RedisServer() as server:
        config = server.config
        info = redis.Redis(host=config.host, port=config.port).info("server")
        meta["redis_server"] = info.get("redis_version")
        placement = env.Placement(server.process.pid)
        core = None if args.no_pin else (args.core if args.core is not None else env.default_core())
        if core is not None:
            placement.pin(core)
        meta["placement"] = placement.describe()
        log(f"redis-server {meta['redis_server']} on port {config.port}; {meta['placement']}")
        results["ping_rtt_us"] = env.ping_rtt_us(config)
        if "w1" in only:
            log(f"W1: {s['reps']} x {s['n']} tasks, rush / bare alternating")
            keep(workloads.w1(config, s["n"], s["reps"], server_pid=server.process.pid))
        if "w2" in only:
            log(f"W2: {s['reps']} x {s['n']} tasks, rush / bare alternating")
            keep(workloads.w2(config, s["n"], s["reps"], server_pid=server.process.pid))
        if "w6" in only:
            from bench import redis_cpu

            log(f"W6: redis-server CPU per task; W1/W2 steps: {s['reps']} x {s['n']} tasks")
            keep(redis_cpu.run(config, s["n"], s["reps"]))
        if "w3" in only:
            log(f"W3: {s['w3_n']} finished tasks, {s['w3_reps']} reps")
            keep(workloads.w3(config, s["w3_n"], s["w3_reps"], s["w3_incr"]))
        if "w8" in only:
            from bench import million

            log(f"W8: {s['w8_n']:,} finished tasks: fetch, its memory, reset")
            keep(million.run(config, s["w8_n"], s["w8_reps"], log=log))
        placement.unpin()
        if args.unpinned:
            results["ping_rtt_unpinned_us"] = env.ping_rtt_us(config)
            if "w1" in only:
                log("W1 unpinned")
                keep(workloads.w1(config, s["n"], s["reps"], prefix="w1u",
                                  pipeline_variant=False, server_pid=server.process.pid))
        if "w5" in only:
            from bench import peers

            log("W5 peers")
            keep(peers.run(config, placement, core, s, log=log))
            placement.unpin()
        if "w4" in only:
            from bench import scaling

            log(f"W4: workers {s['w4_workers']}, {s['w4_n']} tasks each")
            keep(scaling.w4(config, server.process.pid, s["w4_workers"], s["w4_n"]))
        if "optuna" in only or args.optuna_quality:
            from bench.peers import installed

            if not installed("optuna"):
                results["optuna_skipped"] = "optuna is not installed"
            if installed("optuna") and "optuna" in only:
                from bench import optuna_overhead

                log(f"O1 rush.optuna vs Optuna's journal storage: {s['w6_n']} trials")
                keep(optuna_overhead.run(config, s["w6_n"], s["w6_reps"], s["w6_held"], log=log))
            if installed("optuna") and args.optuna_quality:
                from bench import optuna_quality

                log("TPE quality, rush.optuna vs Optuna n_jobs=2")
                keep(optuna_quality.run(config, s["quality"], s["quality_seeds"], log=log))
        if "dashboard" in only:
            from bench import dashboard

            keep(dashboard.run(config, server.process.pid, s, log=log))
        if "w7" in only:
            from bench import many_workers

            log(f"W7: {s['w7_n']:,} workers with heartbeats")
            keep(many_workers.run(config, server.process.pid, s["w7_n"], s["w7_window"],
                                  s["w7_reps"], log=log))
    peer_ratios(results)
    if "w6" in only:
        from bench import redis_cpu

        results.update(redis_cpu.per_task_from_fractions(results))
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    print(report.table(results, meta))
    if args.json:
        report.write_json(args.json, results, meta, samples)
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
