"""``rush.plot``: plotly figures for notebooks (the trace with its best-so-far line, the
tasks per worker), clear errors for bad input, and one line when plotly is missing."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

import rush.plot

pytest.importorskip("plotly")


def test_trace_shows_each_value_and_the_best_so_far():
    df = pd.DataFrame({"x": [1, 2, 3, 4, 5], "y": [3.0, 1.0, 2.0, float("nan"), 0.5]})
    figure = rush.plot.trace(df, objective="y")
    points, best = figure.data
    assert list(points.x) == [1, 2, 3, 4, 5]
    assert list(best.y)[:3] == [3.0, 1.0, 1.0] and list(best.y)[4] == 0.5
    assert best.line.shape == "hv" and best.name == "best so far"
    assert "minimized" in figure.layout.title.text
    maximized = rush.plot.trace(df, objective="y", minimize=False)
    assert list(maximized.data[1].y)[:3] == [3.0, 3.0, 3.0]


def test_trace_of_finished_tasks(rsh, worker):
    keys = worker.push_running_tasks([{"x": i} for i in range(4)])
    worker.finish_tasks(keys, [{"loss": v} for v in (4, 2, 3, 1)])
    figure = rush.plot.trace(rsh.fetch_finished_tasks(), objective="loss")
    assert list(figure.data[1].y) == [4, 2, 2, 1]


def test_trace_refuses_bad_input_with_a_clear_message():
    df = pd.DataFrame({"x": [1.0], "label": ["a"]})
    with pytest.raises(ValueError, match=r"no column 'y' \(numeric columns: x\)"):
        rush.plot.trace(df)
    with pytest.raises(ValueError, match="'label' holds no numbers"):
        rush.plot.trace(df, objective="label")
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        rush.plot.trace([1, 2, 3])


def test_workers_shows_tasks_per_worker_by_state(rsh, make_worker):
    busy, crashed = make_worker(), make_worker()
    keys = busy.push_running_tasks([{"x": i} for i in range(3)])
    busy.finish_tasks(keys, [{"y": 1.0}] * 3)
    crashed.push_running_tasks([{"x": 9}])
    rsh.stop_workers("kill", [crashed.worker_id])
    figure = rush.plot.workers(rsh)
    finished, failed = figure.data
    by_worker = dict(zip(finished.y, finished.x))
    assert by_worker == {busy.worker_id: 3, crashed.worker_id: 0}
    assert dict(zip(failed.y, failed.x)) == {busy.worker_id: 0, crashed.worker_id: 1}
    colours = dict(zip(finished.y, finished.marker.color))
    assert colours[busy.worker_id] == rush.plot.STATE_COLORS["running"]
    assert colours[crashed.worker_id] == rush.plot.STATE_COLORS["killed"]
    assert "1 running, 1 killed" in figure.layout.title.text


def test_without_plotly_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(rush.plot.PlotlyMissing, match=r"pip install 'rush-redis\[dashboard\]'"):
        rush.plot.trace(pd.DataFrame({"y": [1.0]}))


def test_importing_rush_does_not_import_plotly():
    import subprocess

    code = "import rush, rush.plot, sys; print('plotly' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
