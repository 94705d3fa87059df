"""The HTML of the dashboard, rendered on the server: the page names its network and
shows its counters, workers and the list of networks before any script runs; the
script (``static/dashboard.js``) keeps it live."""

from __future__ import annotations

import html
import json
import string
from importlib import resources
from typing import Sequence

from ..states import TASK_STATES, WorkerState
from ..status import ago

_TEMPLATE = string.Template((resources.files(__package__) / "static" / "page.html")
                            .read_text(encoding="utf-8"))


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def counters(summary: dict | None) -> str:
    """The counter cards: tasks and workers by state."""
    tasks = summary["tasks"] if summary else {}
    workers = summary["workers"] if summary else {}
    cards = [f'<div class="card task {s}"><span class="n" id="count-{s}">{tasks.get(s, 0):,}'
             f'</span><span class="label">{s}</span></div>' for s in TASK_STATES]
    cards += [f'<div class="card worker {s.value}"><span class="n" id="workers-{s.value}">'
              f'{workers.get(s.value, 0):,}</span><span class="label">{s.value} workers</span></div>'
              for s in WorkerState]
    return "\n".join(cards)


def worker_rows(workers: Sequence[dict]) -> str:
    """The rows of the worker table (the script adds the buttons)."""
    if not workers:
        return '<tr class="empty"><td colspan="8">no workers registered</td></tr>'
    rows = []
    for w in workers:
        age = f'{w["heartbeat_age"]} s' if w["heartbeat_age"] is not None else \
            "expired" if w["heartbeat"] and w["state"] == "running" else "-"
        host = w["hostname"] + (" (remote)" if w["remote"] else "")
        rows.append(
            f'<tr data-worker-id="{_e(w["worker_id"])}" class="state-{_e(w["state"])}">'
            f'<td class="id">{_e(w["worker_id"])}</td>'
            f'<td class="state"><span class="badge {_e(w["state"])}">{_e(w["state"])}</span></td>'
            f'<td class="host">{_e(host)}</td><td class="num pid">{_e(w["pid"])}</td>'
            f'<td class="num heartbeat">{age}</td><td class="num finished">{w["finished"]:,}</td>'
            f'<td class="error">{_e(w["last_error"] or "")}</td><td class="actions"></td></tr>')
    return "\n".join(rows)


def network_items(networks: Sequence[dict], current: str | None, token: str) -> str:
    """The list of networks (links keep the token)."""
    if not networks:
        return '<li class="empty">no networks on this server</li>'
    items = []
    for n in networks:
        tasks = n["tasks"]
        done = tasks.get("finished", 0)
        running = n["workers"].get("running", 0)
        active = ' class="current"' if n["network_id"] == current else ""
        items.append(
            f'<li{active}><a href="{_network_href(n["network_id"], token)}">'
            f'<span class="name">{_e(n["network_id"])}</span>'
            f'<span class="meta">{done:,} finished · {running} running · '
            f'{_e(ago(n["last_activity"]))}</span></a></li>')
    return "\n".join(items)


def _network_href(network_id: str, token: str) -> str:
    from urllib.parse import quote, urlencode

    return f"/networks/{quote(network_id, safe='')}?{urlencode({'token': token})}"


def render(*, network_id: str | None, where: str, token: str, summary: dict | None,
           workers: Sequence[dict], networks: Sequence[dict]) -> str:
    """The whole page: one network (``network_id``), or only the list of networks."""
    config = json.dumps({"network_id": network_id, "token": token, "where": where})
    title = f"{network_id} · rush dashboard" if network_id else "networks · rush dashboard"
    heading = (f'network <span id="network-name">{_e(network_id)}</span>' if network_id
               else "networks")
    return _TEMPLATE.substitute(
        title=_e(title), heading=heading, where=_e(where),
        config=config.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),
        token=_e(token), network_class="network" if network_id else "list",
        counters=counters(summary), workers=worker_rows(workers),
        networks=network_items(networks, network_id, token))


def not_found(message: str, token: str) -> str:
    """The page of an unknown network."""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>not found · rush '
            f'dashboard</title></head><body><h1>Not found</h1><p>{_e(message)}</p>'
            f'<p><a href="/?token={_e(token)}">all networks</a></p></body></html>')
