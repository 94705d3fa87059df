"""One network as the dashboard sees it: one thread reads it for every browser tab.

A ``NetworkWatch`` owns one controller (which never puts the network into the server's
index: watching is not activity) and reads the network every ``REFRESH_SECONDS`` while
someone watches it (an open page, or an API request in the last ``IDLE_SECONDS``), and
not at all otherwise. A refresh costs a few round trips plus the new finished tasks
only, in Redis and here: the controller's ``fetch_new_tasks`` reads each finished task
once, the trace and the tasks per worker grow by the new tasks, and the logs are read
from where the last refresh stopped. The frame of every finished task (for the task
table) is joined from the new parts only when a page asks for tasks. Pages get the
state as one full snapshot, then as deltas (``message``): the trace values, throughput
points and log records that are new since the version they have.

Why a clock rather than the network's pub/sub channel: every task write publishes an
event, thousands a second under load, for a page that shows at most a few frames a
second; and heartbeats and log records publish nothing, so a clock is needed anyway.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .. import frames
from ..config import RedisConfig
from ..controller import Rush
from ..crashes import Crash, parse
from ..errors import RushConnectionError, RushError, RushNetworkLostError
from ..network_index import NetworkIndex, NetworkSummary
from ..registry import WorkerActivity, WorkerRegistry
from ..scripts import Scripts
from ..states import WorkerState
from .tasks import BadRequest, TaskQuery, jsonable, numbers, select

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("rush")

#: Seconds between two reads of a watched network.
REFRESH_SECONDS = 0.5
#: A network nobody has asked about for this long is not read any more (its cache stays).
IDLE_SECONDS = 30.0
#: Throughput is the rate of tasks done (finished or failed) over this many seconds ...
THROUGHPUT_WINDOW = 10.0
#: ... with one point per second at most, the last ``THROUGHPUT_POINTS`` kept.
THROUGHPUT_POINTS = 1800
#: Log records kept for the tail (and read per worker when the watch starts).
LOG_RECORDS = 300
#: Deltas kept for pages that are behind; a page further behind gets a full snapshot.
DELTAS_KEPT = 120
#: The fields of the finished tasks the dashboard reads (finished tasks have no condition).
FINISHED_FIELDS = ("xs", "ys", "xs_extra", "ys_extra", "worker_id")
#: Columns of the task frame that never come from ``ys``.
_NOT_OUTPUTS = frozenset({"worker_id", "condition", "state", "keys"})


class _Watcher(Rush):
    """A controller that reads and stops workers, but does not announce itself."""

    _ANNOUNCES = False


@dataclass
class _Delta:
    """What one refresh changed."""

    version: int
    start: int  # position (in finishing order) of the first new finished task
    values: dict[str, list]  # objective -> its values of the new finished tasks
    throughput: list[list[float]]  # new [time, tasks/s] points
    log: list[dict]  # new log records
    errors_changed: bool


@dataclass
class _State:
    """What the pages show, replaced as a whole by each refresh (readers take it under
    the lock and use it without)."""

    version: int = 0
    summary: NetworkSummary | None = None
    workers: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    n_finished: int = 0  # finished tasks read so far
    objectives: list[str] = field(default_factory=list)
    problem: str | None = None  # why the last refresh failed, for the page


class NetworkWatch:
    """Reads one network for the dashboard (one thread, however many pages watch)."""

    def __init__(self, network_id: str, config: RedisConfig,
                 refresh_seconds: float = REFRESH_SECONDS, idle_seconds: float = IDLE_SECONDS
                 ) -> None:
        self.network_id = network_id
        self.config = config
        self.refresh_seconds = refresh_seconds
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()  # guards _state, _deltas, _throughput, _log
        self._controller_lock = threading.Lock()  # one thread at a time on the controller
        self._tasks_lock = threading.Lock()
        self._listeners: set[Callable[[], None]] = set()
        self._wake = threading.Event()
        self._closed = False
        self._ready = threading.Event()
        self._last_wanted = time.monotonic()
        self._generation = 0
        self._connect()
        self._blank()
        self._thread = threading.Thread(target=self._run, name=f"rush-dashboard-{network_id}",
                                        daemon=True)
        self._thread.start()

    def _connect(self) -> None:
        """A fresh controller (at start, and after a reset of the network)."""
        self._controller = _Watcher(self.network_id, self.config)
        client = self._controller.connector
        self._index = NetworkIndex(client)
        self._registry = WorkerRegistry(client, self._controller.keys, Scripts(client), self.config)

    def _blank(self, version: int = 0) -> None:
        """Forget what was read (at start, and after a reset of the network)."""
        self._state = _State(version)
        self._deltas: collections.deque[_Delta] = collections.deque(maxlen=DELTAS_KEPT)
        self._throughput: collections.deque[list[float]] = collections.deque(maxlen=THROUGHPUT_POINTS)
        self._done: collections.deque[tuple[float, int]] = collections.deque()
        self._log: collections.deque[dict] = collections.deque(maxlen=LOG_RECORDS)
        self._log_cursors: dict[str, int] = {}
        self._finished_by: collections.Counter[str] = collections.Counter()
        self._origins: dict[str, bool] = {}  # column -> whether it holds a ys field
        self._columns: set[str] = set()  # every column of the finished tasks so far
        self._values: dict[str, list] = {}  # objective -> its value for each finished task
        self._generation += 1  # a join of the task frame in flight is void
        self._frame: Any = None  # the finished tasks joined so far (pandas)
        self._parts: list[Any] = []  # ... and the parts read since, to join when asked
        self._crash_marks: tuple = ()
        self._table: tuple[Any, Any] = (None, None)  # ((version, states), the task table)
        self._full_text: tuple[Any, str] = (None, "")  # ((version, objective), snapshot JSON)

    # -- who watches ---------------------------------------------------------------

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the watch's thread) after each refresh; the network is
        read while anyone listens."""
        with self._lock:
            self._listeners.add(callback)
        self.touch()

    def unlisten(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.discard(callback)
        self._last_wanted = time.monotonic()

    def touch(self) -> None:
        """Someone asked about the network: read it (now, if it was idle)."""
        self._last_wanted = time.monotonic()
        self._wake.set()

    def _wanted(self) -> bool:
        return bool(self._listeners) or time.monotonic() - self._last_wanted < self.idle_seconds

    def wait_ready(self, timeout: float) -> bool:
        """Block until the first refresh is done (True) or ``timeout`` s pass."""
        self.touch()
        return self._ready.wait(timeout)

    # -- reading -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            if not self._wanted():
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            started = time.monotonic()
            self._refresh_logged()
            self._wake.wait(max(0.0, self.refresh_seconds - (time.monotonic() - started)))
            self._wake.clear()

    def _refresh_logged(self) -> None:
        try:
            try:
                self.refresh()
            except RushNetworkLostError:
                logger.info("dashboard: network %r was reset; watching it afresh", self.network_id)
                self._restart()
                self.refresh()
        except (RushError, ConnectionError, OSError) as e:
            self._set_problem(f"{type(e).__name__}: {e}")
        except Exception as e:  # keep watching: the page shows what went wrong
            logger.exception("dashboard: reading network %r failed", self.network_id)
            self._set_problem(f"{type(e).__name__}: {e}")

    def _set_problem(self, problem: str) -> None:
        with self._lock:  # a new version without a delta: pages get a full snapshot
            self._state = dataclasses.replace(self._state, version=self._state.version + 1,
                                              problem=problem)
        self._ready.set()
        self.notify()

    def _restart(self) -> None:
        with self._controller_lock:
            old = self._controller
            self._connect()
            with self._lock:
                summary = self._state.summary
                self._blank(self._state.version + 1)  # every page is behind: a full snapshot
                self._state.summary = summary  # until the refresh that follows
            old.close()

    def refresh(self) -> None:
        """Read what changed and publish it to the pages (the watch's thread calls it)."""
        with self._controller_lock:
            summary = self._index.summary(self.network_id)
            new = self._controller.fetch_new_tasks(FINISHED_FIELDS)  # only the new tasks
            info = self._registry.info()
            activity = self._registry.activity([r["worker_id"] for r in info])
            crash_marks = (summary.n_crashed, tuple(r["state"] for r in info))
            crashes = (parse(self._registry.crashes()) if crash_marks != self._crash_marks
                       else None)
            new_log = self._read_logs(info, activity)
            objectives = self._objectives(new)
        old = self._state
        start = old.n_finished
        values = {o: numbers(new[o]) if o in new.columns else [None] * len(new)
                  for o in objectives}
        if len(new):
            self._finished_by.update(new["worker_id"].dropna().value_counts().to_dict())
        errors = old.errors if crashes is None else [_error_row(c) for c in crashes]
        last_error = {e["worker_id"]: e["message"] for e in errors}
        workers = [self._worker_row(r, a, last_error) for r, a in zip(info, activity)]
        points = self._throughput_point(summary.n_done)
        with self._lock:
            version = old.version + 1
            self._state = _State(version, summary, workers, errors, start + len(new), objectives)
            if len(new):
                self._parts.append(new)
            for objective, added in values.items():  # a new objective: None before it
                self._values.setdefault(objective, [None] * start).extend(added)
            self._crash_marks = crash_marks
            self._throughput.extend(points)
            self._log.extend(new_log)
            self._deltas.append(_Delta(version, start, values, points, new_log,
                                       crashes is not None))
        self._ready.set()
        self.notify()

    def notify(self) -> None:
        """Call every listener (after a refresh; and when the dashboard stops)."""
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback()

    def _objectives(self, new: "pd.DataFrame") -> list[str]:
        """The objectives: the numeric columns that hold a ``ys`` field, in the order they
        appeared (one stays one). A column seen for the first time is attributed by
        reading the ``ys`` of one task that has it (one round trip, only when new columns
        appear)."""
        self._columns.update(new.columns)
        unseen = [c for c in new.columns if c not in self._origins and c not in _NOT_OUTPUTS]
        samples: dict[str, str] = {}
        for column in unseen:
            row = new[column].first_valid_index()
            if row is not None:
                samples[column] = new.at[row, "keys"]
        if samples:
            keys = list(dict.fromkeys(samples.values()))
            outputs = dict(zip(keys, self._controller.read_hashes(keys, "ys", flatten=False)))
            for column, key in samples.items():
                ys = outputs[key].get("ys") or {}
                self._origins[column] = (column in ys and f"ys.{column}" not in self._columns) \
                    or (column.startswith("ys.") and column[3:] in ys)
        known = list(self._values)
        numeric = [c for c in new.columns if self._origins.get(c) and new[c].dtype.kind in "iuf"]
        return list(dict.fromkeys([*known, *numeric]))

    def finished_frame(self) -> "pd.DataFrame":
        """Every finished task read so far (the parts read since the last call joined now)."""
        with self._lock:
            parts, self._parts = self._parts, []
            frame, generation = self._frame, self._generation
        if parts:
            joined = parts[0]
            for part in parts[1:]:
                joined = frames.append(joined, part)
            frame = frames.append(frame, joined)
            with self._lock:
                if generation == self._generation:  # else the network was reset meanwhile
                    self._frame = frame
        if frame is None:
            return frames.empty_frame(FINISHED_FIELDS)
        return frame

    def _read_logs(self, info: list[dict], activity: Sequence[WorkerActivity]) -> list[dict]:
        """The log records written since the last refresh (at the start, the last
        ``LOG_RECORDS`` of each worker), oldest first."""
        ids, starts = [], []
        for row, act in zip(info, activity):
            worker_id = row["worker_id"]
            start = self._log_cursors.get(worker_id, max(0, act.log_length - LOG_RECORDS))
            if act.log_length > start:
                ids.append(worker_id)
                starts.append(start)
        if not ids:
            return []
        records = []
        for worker_id, start, raw in zip(ids, starts, self._registry.read_logs(ids, starts)):
            self._log_cursors[worker_id] = start + len(raw)
            for text in raw:
                try:
                    record = json.loads(text)
                except ValueError:
                    continue  # not a record of ours
                records.append({"worker_id": worker_id, "timestamp": record.get("timestamp", 0.0),
                                "level": record.get("level", ""), "logger": record.get("logger", ""),
                                "msg": str(record.get("msg", ""))})
        records.sort(key=lambda r: r["timestamp"])
        return records[-LOG_RECORDS:]

    def _worker_row(self, info: dict, activity: WorkerActivity, last_error: dict[str, str]
                    ) -> dict:
        worker_id = info["worker_id"]
        return {"worker_id": worker_id, "state": info["state"], "hostname": info["hostname"],
                "pid": info["pid"], "remote": info["remote"], "heartbeat": info["heartbeat"],
                "heartbeat_age": activity.heartbeat_idle if info["heartbeat"] else None,
                "finished": self._finished_by.get(worker_id, 0),
                "last_error": last_error.get(worker_id)}

    def _throughput_point(self, n_done: int) -> list[list[float]]:
        """A new ``[time, tasks/s]`` point when a second has passed since the last one."""
        now = time.monotonic()
        self._done.append((now, n_done))
        while len(self._done) > 2 and now - self._done[1][0] >= THROUGHPUT_WINDOW:
            self._done.popleft()
        (t0, n0), (t1, n1) = self._done[0], self._done[-1]
        if t1 - t0 < 1.0:
            return []
        with self._lock:
            last = self._throughput[-1][0] if self._throughput else 0.0
        wall = time.time()
        return [[round(wall, 3), round(max(0, n1 - n0) / (t1 - t0), 3)]] if wall - last >= 1.0 else []

    # -- what pages get --------------------------------------------------------------

    def message(self, version: int | None, objective: str | None) -> tuple[int, str] | None:
        """The JSON update for a page at ``version`` (``None``: none yet): a full snapshot,
        or the deltas since; ``None`` when it is up to date or nothing was read yet."""
        with self._lock:
            state = self._state
            if not self._ready.is_set() or version == state.version:
                return None
            if version is not None:
                deltas = [d for d in self._deltas if d.version > version]
                if deltas and deltas[0].version == version + 1 \
                        and deltas[-1].version == state.version:
                    return state.version, json.dumps(self._delta(state, deltas, objective))
            cached_key, cached_text = self._full_text
            if cached_key == (state.version, objective):
                return state.version, cached_text
            throughput = list(self._throughput)
            log = list(self._log)
        text = json.dumps(self._full(state, throughput, log, objective))
        with self._lock:  # many pages opening at once share it
            self._full_text = ((state.version, objective), text)
        return state.version, text

    def _head(self, state: _State, objective: str | None) -> dict:
        chosen = objective if objective in state.objectives else \
            (state.objectives[0] if state.objectives else None)
        summary = state.summary
        return {"network_id": self.network_id, "version": state.version,
                "where": self.config.redacted_url, "problem": state.problem,
                "summary": summary_json(summary) if summary is not None else None,
                "workers": state.workers, "objectives": state.objectives, "objective": chosen}

    def _full(self, state: _State, throughput: list, log: list, objective: str | None) -> dict:
        out = self._head(state, objective)
        chosen = out["objective"]
        with self._lock:
            values = list(self._values.get(chosen, ())) if chosen is not None else []
        out.update(type="full", throughput=throughput, log=log, errors=state.errors,
                   trace={"start": 0, "values": values})
        return out

    def _delta(self, state: _State, deltas: list[_Delta], objective: str | None) -> dict:
        out = self._head(state, objective)
        chosen = out["objective"]
        values: list = []
        for d in deltas:
            values += d.values.get(chosen, [])
        out.update(type="delta", throughput=[p for d in deltas for p in d.throughput],
                   log=[r for d in deltas for r in d.log],
                   errors=state.errors if any(d.errors_changed for d in deltas) else None,
                   trace={"start": deltas[0].start, "values": values})
        return out

    def page_view(self) -> tuple[dict, list[dict]]:
        """The summary and the worker rows a page is rendered with: read now (one pipeline
        and one script call), with the tasks finished per worker as far as known."""
        # not under the controller's lock: these readers keep no state, and a page must not
        # wait for a first read of a large network
        summary = self._index.summary(self.network_id)
        info = self._registry.info()
        activity = self._registry.activity([r["worker_id"] for r in info])
        with self._lock:
            errors = self._state.errors
        last_error = {e["worker_id"]: e["message"] for e in errors}
        return summary_json(summary), [self._worker_row(r, a, last_error)
                                       for r, a in zip(info, activity)]

    # -- tasks and actions ---------------------------------------------------------

    def tasks(self, query: TaskQuery) -> dict:
        """One page of tasks (see ``tasks.select``): running, queued and failed ones first,
        then the finished ones, newest first. The table is made once per refresh and set
        of states, whichever page asks; queued, running and failed tasks are read then."""
        self.touch()
        with self._tasks_lock:  # one page makes the table; the others wait and take it
            with self._lock:
                version = self._state.version
            key = (version, query.states)
            if self._table[0] != key:
                self._table = (key, self._make_table(query.states))
            table = self._table[1]
        return select(table, query)

    def _make_table(self, states: Sequence[str]) -> "pd.DataFrame":
        import pandas as pd

        finished = self.finished_frame()
        parts = [finished.iloc[:0].assign(state="finished")]
        if set(states) - {"finished"}:
            with self._controller_lock:
                others = self._controller.fetch_tasks_with_state(
                    states=["running", "queued", "failed"])
            parts.append(others[others["state"].isin(states)])
        if "finished" in states:
            parts.append(finished.iloc[::-1].assign(state="finished"))
        parts = [p for p in parts if len(p)] or parts[:1]
        table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        return table.reset_index(drop=True)

    def stop_workers(self, action: Any, worker_ids: Any) -> list[str]:
        """Kill or terminate running workers (``Rush.stop_workers``) after checking the
        request; ``BadRequest`` (nothing changed) for a bad action, an unknown worker or
        one that is not running."""
        if action not in ("kill", "terminate"):
            raise BadRequest(f"action must be 'kill' or 'terminate', got {action!r}")
        if not isinstance(worker_ids, list) or not worker_ids \
                or not all(isinstance(w, str) for w in worker_ids):
            raise BadRequest("worker_ids must be a non-empty list of worker ids (strings)")
        with self._controller_lock:
            states = self._registry.states()
            unknown = [w for w in worker_ids if w not in states]
            if unknown:
                raise BadRequest(f"no worker {', '.join(map(repr, unknown))} in network "
                                 f"{self.network_id!r}")
            idle = [f"{w!r} is {states[w]}" for w in worker_ids
                    if states[w] != WorkerState.RUNNING.value]
            if idle:
                raise BadRequest(f"only running workers can be stopped: {', '.join(idle)}")
            self._controller.stop_workers(action, worker_ids)
        self.touch()
        return list(worker_ids)

    def close(self) -> None:
        """Stop the thread and close the controller's connections."""
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=10)
        with self._controller_lock:
            self._controller.close()


