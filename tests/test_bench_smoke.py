"""The benchmark harness runs end to end (tiny sizes) and writes every key it promises.

No timing assertions: this only keeps ``python -m bench`` from rotting. The harness
starts its own redis-server; it never touches the one on 6379.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CORE_KEYS = [
    "ping_rtt_us",
    "w1_rush_us", "w1_bare_us", "w1_ratio_vs_bare", "w1_signed_us", "w1_signed_ratio",
    "w2_rush_us", "w2_bare_us", "w2_ratio_vs_bare", "w2_signed_us", "w2_signed_ratio",
    "w3_cold_100k_s", "w3_floor_s", "w3_cold_ratio_vs_floor", "w3_incremental_1k_s",
    "w4_tasks_per_s_1", "w4_tasks_per_s_2", "w4_startup_2_s",
    "w7_worker_info_ms", "w7_detect_lost_ms", "w7_stop_workers_ms", "w7_reset_ms",
    "w7_heartbeat_redis_cpu_pct",
    "w8_fetch_1m_ratio_vs_floor", "w8_fetch_1m_peak_mem_ratio", "w8_reset_max_block_ms",
    "w6_redis_cpu_us_w1", "w6_redis_cpu_us_w2", "w6_ceiling_tasks_per_s", "w1_step_ratio_vs_bare",
    "w6_redis_cpu_us_w4_1",
]
PEER_KEYS = {
    "optuna": ["peer_optuna_1p_us", "peer_optuna_2p_us", "peer_optuna_1p_ratio_vs_w1",
               "optuna_overhead_us_per_trial", "optuna_journal_redis_us_per_trial",
               "optuna_ratio_vs_journal_redis", "optuna_overhead_us_per_trial_2",
               "optuna_journal_redis_us_per_trial_2", "optuna_ratio_vs_journal_redis_2",
               "optuna_journal_file_us_per_trial", "optuna_sync_10k_new_ms"],
    "rq": ["peer_rq_simple_us", "peer_rq_burst_us", "peer_rq_simple_ratio_vs_w2"],
    "distributed": ["peer_dask_us", "peer_dask_ratio_vs_w2"],
    "starlette": ["dashboard_load_100k_s", "dashboard_load_100k_warm_s", "dashboard_update_ms",
                  "dashboard_update_at_1k_ms", "dashboard_redis_cpu_overhead_pct",
                  "dashboard_redis_read_us_per_task"],
}


@pytest.mark.timeout(150)
def test_bench_smoke_writes_every_key(tmp_path):
    if not (ROOT / "bench" / "__main__.py").exists():
        pytest.skip("no bench/ folder next to the tests")
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k not in ("RUSH_REDIS_URL", "REDIS_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--w4-workers", "1,2", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=140)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    expected = list(CORE_KEYS)
    for module, keys in PEER_KEYS.items():
        if importlib.util.find_spec(module) is not None:
            expected += keys
    missing = [k for k in expected if k not in doc]
    assert not missing, f"missing keys {missing}; stderr: {proc.stderr[-2000:]}"
    assert doc["meta"]["mode"] == "smoke"
    assert "w1_ratio_vs_bare" in proc.stdout  # the table was printed


@pytest.mark.timeout(60)
def test_local_server_bench_prints_every_row():
    if not (ROOT / "bench" / "local_server.py").exists():
        pytest.skip("no bench/ folder next to the tests")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                                    os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", "bench.local_server", "--reps", "1"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=50)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for row in ("first use (new home)", "first use (stopped)", "later use", "baseline"):
        assert row in proc.stdout


@pytest.mark.timeout(120)
def test_bench_failures_runs():
    if not (ROOT / "bench" / "failures.py").exists():
        pytest.skip("no bench/ folder next to the tests")
    env = {k: v for k, v in os.environ.items() if k not in ("RUSH_REDIS_URL", "REDIS_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "bench.failures", "--reps", "1"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "loop raises -> WARNING" in proc.stdout and "SIGKILL of the controller" in proc.stdout
