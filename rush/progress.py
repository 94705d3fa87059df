"""Progress bars of a network's tasks: done / total, rate and the best objective value so
far, on a terminal or in a notebook (``tqdm.auto``, imported only when a bar is shown).

``wait_for_tasks(..., progress=True)`` drives a ``ProgressBar`` from its own checks;
``Rush.progress()`` runs a ``NetworkProgress``: a thread with its own connection that
follows the network's events and refreshes the bar (at most ``REFRESH_SECONDS`` apart).
"""

from __future__ import annotations

import logging
import math
import numbers
import threading
from typing import IO, Any, Iterable

from .config import RedisConfig
from .states import TaskState
from .store import TaskStore
from .waiting import EventWaiter

logger = logging.getLogger("rush")

#: Shortest time between two refreshes of a followed network.
REFRESH_SECONDS = 0.2
#: How often the follower thread looks whether it should stop.
_STOP_CHECK_SECONDS = 0.1


def is_number(value: Any) -> bool:
    """A real number that can be an objective (bools are not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Best:
    """The best value so far of an objective among task outputs (``ys`` dicts).

    Without ``objective``, the first numeric field of the first output that has one.
    NaN never wins.
    """

    def __init__(self, objective: str | None = None, minimize: bool = True) -> None:
        self.objective = objective
        self.minimize = minimize
        self.value: float | None = None

    def update(self, outputs: Iterable[dict | None]) -> None:
        """Take new task outputs into account."""
        for ys in outputs:
            if not isinstance(ys, dict):
                continue
            if self.objective is None:
                self.objective = next((k for k, v in ys.items() if is_number(v)), None)
            value = ys.get(self.objective) if self.objective is not None else None
            if not is_number(value):
                continue
            number = float(value)  # type: ignore[arg-type]  # a numbers.Real
            if math.isnan(number):
                continue
            if self.value is None or (number < self.value if self.minimize else number > self.value):
                self.value = number

    def describe(self) -> str:
        """``"best y=0.3979"``, or "" while there is none."""
        if self.value is None:
            return ""
        return f"best {self.objective}={self.value:.6g}"


class ProgressBar:
    """A ``tqdm.auto`` bar of tasks done out of ``total`` (``None``: no total)."""

    def __init__(self, total: int | None, best: Best, file: IO[str] | None = None,
                 description: str = "tasks") -> None:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]

        self.best = best
        self._bar = tqdm(total=total, desc=description, unit="task", file=file,
                         dynamic_ncols=True, leave=True)

    def show(self, done: int, total: int | None = None) -> None:
        """Move the bar to ``done`` tasks (and ``total``, when it changed)."""
        if total is not None and total != self._bar.total:
            self._bar.total = total
        self._bar.set_postfix_str(self.best.describe(), refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.refresh()
        self._bar.close()


def finished_outputs(store: TaskStore, cursor: int) -> tuple[int, list[dict | None]]:
    """The ``ys`` of the tasks finished from position ``cursor`` on, and the new cursor."""
    keys, _, values, vanished = store.read([TaskState.FINISHED], ("ys",), cursor)
    decode = store.serializer.decoder("ys")
    return (cursor + len(keys) + len(vanished),
            [None if v is None else decode(key, v) for key, v in zip(keys, values)])


class NetworkProgress:
    """Follows a network in a thread and shows its progress: tasks finished or failed out
    of ``total`` (``None``: every task created so far), rate, best so far."""

    def __init__(self, network_id: str, config: RedisConfig, total: int | None, best: Best,
                 file: IO[str] | None = None) -> None:
        self._store = TaskStore.connect(network_id, config)
        self._waiter = EventWaiter(self._store.client, self._store.keys.events)
        self._total = total
        self._bar = ProgressBar(total, best, file)
        self._cursor = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="rush-progress", daemon=True)

    def start(self) -> "NetworkProgress":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Show the final state and release the connection."""
        self._stop.set()
        self._thread.join()
        try:
            self.refresh()
        except Exception as e:
            logger.warning("the progress bar could not read the final state: %s", e)
        finally:
            self._bar.close()
            self._waiter.close()
            self._store.close()

    def refresh(self) -> None:
        """Read what changed and redraw the bar (two round trips)."""
        counts, _ = self._store.counts()
        self._cursor, outputs = finished_outputs(self._store, self._cursor)
        self._bar.best.update(outputs)
        total = self._total if self._total is not None else sum(counts.values())
        self._bar.show(counts["finished"] + counts["failed"], total)

    def _follow(self) -> None:
        try:
            self._follow_events()
        except Exception as e:  # e.g. Redis went away: the user's loop goes on without a bar
            logger.warning("the progress bar stopped following the network: %s", e)

    def _follow_events(self) -> None:
        while not self._stop.is_set():
            # an event ("tasks"/"workers") or the stop; the first take is always True
            self._waiter.wait(lambda: self._stop.is_set() or self._waiter.take("tasks")
                              or self._waiter.take("workers"), None,
                              slice_seconds=_STOP_CHECK_SECONDS)
            if self._stop.is_set():
                return
            self.refresh()
            self._stop.wait(REFRESH_SECONDS)
