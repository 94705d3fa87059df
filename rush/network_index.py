"""The networks of a Redis server, as ``rush status`` and ``rush top`` see them.

Networks are found through the server-wide index ``keys.NETWORKS`` (written by the
worker registry when a controller attaches, a worker registers or crashes; emptied of a
network by its ``reset()``), never by scanning the keyspace. A summary of any number of
networks is one pipeline.

A network's *last activity* is the later of its last recorded event in the index and
the last time its list of all tasks was touched (``OBJECT IDLETIME``): workers append
to that list with every task they create, and neither ``rush status`` nor ``rush top``
reads it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Sequence

import redis

from .keys import NETWORKS, NetworkKeys
from .layer import decode
from .states import TaskState, WorkerState
from .validation import NETWORK_ID_PATTERN

logger = logging.getLogger("rush")

_LIST_STATES = (TaskState.QUEUED, TaskState.FINISHED)


@dataclass(frozen=True)
class NetworkSummary:
    """Counts of one network at one moment."""

    network_id: str
    workers: dict[str, int] = field(default_factory=dict)  # state -> number (non-zero only)
    tasks: dict[str, int] = field(default_factory=dict)  # every task state -> number
    n_crashed: int = 0
    last_activity: float | None = None  # seconds since the epoch

    @property
    def exists(self) -> bool:
        """Whether the network has any worker, task or recorded activity."""
        return bool(self.workers or any(self.tasks.values()) or self.last_activity)

    @property
    def n_done(self) -> int:
        """Tasks that are finished or failed."""
        return self.tasks.get("finished", 0) + self.tasks.get("failed", 0)


class NetworkIndex:
    """Reads the networks of one server (``client``)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def network_ids(self) -> list[str]:
        """Every indexed network, most recently active first (an entry that is no network
        id, written by someone else, is left out with a warning)."""
        ids = [decode(n) for n in self.client.zrevrange(NETWORKS, 0, -1)]  # type: ignore[arg-type]
        valid = [n for n in ids if NETWORK_ID_PATTERN.fullmatch(n)]
        if len(valid) < len(ids):
            logger.warning("ignored %d entr(ies) of %s that are not network ids",
                           len(ids) - len(valid), NETWORKS)
        return valid

    def summaries(self, network_ids: Sequence[str]) -> list[NetworkSummary]:
        """A summary of each network, in one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        for network_id in network_ids:
            k = NetworkKeys(network_id)
            pipe.zscore(NETWORKS, network_id)
            pipe.object("idletime", k.all_tasks)  # first: nothing below touches that key
            pipe.hvals(k.worker_states)
            for state in TaskState:
                coll = getattr(k, state.value)
                pipe.llen(coll) if state in _LIST_STATES else pipe.scard(coll)
            pipe.hlen(k.worker_errors)
        replies = pipe.execute(raise_on_error=False)
        width = 4 + len(TaskState)
        now = time.time()
        return [_summary(network_id, replies[i * width:(i + 1) * width], now)
                for i, network_id in enumerate(network_ids)]

    def summary(self, network_id: str) -> NetworkSummary:
        """The summary of one network (``exists`` False for an unknown one)."""
        return self.summaries([network_id])[0]


def _summary(network_id: str, replies: list, now: float) -> NetworkSummary:
    score, idle, states, *counts, n_crashed = replies
    workers: dict[str, int] = {}
    for state in states if isinstance(states, list) else []:
        name = decode(state)
        workers[name] = workers.get(name, 0) + 1
    order = [s.value for s in WorkerState]
    workers = dict(sorted(workers.items(), key=lambda kv: order.index(kv[0])
                          if kv[0] in order else len(order)))
    tasks = {s.value: int(n) if isinstance(n, int) else 0 for s, n in zip(TaskState, counts)}
    moments = [float(score)] if isinstance(score, (int, float)) else []
    if isinstance(idle, int):  # None: the key does not exist; an error: LFU eviction policy
        moments.append(now - idle)
    return NetworkSummary(network_id, workers, tasks,
                          int(n_crashed) if isinstance(n_crashed, int) else 0,
                          max(moments) if moments else None)
