"""What a controller says when it attaches to a network that already has tasks or workers
(a rerun of a script, a second process on the same network): one INFO line with counts."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .controller import Rush

logger = logging.getLogger("rush")


def report_existing_network(controller: "Rush") -> None:
    """Log at INFO the tasks and workers the controller's network already has, by state
    (one round trip); say nothing about a new, empty network."""
    summary = controller.summary()
    tasks, workers = summary["tasks"], summary["workers"]
    if not sum(tasks.values()) and not sum(workers.values()):
        return
    logger.info("network %r already has %s and %s", controller.network_id,
                _phrase("task", tasks), _phrase("worker", workers))


def _phrase(noun: str, by_state: dict[str, int]) -> str:
    total = sum(by_state.values())
    text = f"{total} {noun}{'' if total == 1 else 's'}"
    present = [f"{n} {state}" for state, n in by_state.items() if n]
    return f"{text} ({', '.join(present)})" if present else text
