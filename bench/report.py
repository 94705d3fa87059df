"""The readable table and the JSON file."""

from __future__ import annotations

import json
import math
from typing import Any

#: (key, label, unit/format) in display order, by section. Missing keys are skipped.
SECTIONS: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("Environment", [
        ("ping_rtt_us", "PING round trip (pinned)", "us"),
        ("ping_rtt_unpinned_us", "PING round trip (unpinned)", "us"),
    ]),
    ("W1 decentralized loop (push_running_tasks + finish_tasks, 1 task)", [
        ("w1_rush_us", "rush", "us/task"),
        ("w1_bare_us", "bare redis-py, same Lua scripts", "us/task"),
        ("w1_bare_pipeline_us", "bare, MULTI create + move script (info)", "us/task"),
        ("w1_ratio_vs_bare", "w1_ratio_vs_bare (target <= 1.3)", "ratio"),
        ("w1_paired_ratio", "median of paired ratios", "ratio"),
        ("w1_signed_us", "rush with a network secret (signed payloads)", "us/task"),
        ("w1_signed_ratio", "w1_signed_ratio: signed / rush (target <= 1.1)", "ratio"),
        ("w1_signed_paired_ratio", "  median of paired ratios", "ratio"),
        ("w1_rush_client_cpu_us", "CPU of the bench process, rush", "us/task"),
        ("w1_bare_client_cpu_us", "CPU of the bench process, bare", "us/task"),
        ("w1_rush_redis_cpu_us", "CPU of redis-server, rush", "us/task"),
        ("w1_bare_redis_cpu_us", "CPU of redis-server, bare", "us/task"),
        ("w1_rush_signed_client_cpu_us", "CPU of the bench process, rush signed", "us/task"),
        ("w1u_rush_us", "rush, unpinned", "us/task"),
        ("w1u_bare_us", "bare, unpinned", "us/task"),
        ("w1u_ratio_vs_bare", "ratio, unpinned", "ratio"),
    ]),
    ("W2 queue (push_tasks N, then pop_task + finish_tasks)", [
        ("w2_rush_us", "rush", "us/task"),
        ("w2_bare_us", "bare redis-py, same Lua scripts", "us/task"),
        ("w2_rush_push_us", "  of which push_tasks (rush)", "us/task"),
        ("w2_bare_push_us", "  of which push (bare)", "us/task"),
        ("w2_ratio_vs_bare", "w2_ratio_vs_bare (target <= 1.3)", "ratio"),
        ("w2_paired_ratio", "median of paired ratios", "ratio"),
        ("w2_signed_us", "rush with a network secret (signed payloads)", "us/task"),
        ("w2_signed_push_us", "  of which push_tasks (signed)", "us/task"),
        ("w2_signed_ratio", "w2_signed_ratio: signed / rush (target <= 1.1)", "ratio"),
        ("w2_signed_paired_ratio", "  median of paired ratios", "ratio"),
        ("w2_rush_client_cpu_us", "CPU of the bench process, rush", "us/task"),
        ("w2_bare_client_cpu_us", "CPU of the bench process, bare", "us/task"),
        ("w2_rush_redis_cpu_us", "CPU of redis-server, rush", "us/task"),
        ("w2_bare_redis_cpu_us", "CPU of redis-server, bare", "us/task"),
        ("w2_rush_signed_client_cpu_us", "CPU of the bench process, rush signed", "us/task"),
    ]),
    ("W6 redis-server CPU per task (INFO cpu); one-round-trip steps (pinned like W1)", [
        ("w6_redis_cpu_us_w1", "w6_redis_cpu_us_w1: W1 step (goal <= 20)", "us/task"),
        ("w6_redis_cpu_us_w2", "w6_redis_cpu_us_w2: W2 step (goal <= 20)", "us/task"),
        ("w6_ceiling_tasks_per_s", "w6_ceiling_tasks_per_s: one Redis core, steps", "int"),
        ("w6_redis_cpu_us_w1_two_calls", "W1 push_running_tasks + finish_tasks", "us/task"),
        ("w6_redis_cpu_us_w2_two_calls", "W2 pop_task + finish_tasks", "us/task"),
        ("w6_redis_cpu_us_w1_bare", "W1 bare, two round trips", "us/task"),
        ("w6_redis_cpu_us_w2_bare", "W2 bare, two round trips", "us/task"),
        *[(f"w6_redis_cpu_us_w4_{n}", f"W4, {n} worker(s) (from its CPU share)", "us/task")
          for n in (1, 2, 4, 8)],
        ("w1_step_us", "W1 step: finish_and_push_running_tasks", "us/task"),
        ("w1_two_calls_us", "W1 two calls (same run)", "us/task"),
        ("w1_step_bare_us", "W1 bare two-round-trip floor (same run)", "us/task"),
        ("w1_step_ratio_vs_bare", "w1_step_ratio_vs_bare (goal <= 0.7)", "ratio"),
        ("w1_step_paired_ratio", "  median of paired ratios", "ratio"),
        ("w2_step_us", "W2 step: finish_and_pop_task", "us/task"),
        ("w2_two_calls_us", "W2 two calls (same run)", "us/task"),
        ("w2_step_bare_us", "W2 bare two-round-trip floor (same run)", "us/task"),
        ("w2_step_ratio_vs_bare", "w2_step_ratio_vs_bare", "ratio"),
        ("w2_step_paired_ratio", "  median of paired ratios", "ratio"),
    ]),
    ("W3 fetch_finished_tasks", [
        ("w3_n", "finished tasks", "int"),
        ("w3_cold_100k_s", "rush, cold (new controller)", "s"),
        ("w3_floor_s", "floor: pipelined HMGET + unpickle + from_records", "s"),
        ("w3_floor_lua_s", "rush's read script by hand + unpickle + frame (info)", "s"),
        ("w3_cold_ratio_vs_floor", "w3_cold_ratio_vs_floor (target <= 1.5)", "ratio"),
        ("w3_cold_ratio_vs_floor_lua", "ratio vs the read-script floor", "ratio"),
        ("w3_incremental_1k_s", "rush, incremental (+1,000 tasks)", "s"),
        ("w3_incremental_floor_1k_s", "floor of the 1,000 new tasks alone", "s"),
        ("w3_incremental_pct_of_cold", "incremental / cold (target < 5 %)", "%"),
        ("w3_signed_cold_s", "rush, cold, with a network secret (2 checks per task)", "s"),
        ("w3_signed_ratio", "  signed / plain, cold, alternating (per 100k rows)", "ratio"),
        ("w3_signed_paired_ratio", "  median of paired ratios", "ratio"),
    ]),
    ("W4 local workers (W1 loop, unpinned)", [
        ("w4_target_tasks", "tasks per run", "int"),
        ("w4_startup_4_s", "start-up of 4 workers", "s"),
        *[(f"w4_{what}_{n}", f"{n} worker(s): {label}", unit)
          for n in (1, 2, 4, 8)
          for what, label, unit in (("tasks_per_s", "tasks/s", "int"),
                                    ("redis_cpu", "redis-server CPU (of 1 core)", "pct"),
                                    ("machine_cpu", "machine CPU (of all cores)", "pct"),
                                    ("startup", "start-up", "s"))],
        ("w4_skipped", "skipped", "text"),
    ]),
    ("W5 peers (in-process peers pinned like W1/W2; 2-process peers unpinned)", [
        ("peer_optuna_1p_us", "Optuna journal-redis, 1 process", "us/trial"),
        ("peer_optuna_1p_ratio_vs_w1", "  / rush W1", "ratio"),
        ("peer_optuna_2p_us", "Optuna journal-redis, 2 processes", "us/trial"),
        ("peer_optuna_2p_ratio_vs_w1", "  / rush W1", "ratio"),
        ("peer_optuna_2p_ratio_vs_w4_2", "  / rush W4 with 2 workers", "ratio"),
        ("peer_rq_simple_us", "RQ enqueue + SimpleWorker burst", "us/job"),
        ("peer_rq_simple_enqueue_us", "  of which enqueue", "us/job"),
        ("peer_rq_simple_ratio_vs_w2", "  / rush W2", "ratio"),
        ("peer_rq_burst_us", "RQ enqueue + Worker burst (fork per job)", "us/job"),
        ("peer_rq_burst_ratio_vs_w2", "  / rush W2", "ratio"),
        ("peer_rq_worker_fixed_s", "RQ burst worker fixed cost (subtracted above)", "s"),
        ("peer_dask_us", "Dask LocalCluster(2x1) client.map", "us/task"),
        ("peer_dask_ratio_vs_w2", "  / rush W2", "ratio"),
        ("peer_dask_ratio_vs_w4_2", "  / rush W4 with 2 workers", "ratio"),
        ("peers_skipped", "not installed", "text"),
    ]),
    ("O1 rush.optuna vs Optuna JournalStorage (RandomSampler, trivial objective, unpinned)", [
        ("optuna_overhead_us_per_trial", "rush.optuna, 1 worker", "us/trial"),
        ("optuna_journal_redis_us_per_trial", "journal on Redis, 1 process", "us/trial"),
        ("optuna_journal_file_us_per_trial", "journal on a file, 1 process", "us/trial"),
        ("optuna_ratio_vs_journal_redis", "optuna_ratio_vs_journal_redis (goal >= 5)", "ratio"),
        ("optuna_ratio_vs_journal_file", "  journal file / rush.optuna", "ratio"),
        ("optuna_overhead_us_per_trial_2", "rush.optuna, 2 workers", "us/trial"),
        ("optuna_journal_redis_us_per_trial_2", "journal on Redis, 2 processes", "us/trial"),
        ("optuna_journal_file_us_per_trial_2", "journal on a file, 2 processes", "us/trial"),
        ("optuna_ratio_vs_journal_redis_2", "  journal Redis / rush.optuna, 2 processes", "ratio"),
        ("optuna_ratio_vs_journal_file_2", "  journal file / rush.optuna, 2 processes", "ratio"),
        ("optuna_sync_held", "sync: trials held by the worker", "int"),
        ("optuna_sync_cold_ms", "sync: all of them, cold", "ms"),
        ("optuna_sync_10k_new_ms", "optuna_sync_10k_new_ms (10 new trials)", "ms"),
        ("optuna_sync_new_100_ms", "sync: 100 new trials", "ms"),
        ("optuna_sync_new_1000_ms", "sync: 1,000 new trials", "ms"),
        ("optuna_sync_new_per_trial_us", "sync: us per new trial (new: us)", "text"),
        ("optuna_skipped", "skipped", "text"),
    ]),
    ("Dashboard (rush dashboard; W4 runs unpinned)", [
        ("dashboard_n", "finished tasks of the network", "int"),
        ("dashboard_load_100k_s", "dashboard_load_100k_s: page data, fresh dashboard (goal < 1 s)", "s"),
        ("dashboard_load_100k_warm_s", "  the same, network already watched", "s"),
        ("dashboard_update_ms", "dashboard_update_ms: one update after 1,000 new tasks", "ms"),
        ("dashboard_update_at_1k_ms", "  the same on a network of 1,000 tasks", "ms"),
        ("dashboard_w4_redis_us_per_task", "W4 (2 workers): redis-server CPU, unwatched", "us/task"),
        ("dashboard_w4_redis_us_per_task_watched", "  watched by a page", "us/task"),
        ("dashboard_redis_cpu_overhead_pct", "dashboard_redis_cpu_overhead_pct (goal < 5 %)", "%"),
        ("dashboard_redis_read_us_per_task", "redis-server CPU per task the dashboard reads", "us/task"),
        ("dashboard_redis_read_pct_of_w4", "  against a W4 task's (counted directly)", "%"),
        ("dashboard_w4_tasks_per_s", "W4 (2 workers): tasks/s, unwatched", "int"),
        ("dashboard_w4_tasks_per_s_watched", "  watched by a page", "int"),
        ("dashboard_skipped", "skipped", "text"),
    ]),
    ("W7 1,000 workers with heartbeats (period 1 s; redis-server pinned)", [
        ("w7_workers", "registered workers", "int"),
        ("w7_worker_info_ms", "w7_worker_info_ms: worker_info (goal <= 50 ms)", "ms"),
        ("w7_detect_lost_ms", "w7_detect_lost_ms: detect_lost_workers() (goal <= 50 ms)", "ms"),
        ("w7_stop_workers_ms", "w7_stop_workers_ms: stop_workers() of all (goal <= 200 ms)", "ms"),
        ("w7_reset_ms", "w7_reset_ms: reset() (goal <= 200 ms)", "ms"),
        ("w7_heartbeat_redis_cpu_pct", "w7_heartbeat_redis_cpu_pct (goal <= 2 % of a core)", "%"),
        ("w7_redis_cpu_idle_pct", "  redis-server idle, same workers, no heartbeats", "%"),
    ]),
    ("W8 1,000,000 finished tasks (--quick: fewer)", [
        ("w8_n", "finished tasks", "int"),
        ("w8_fetch_1m_s", "fetch_finished_tasks(), cold", "s"),
        ("w8_floor_s", "floor: pipelined HMGET + unpickle, no frame", "s"),
        ("w8_fetch_1m_ratio_vs_floor", "w8_fetch_1m_ratio_vs_floor (goal <= 1.5)", "ratio"),
        ("w8_frame_mib", "size of the DataFrame (deep)", "MiB"),
        ("w8_peak_mem_mib", "peak resident set of the fetch", "MiB"),
        ("w8_fetch_1m_peak_mem_ratio", "w8_fetch_1m_peak_mem_ratio (goal <= 2)", "ratio"),
        ("w8_reset_s", "reset() of the network", "s"),
        ("w8_reset_max_block_ms", "  longest command of it (goal <= 100 ms)", "ms"),
    ]),
    ("TPE quality: median best value over seeds (--optuna-quality)", [
        *[(f"optuna_quality_{p}_{what}", f"{p}: {label}", unit)
          for p in ("branin", "hartmann6")
          for what, label, unit in (("trials", "trials per run", "int"),
                                    ("optimum", "optimum", "value"),
                                    ("rush_median", "rush.optuna, 2 workers", "value"),
                                    ("rush_quartiles", "  quartiles", "text"),
                                    ("njobs_median", "Optuna n_jobs=2", "value"),
                                    ("njobs_quartiles", "  quartiles", "text"),
                                    ("journal_median", "journal file, 2 processes", "value"),
                                    ("journal_quartiles", "  quartiles", "text"))],
    ]),
]


