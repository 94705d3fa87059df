"""Progress bars: ``wait_for_tasks(..., progress=True)`` and ``Rush.progress()`` around a
user's own loop show tasks done / total, rate and the best value so far; nothing is
printed without them."""

from __future__ import annotations

import io
import re

import pytest

import loops
from rush.progress import Best
from worker_helpers import SLOW


def last_frame(text: str) -> str:
    """The last state a bar drew (tqdm redraws with carriage returns)."""
    return re.split(r"[\r\n]+", text.strip())[-1]


def test_wait_for_tasks_shows_a_bar_of_its_tasks(rsh, capfd):
    keys = rsh.push_tasks([{"x1": float(i), "x2": 1.0} for i in range(6)])
    rsh.start_local_workers(worker_loop=loops.wl_pop_and_block, n_workers=2, release="/")
    capfd.readouterr()

    rsh.wait_for_tasks(keys, timeout=SLOW, progress=True)

    err = capfd.readouterr().err
    final = last_frame(err)
    assert "6/6" in final and "task/s" in final
    best = min(loops.branin(float(i), 1.0) for i in range(6))
    assert f"best y={best:.6g}" in final


def test_nothing_is_printed_without_progress(rsh, worker, capfd):
    keys = worker.push_running_tasks([{"x": 1}])
    worker.finish_tasks(keys, [{"y": 1.0}])
    capfd.readouterr()
    rsh.wait_for_tasks(keys, timeout=SLOW)
    with pytest.raises(TimeoutError):
        rsh.wait_for_tasks(worker.push_running_tasks([{"x": 2}]), timeout=0.05)
    assert capfd.readouterr() == ("", "")


def test_progress_follows_a_users_own_loop(rsh, worker):
    out = io.StringIO()
    with rsh.progress(total=6, objective="loss", file=out):
        for i in range(5):
            keys = worker.push_running_tasks([{"x": i}])
            worker.finish_tasks(keys, [{"acc": 0.1 * i, "loss": 10.0 - i}])
        failed = worker.push_running_tasks([{"x": 9}])
        worker.fail_tasks(failed)
    final = last_frame(out.getvalue())
    assert "6/6" in final  # finished and failed count as done
    assert "best loss=6" in final


def test_progress_maximizes_and_counts_every_task_without_a_total(rsh, worker):
    out = io.StringIO()
    rsh.push_tasks([{"x": 0}])  # queued: part of the total, not done
    with rsh.progress(minimize=False, file=out):
        for i in range(3):
            worker.finish_tasks(worker.push_running_tasks([{"x": i}]), [{"acc": 0.25 * i}])
    final = last_frame(out.getvalue())
    assert "3/4" in final and "best acc=0.5" in final


def test_progress_checks_its_arguments(rsh):
    with pytest.raises(ValueError, match="total"):
        with rsh.progress(total=-1):
            pass
    with pytest.raises(TypeError, match="objective"):
        with rsh.progress(objective=3):
            pass


def test_best_takes_the_first_numeric_output_and_skips_what_is_not_a_number():
    best = Best()
    best.update([None, {"label": "a", "flag": True, "y": 3}, {"y": float("nan")}, {"y": 2.5},
                 {"y": "bad"}, {"other": 0}])
    assert (best.objective, best.value) == ("y", 2.5)
    high = Best("acc", minimize=False)
    high.update([{"acc": 0.5}, {"acc": 0.75}, {"acc": 0.25}])
    assert high.value == 0.75 and high.describe() == "best acc=0.75"
