"""What a controller says when it attaches to a network that already has tasks or workers
(a rerun of a script, a second process on the same network): one INFO line with counts."""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

from .connection import TRANSIENT_ERRORS, connection_error
from .states import TASK_STATES, WORKER_STATES

if TYPE_CHECKING:
    from .controller import Rush

logger = logging.getLogger("rush")


def report_existing_network(controller: "Rush") -> None:
    """Log at INFO the tasks and workers the controller's network already has, by state
    (one round trip); say nothing about a new, empty network."""
    keys = controller.keys
    pipe = controller.connector.pipeline(transaction=False)
    pipe.llen(keys.queued)
    pipe.scard(keys.running)
    pipe.llen(keys.finished)
    pipe.scard(keys.failed)
    pipe.hvals(keys.worker_states)
    try:
        *task_counts, worker_states = pipe.execute()
    except TRANSIENT_ERRORS as e:
        raise connection_error(controller.config, e) from None
    tasks = dict(zip(TASK_STATES, task_counts))
    workers = Counter(s.decode() if isinstance(s, bytes) else s for s in worker_states)
    if not sum(tasks.values()) and not workers:
        return
    logger.info("network %r already has %s and %s", keys.network_id,
                _phrase("task", tasks), _phrase("worker", {s: workers[s] for s in WORKER_STATES}))


def _phrase(noun: str, by_state: dict[str, int]) -> str:
    total = sum(by_state.values())
    text = f"{total} {noun}{'' if total == 1 else 's'}"
    present = [f"{n} {state}" for state, n in by_state.items() if n]
    return f"{text} ({', '.join(present)})" if present else text