def _fmt(value: Any, unit: str) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v:.1f}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, str) or unit == "text":
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if unit == "ratio":
        return f"{value:.2f}x"
    if unit == "int":
        return f"{value:,.0f}"
    if unit == "pct":
        return f"{100 * value:.0f} %"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "value":
        return f"{value:.4f}"
    return f"{value:,.1f} {unit}"


def table(results: dict[str, Any], meta: dict[str, Any]) -> str:
    """A readable, sectioned table of every known key present in ``results``."""
    lines = [f"rush benchmarks  {meta.get('date', '')}  host {meta.get('host', '')}  "
             f"{meta.get('cores', '?')} cores  redis-server {meta.get('redis_server', '?')}",
             f"placement W1-W3: {meta.get('placement', '?')}   mode: {meta.get('mode', '?')}"]
    width = 58
    for title, rows in SECTIONS:
        present = [(k, label, unit) for k, label, unit in rows if k in results]
        if not present:
            continue
        lines += ["", title, "-" * len(title)]
        for key, label, unit in present:
            lines.append(f"  {label:<{width}} {_fmt(results[key], unit):>16}   {key}")
    return "\n".join(lines)


def write_json(path: str, results: dict[str, Any], meta: dict[str, Any],
               samples: dict[str, Any]) -> None:
    """Flat result keys at the top level, plus ``meta`` and raw ``samples``."""
    doc = {**results, "meta": meta, "samples": samples}
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=False, default=str)
        f.write("\n")
