"""Waiting for network state without polling Redis: block on the network's pub/sub
channel, which the scripts notify when tasks finish or fail and workers change state."""

from __future__ import annotations

import time
from typing import Callable, Iterator

import redis

#: Waiters re-check their condition at least this often (events can't announce
#: everything, e.g. a process dying), and at most once per ``MIN_CHECK_INTERVAL``.
MAX_WAIT_SLICE = 0.5
MIN_CHECK_INTERVAL = 0.01
#: Longest single block of a blocking command (BLPOP, BLMOVE): well under the client's
#: socket timeout (redis-py >= 6 defaults it to 5 s; a longer block times out, is retried,
#: times out again ... for minutes).
MAX_BLOCK_SECONDS = 1.0
#: Shortest block: Redis reads a timeout that rounds to 0 ms as "block forever".
MIN_BLOCK_SECONDS = 0.01


def block_slices(timeout: float) -> Iterator[float]:
    """Lengths of the blocks a blocking command waits in, adding up to ``timeout`` s,
    each between ``MIN_BLOCK_SECONDS`` and ``MAX_BLOCK_SECONDS``."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        yield min(max(remaining, MIN_BLOCK_SECONDS), MAX_BLOCK_SECONDS)


class EventWaiter:
    """A subscription to the network's event channel, opened on first use.

    It remembers which events arrived (``take``), so a waiter can skip a read that only
    an event could make worthwhile.
    """

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self._client = client
        self._channel = channel
        self._pubsub: redis.client.PubSub | None = None
        self._seen: set[bytes] = set()  # events that arrived and were not taken yet
        self._taken: set[bytes] = set()  # events taken since the subscription began

    def _subscription(self) -> "redis.client.PubSub":
        if self._pubsub is None:
            self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(self._channel)
            self._seen.clear()
            self._taken.clear()
        return self._pubsub

    def take(self, event: str) -> bool:
        """Whether ``event`` may have happened since the last ``take`` of it: it arrived on
        the channel, or nothing listened (no subscription yet). Reads the events that
        are waiting, without blocking."""
        if self._pubsub is None:
            return True
        self._drain(self._pubsub)
        name = event.encode()
        first = name not in self._taken  # what happened before the subscription is unknown
        self._taken.add(name)
        if name in self._seen or first:
            self._seen.discard(name)
            return True
        return False

    def wait(self, condition: Callable[[], bool], timeout: float | None,
             slice_seconds: float = MAX_WAIT_SLICE, on_slice: Callable[[], object] | None = None
             ) -> bool:
        """Until ``condition()`` is true (True) or ``timeout`` s pass (False; None = forever).

        The subscription exists before the first check, so no event is missed between a
        check and the wait. ``on_slice`` runs when a slice passes without an event.
        """
        pubsub = self._subscription()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._drain(pubsub)
            checked = time.monotonic()
            if condition():
                return True
            remaining = slice_seconds if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return False
            got = pubsub.get_message(timeout=min(remaining, slice_seconds))
            if got is not None:
                self._note(got)
            elif on_slice is not None:
                on_slice()
            pause = MIN_CHECK_INTERVAL - (time.monotonic() - checked)
            if pause > 0:
                time.sleep(pause)  # rate limit: events can arrive thousands of times a second

    def _drain(self, pubsub: "redis.client.PubSub") -> None:
        while (message := pubsub.get_message(timeout=0)) is not None:
            self._note(message)

    def _note(self, message: dict) -> None:
        data = message.get("data")
        if isinstance(data, bytes):
            self._seen.add(data)

    def close(self) -> None:
        """Drop the subscription and its connection."""
        if self._pubsub is not None:
            self._pubsub.close()
            self._pubsub = None