def summary_json(summary: NetworkSummary) -> dict:
    """A network's summary for a page (every worker state, with zeros)."""
    workers = {s.value: summary.workers.get(s.value, 0) for s in WorkerState}
    workers.update(summary.workers)
    return {"network_id": summary.network_id, "exists": summary.exists,
            "tasks": summary.tasks, "workers": workers,
            "n_crashed": summary.n_crashed, "last_activity": summary.last_activity}


def _without_activity(networks: list[dict]) -> list[dict]:
    return [{k: v for k, v in n.items() if k != "last_activity"} for n in networks]


def _error_row(crash: Crash) -> dict:
    return jsonable({"worker_id": crash.worker_id, "timestamp": crash.timestamp,
                     "type": crash.type, "message": crash.message, "traceback": crash.traceback,
                     "task_key": crash.task_key})


class NetworkList:
    """Every network of the server with its summary (one pipeline), read every
    ``refresh_seconds`` while a page listens."""

    def __init__(self, index: NetworkIndex, refresh_seconds: float = 2.0) -> None:
        self._index = index
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._listeners: set[Callable[[], None]] = set()
        self._wake = threading.Event()
        self._closed = False
        self.version = 0
        self._networks: list[dict] = []
        self._thread = threading.Thread(target=self._run, name="rush-dashboard-networks",
                                        daemon=True)
        self._thread.start()

    def read(self) -> list[dict]:
        """Read the networks now (most recently active first)."""
        summaries = self._index.summaries(self._index.network_ids())
        networks = [summary_json(s) for s in summaries if s.exists]
        with self._lock:
            # last activity moves on by itself (an idle time): not a change worth an event
            if _without_activity(networks) != _without_activity(self._networks) or not self.version:
                self.version += 1
            self._networks = networks
        self.notify()
        return networks

    def notify(self) -> None:
        """Call every listener."""
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback()

    def latest(self) -> tuple[int, list[dict]]:
        with self._lock:
            return self.version, list(self._networks)

    def listen(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.add(callback)
        self._wake.set()

    def unlisten(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.discard(callback)

    def _run(self) -> None:
        while not self._closed:
            if self._listeners:
                try:
                    self.read()
                except (RushConnectionError, OSError) as e:
                    logger.warning("dashboard: could not list the networks: %s", e)
                except Exception:
                    logger.exception("dashboard: listing the networks failed")
            self._wake.wait(self.refresh_seconds)
            self._wake.clear()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=10)
