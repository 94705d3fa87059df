"""What ``rush status`` prints: every network of a server, or one network in detail.

Reading a network here never counts as activity: nothing is written, and the list of all
tasks (whose idle time tells the last activity) is not read.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Sequence

import redis

from .config import RedisConfig
from .crashes import parse
from .errors import UnknownNetworkError
from .network_index import NetworkIndex, NetworkSummary
from .registry import WorkerRegistry
from .keys import NetworkKeys
from .scripts import Scripts
from .validation import check_network_id

#: Columns of the worker table of one network (those of ``Rush.worker_info``).
WORKER_COLUMNS = ("worker_id", "pid", "remote", "hostname", "heartbeat", "state")


def counts_text(counts: dict[str, int], empty: str = "-") -> str:
    """``"2 running, 1 lost"`` (states with no member left out unless all are zero)."""
    shown = [f"{n} {state}" for state, n in counts.items() if n]
    return ", ".join(shown) if shown else empty


def ago(moment: float | None, now: float | None = None) -> str:
    """``"3 s ago"``, ``"5 min ago"`` ... (``"-"`` for no moment)."""
    if moment is None:
        return "-"
    seconds = max(0.0, (time.time() if now is None else now) - moment)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def utc(moment: float) -> str:
    """A moment as ``2026-01-31 12:00:00 UTC``."""
    return dt.datetime.fromtimestamp(moment, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def networks_text(summaries: Sequence[NetworkSummary], where: str) -> str:
    """The table of every network, most recently active first."""
    import pandas as pd

    if not summaries:
        return f"no networks on {where}"
    ordered = sorted(summaries, key=lambda s: s.last_activity or 0, reverse=True)
    table = pd.DataFrame([{
        "network_id": s.network_id, "workers": counts_text(s.workers), **s.tasks,
        "last activity": ago(s.last_activity)} for s in ordered])
    return f"{len(summaries)} network(s) on {where}\n" + table.to_string(index=False)


def network_text(summary: NetworkSummary, registry: WorkerRegistry, where: str) -> str:
    """One network: counts, last activity, the worker table and its crashed workers."""
    import pandas as pd

    lines = [f"network {summary.network_id!r} at {where}",
             f"  workers: {counts_text(summary.workers, 'none')}",
             "  tasks: " + ", ".join(f"{n} {state}" for state, n in summary.tasks.items()),
             "  last activity: " + (f"{utc(summary.last_activity)} ({ago(summary.last_activity)})"
                                   if summary.last_activity else "-")]
    info = registry.info()
    if info:
        lines.append(pd.DataFrame(info, columns=list(WORKER_COLUMNS)).to_string(index=False))
    else:
        lines.append("no workers registered")
    crashes = parse(registry.crashes())
    if crashes:
        lines.append(f"crashed workers ({len(crashes)}; Rush.worker_errors has the tracebacks):")
        lines += [f"  {c.worker_id}  {utc(c.timestamp)}  {c.message}" for c in crashes]
    return "\n".join(lines)


def status_text(client: redis.Redis, config: RedisConfig, network_id: str | None) -> str:
    """What ``rush status`` prints; ``UnknownNetworkError`` for an unknown ``network_id``."""
    index = NetworkIndex(client)
    where = config.redacted_url
    if network_id is None:
        return networks_text(index.summaries(index.network_ids()), where)
    summary = known_network(index, network_id, where)
    registry = WorkerRegistry(client, NetworkKeys(network_id), Scripts(client), config)
    return network_text(summary, registry, where)


def known_network(index: NetworkIndex, network_id: str, where: str) -> NetworkSummary:
    """The summary of a network that exists; else ``UnknownNetworkError``."""
    summary = index.summary(check_network_id(network_id))
    if not summary.exists:
        raise UnknownNetworkError(f"no network {network_id!r} on {where} "
                                  "(rush status without --network-id lists them)")
    return summary
