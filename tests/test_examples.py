"""Every script in examples/ runs in its quick mode against the private Redis, and leaves
neither keys nor processes behind."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wait_until

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: script -> (module it needs, text its output must hold)
CASES = {
    "random_search.py": (None, "evaluations by"),
    "optuna_tpe.py": ("optuna", "30 trials on"),
    "successive_halving.py": (None, "configurations per rung"),
    "simulation_campaign.py": (None, "simulations finished"),
    "dask_random_search.py": ("distributed", "evaluations on 2 Dask workers"),
}


def session_members(sid: int) -> list[int]:
    """Pids of the processes still in session ``sid`` (Linux /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid:  # fields after the name: state ppid pgrp session ...
            pids.append(int(entry))
    return pids


@pytest.mark.timeout(180)
@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs_quick_and_cleans_up(script, config, rsh):
    if not (EXAMPLES / script).exists():
        pytest.skip("no examples/ folder next to the tests")
    needs, expected = CASES[script]
    if needs is not None and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{needs} is not installed")
    client = rsh.connector
    before = set(client.keys("*"))
    env = dict(os.environ, RUSH_REDIS_URL=config.url)
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / script), "--quick"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert expected in out, out
    assert set(client.keys("*")) - before == set(), "the example left keys in Redis"
    wait_until(lambda: not session_members(proc.pid), 30,
               message=f"the processes of {script} to end")


@pytest.mark.timeout(180)
def test_the_campaigns_results_do_not_depend_on_the_workers(config, monkeypatch):
    """Example 4's seeds: each simulation gives the same result whichever worker runs it
    and however many workers there are."""
    if not (EXAMPLES / "simulation_campaign.py").exists():
        pytest.skip("no examples/ folder next to the tests")
    spec = importlib.util.spec_from_file_location("simulation_campaign",
                                                  EXAMPLES / "simulation_campaign.py")
    campaign = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(campaign)
    monkeypatch.setenv("RUSH_REDIS_URL", config.url)
    runs = [campaign.run(n_workers, 30, timeout=1.0) for n_workers in (1, 3)]
    results = [dict(zip(zip(df["scenario"], df["replicate"]), df["steps"])) for df in runs]
    both = set(results[0]) & set(results[1])
    assert len(both) >= 20  # all but the crashing and hanging ones, at least
    assert {k: results[0][k] for k in both} == {k: results[1][k] for k in both}
