"""Plots of a network for notebooks: plotly figures (plotly is imported only here, when a
plot is made; it comes with the ``dashboard`` extra).

- ``trace(df, objective="y", minimize=True)``: the objective of each task, in the
  order of ``df`` (``fetch_finished_tasks()`` gives finishing order), with the best
  value so far;
- ``workers(controller)``: tasks finished and failed per worker, coloured by the
  worker's state, with its host and pid, and its crash message if it crashed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from .controller import Rush

#: The colour of each worker state (as on the dashboard).
STATE_COLORS = {"running": "#2563eb", "terminated": "#64748b", "killed": "#ea580c",
                "lost": "#9333ea"}


class PlotlyMissing(ImportError):
    """plotly is not installed."""


def _graph_objects() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise PlotlyMissing("rush.plot needs plotly: pip install 'rush-redis[dashboard]' "
                            "(or pip install plotly)") from None
    return go


def trace(df: "pd.DataFrame", objective: str = "y", minimize: bool = True) -> Any:
    """The objective of each task (markers) and the best value so far (a step line), in
    the order of the rows of ``df``; returns a ``plotly.graph_objects.Figure``."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame (e.g. fetch_finished_tasks()), "
                        f"not {type(df).__name__}")
    if objective not in df.columns:
        numeric = [str(c) for c in df.columns if df[c].dtype.kind in "iuf"]
        raise ValueError(f"df has no column {objective!r} (numeric columns: "
                         f"{', '.join(numeric) or 'none'})")
    values = pd.to_numeric(df[objective], errors="coerce")
    if len(df) and values.isna().all():
        raise ValueError(f"column {objective!r} holds no numbers")
    go = _graph_objects()
    position = pd.Series(range(1, len(df) + 1), index=df.index)
    best = values.cummin() if minimize else values.cummax()
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=position, y=values, mode="markers", name=objective,
                                marker={"size": 5, "color": "rgba(100,116,139,0.55)"}))
    figure.add_trace(go.Scatter(x=position, y=best, mode="lines", name="best so far",
                                line={"shape": "hv", "color": "#16a34a", "width": 2.5}))
    figure.update_layout(title=f"{objective} per task ({'minimized' if minimize else 'maximized'})",
                         xaxis_title="task #", yaxis_title=objective, template="plotly_white")
    return figure


def workers(controller: "Rush") -> Any:
    """Tasks finished and failed per worker, one bar per worker coloured by its state;
    returns a ``plotly.graph_objects.Figure``. Reads through ``controller``: its worker
    table, its cached finished tasks (only new ones are read), the failed tasks and the
    worker errors."""
    go = _graph_objects()
    info = controller.worker_info
    finished = controller.fetch_finished_tasks(fields=["worker_id"])["worker_id"].value_counts()
    failed = controller.fetch_failed_tasks(fields=["worker_id"])["worker_id"].value_counts()
    errors = controller.worker_errors
    crash = dict(zip(errors["worker_id"], errors["message"]))
    ids = list(info["worker_id"])
    hover = [f"{w}<br>{state} on {host} (pid {pid})" + (f"<br>{crash[w]}" if w in crash else "")
             for w, state, host, pid in zip(ids, info["state"], info["hostname"], info["pid"])]
    figure = go.Figure()
    figure.add_trace(go.Bar(
        y=ids, x=[int(finished.get(w, 0)) for w in ids], orientation="h", name="finished",
        marker={"color": [STATE_COLORS.get(s, "#94a3b8") for s in info["state"]]},
        hovertext=hover, hoverinfo="text+x"))
    figure.add_trace(go.Bar(
        y=ids, x=[int(failed.get(w, 0)) for w in ids], orientation="h", name="failed",
        marker={"color": "#dc2626"}, hovertext=hover, hoverinfo="text+x"))
    states = ", ".join(f"{n} {s}" for s, n in info["state"].value_counts().items()) or "no workers"
    figure.update_layout(barmode="stack", title=f"tasks per worker ({states})",
                         xaxis_title="tasks", yaxis={"autorange": "reversed"},
                         template="plotly_white", height=max(300, 60 + 28 * len(ids)))
    return figure
