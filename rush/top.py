"""``rush top``: a live terminal view of one network, refreshed each second (``rich``,
the ``top`` extra).

Workers and tasks by state, throughput over the last ``THROUGHPUT_WINDOW`` seconds, the
best value so far of an objective, the latest worker errors and log lines. ``q`` or
Ctrl-C leaves. Like ``rush status`` it only reads: watching is not activity.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import select
import sys
import time
from typing import IO, Any, Iterator

from .config import RedisConfig
from .crashes import Crash, parse
from .errors import UnknownNetworkError
from .keys import NetworkKeys
from .network_index import NetworkIndex, NetworkSummary
from .progress import Best, finished_outputs
from .registry import WorkerRegistry
from .scripts import Scripts
from .status import ago, counts_text, known_network
from .store import TaskStore

#: Seconds between two refreshes.
REFRESH_SECONDS = 1.0
#: Throughput is measured over this many seconds.
THROUGHPUT_WINDOW = 10.0
#: How many worker errors and log lines are shown.
N_ERRORS, N_LOG_LINES = 3, 8


class TopMissing(RuntimeError):
    """``rich`` is not installed."""


def require_rich() -> None:
    """Raise a one-line instruction when ``rich`` is missing."""
    try:
        import rich  # noqa: F401
    except ImportError:
        raise TopMissing("rush top needs the 'rich' package: pip install rich "
                         "(or pip install 'rush-redis[top]')") from None


class Watch:
    """What ``rush top`` knows of a network, read again by ``refresh()``."""

    def __init__(self, client: Any, config: RedisConfig, network_id: str, best: Best) -> None:
        keys = NetworkKeys(network_id)
        scripts = Scripts(client)
        self.network_id = network_id
        self.where = config.redacted_url
        self.index = NetworkIndex(client)
        self.store = TaskStore(client, keys, scripts, config)
        self.registry = WorkerRegistry(client, keys, scripts, config)
        self.best = best
        self.summary = NetworkSummary(network_id)
        self.crashes: list[Crash] = []
        self.log_lines: collections.deque[tuple[float, str]] = collections.deque(maxlen=N_LOG_LINES)
        self._finished_cursor = 0
        self._log_cursors: dict[str, int] = {}
        self._done: collections.deque[tuple[float, int]] = collections.deque()

    def refresh(self) -> None:
        """Read the network again (a few round trips; the outputs only of new tasks)."""
        self.summary = self.index.summary(self.network_id)
        self._finished_cursor, outputs = finished_outputs(self.store, self._finished_cursor)
        self.best.update(outputs)
        self.crashes = parse(self.registry.crashes())
        self._read_new_log_lines()
        now = time.monotonic()
        self._done.append((now, self.summary.n_done))
        while len(self._done) > 2 and now - self._done[1][0] >= THROUGHPUT_WINDOW:
            self._done.popleft()

    @property
    def throughput(self) -> float | None:
        """Tasks finished or failed per second over the last ``THROUGHPUT_WINDOW`` s."""
        if len(self._done) < 2:
            return None
        (t0, n0), (t1, n1) = self._done[0], self._done[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else None

    def _read_new_log_lines(self) -> None:
        worker_ids = list(self.registry.states())
        starts = [self._log_cursors.get(w, 0) for w in worker_ids]
        new: list[tuple[float, str]] = []
        for worker_id, start, raw in zip(worker_ids, starts, self.registry.read_logs(worker_ids, starts)):
            self._log_cursors[worker_id] = start + len(raw)
            for record in raw[-N_LOG_LINES:]:
                rec = json.loads(record)
                first_line = str(rec.get("msg", "")).splitlines()[0] if rec.get("msg") else ""
                new.append((rec.get("timestamp", 0.0),
                            f"[{worker_id}] {rec.get('level', '')}: {first_line}"))
        self.log_lines.extend(sorted(new))


def render(watch: Watch) -> Any:
    """The rich renderable of one refresh."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    s = watch.summary
    rate = watch.throughput
    best = watch.best
    head = Text.assemble(("rush top", "bold"), f"  network {watch.network_id} at {watch.where}  ",
                         (time.strftime("%H:%M:%S"), "dim"))
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("workers", counts_text(s.workers, "none"))
    table.add_row("tasks", ", ".join(f"{n} {state}" for state, n in s.tasks.items()))
    table.add_row("throughput", "-" if rate is None else
                  f"{rate:.1f} tasks/s (last {THROUGHPUT_WINDOW:.0f} s)")
    direction = "minimize" if best.minimize else "maximize"
    table.add_row("best", f"{best.objective}={best.value:.6g} ({direction})"
                  if best.value is not None else f"- ({best.objective or 'first numeric output'}, "
                                                 f"{direction})")
    table.add_row("last activity", ago(s.last_activity))
    parts: list[Any] = [head, table]
    if watch.crashes:
        errors = Table(title=f"worker errors ({len(watch.crashes)})", title_justify="left",
                       show_header=False, box=None)
        for crash in watch.crashes[-N_ERRORS:]:
            errors.add_row(crash.worker_id, time.strftime("%H:%M:%S", time.localtime(crash.timestamp)),
                           Text(crash.message, style="red"))
        parts.append(errors)
    if watch.log_lines:
        parts.append(Text("log", style="bold"))
        parts += [Text(line, overflow="ellipsis", no_wrap=True) for _, line in watch.log_lines]
    parts.append(Text("q or Ctrl-C to leave", style="dim"))
    return Group(*parts)


@contextlib.contextmanager
def _keys_pressed(stream: IO[str]) -> Iterator[Any]:
    """A function that waits up to ``timeout`` s for a key and returns it (or ""); on a
    terminal, keys arrive without Enter while the view runs."""
    if not stream.isatty():
        def wait(timeout: float) -> str:
            time.sleep(timeout)  # no keys to read: only Ctrl-C leaves
            return ""

        yield wait
        return
    import termios
    import tty

    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        def read_key(timeout: float) -> str:
            ready, _, _ = select.select([fd], [], [], timeout)
            return os.read(fd, 1).decode(errors="replace") if ready else ""

        yield read_key
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run_top(client: Any, config: RedisConfig, network_id: str | None, objective: str | None,
            minimize: bool, stdin: IO[str] = sys.stdin) -> int:
    """Show the live view until ``q`` or Ctrl-C; returns the exit code."""
    require_rich()
    from rich.console import Console
    from rich.live import Live

    index = NetworkIndex(client)
    if network_id is None:
        ids = index.network_ids()
        if not ids:
            raise UnknownNetworkError(f"no networks on {config.redacted_url}")
        network_id = ids[0]
    known_network(index, network_id, config.redacted_url)
    watch = Watch(client, config, network_id, Best(objective, minimize))
    watch.refresh()
    console = Console()
    with _keys_pressed(stdin) as read_key, \
            Live(render(watch), console=console, auto_refresh=False, transient=False) as live:
        try:
            while True:
                deadline = time.monotonic() + REFRESH_SECONDS
                while (left := deadline - time.monotonic()) > 0:
                    if read_key(left).lower() == "q":
                        return 0
                watch.refresh()
                live.update(render(watch), refresh=True)
        except KeyboardInterrupt:
            return 0
