"""The bare-Redis baseline: the same Redis work as rush, written by hand with redis-py.

It runs rush's own Lua scripts (the text of ``rush/lua/*.lua``, registered with
SCRIPT LOAD, called with EVALSHA) with the KEYS/ARGV layout ``rush/store.py`` builds,
and pickles values the same way (pickle protocol 5, absent fields as ""). What is left
between rush and this baseline is rush's Python-side overhead: argument checks, row
building, wrappers.
"""

from __future__ import annotations

import pickle
import uuid

import redis

from rush.keys import NetworkKeys
from rush.scripts import SOURCES

PROTOCOL = 5
ALL_FIELDS = ("xs", "ys", "xs_extra", "ys_extra", "worker_id", "condition")
SPREAD = frozenset({"xs", "ys", "xs_extra", "ys_extra"})


def lua_source(name: str) -> str:
    """The text rush registers for script ``name`` (its file after ``_lib.lua``)."""
    return SOURCES[name]


class Bare:
    """One network driven by hand: a worker id registered as running, and the SHAs."""

    def __init__(self, client: redis.Redis, network_id: str, worker_id: str) -> None:
        self.client = client
        k = NetworkKeys(network_id)  # only the key names; setup, not timed
        self.keys = k
        self.worker_id = worker_id
        self.all_tasks, self.queued, self.running = k.all_tasks, k.queued, k.running
        self.finished, self.states, self.events = k.finished, k.worker_states, k.events
        self.terminate = k.terminate
        self.prefix = k.task_prefix
        self.own_running = k.worker_running(worker_id)
        self.incarnations, self.epoch, self.step = k.incarnations, k.epoch, k.step(worker_id)
        self.own_queue, self.priority = k.own_queue(worker_id), k.priority
        self.deadlines, self.idle = k.deadlines(worker_id), k.terminate_on_idle

        self.create_sha = client.script_load(lua_source("create_tasks"))
        self.move_sha = client.script_load(lua_source("move_tasks"))
        self.claim_sha = client.script_load(lua_source("claim_task"))
        client.hset(self.states, worker_id, "running")
        # join like rush does: an existing worker or network keeps its token
        client.hsetnx(self.incarnations, worker_id, uuid.uuid4().hex)
        self.incarnation = client.hget(self.incarnations, worker_id).decode()
        client.set(self.epoch, uuid.uuid4().hex, nx=True)
        self.epoch_value = client.get(self.epoch).decode()

    def delete(self) -> None:
        """Remove every key of this network (not timed)."""
        for key in self.client.scan_iter(match="{" + self.keys.network_id + "}*", count=1000):
            self.client.delete(key)

    # -- W1: push_running_tasks + finish_tasks, one task at a time ------------------

    def w1(self, n: int, xs: dict, ys: dict) -> None:
        evalsha = self.client.evalsha
        create, move, wid = self.create_sha, self.move_sha, self.worker_id
        all_tasks, running, finished = self.all_tasks, self.running, self.finished
        states, events, prefix = self.states, self.events, self.prefix
        terminate, own = self.terminate, self.own_running
        incarnations, epoch, inc, ep = self.incarnations, self.epoch, self.incarnation, self.epoch_value
        for i in range(n):
            key = str(uuid.uuid4())
            evalsha(create, 7, all_tasks, running, states, incarnations, epoch, terminate, own,
                    wid, inc, "running", ep, "", "running", "", prefix,
                    2, "xs", "xs_extra", key, pickle.dumps(xs, PROTOCOL), "")
            _, discarded = evalsha(move, 7, running, finished, states, incarnations, epoch,
                                   terminate, own, wid, inc, "running", ep, "", "list",
                                   events, prefix, 2, "ys", "ys_extra", key,
                                   pickle.dumps(ys, PROTOCOL), "")
            if discarded:
                raise RuntimeError(f"bare W1: task {key} was not running")

    def w1_pipeline(self, n: int, xs: dict, ys: dict) -> None:
        """The issue's literal baseline: a MULTI pipeline (HSET, RPUSH all, SADD running)
        to create, then the move script. Informational: it skips the worker-state check."""
        client, move, wid = self.client, self.move_sha, self.worker_id
        for _ in range(n):
            key = str(uuid.uuid4())
            pipe = client.pipeline(transaction=True)
            pipe.hset(self.prefix + key, mapping={"xs": pickle.dumps(xs, PROTOCOL),
                                                  "worker_id": wid})
            pipe.rpush(self.all_tasks, key)
            pipe.sadd(self.running, key)
            pipe.execute()
            client.evalsha(move, 7, self.running, self.finished, self.states, self.incarnations,
                           self.epoch, self.terminate, self.own_running, wid,
                           self.incarnation, "running", self.epoch_value, "", "list",
                           self.events, self.prefix, 2, "ys", "ys_extra", key,
                           pickle.dumps(ys, PROTOCOL), "")

    # -- W2: push_tasks N, then pop_task + finish_tasks ------------------------------

    def w2_push(self, n: int, xs: dict) -> list[str]:
        keys = [str(uuid.uuid4()) for _ in range(n)]
        args: list = ["", "", "running", self.epoch_value, "", "list", "", self.prefix, 2,
                      "xs", "xs_extra"]
        for key in keys:
            args += (key, pickle.dumps(xs, PROTOCOL), "")
        self.client.evalsha(self.create_sha, 7, self.all_tasks, self.queued, self.states,
                            self.incarnations, self.epoch, self.terminate, self.own_running,
                            *args)
        return keys

    def w2_drain(self, n: int, ys: dict) -> None:
        evalsha, claim, move, wid = self.client.evalsha, self.claim_sha, self.move_sha, self.worker_id
        queued, running, finished = self.queued, self.running, self.finished
        states, events, prefix = self.states, self.events, self.prefix
        terminate, own, step = self.terminate, self.own_running, self.step
        incarnations, epoch, inc, ep = self.incarnations, self.epoch, self.incarnation, self.epoch_value
        own_queue, priority, deadlines, idle = self.own_queue, self.priority, self.deadlines, self.idle
        pending = self.keys.pending(wid)
        loads = pickle.loads
        for i in range(n):
            # rush's pop also asks for the task's seed (returned when the task has one)
            reply = evalsha(claim, 13, pending, queued, running, states, incarnations, epoch,
                            terminate, own, step, own_queue, priority, deadlines, idle,
                            wid, inc, "running", ep, f"{inc}.{2 * i}", prefix, "", "xs", "seed")
            got = reply[1]
            key = got[0].decode()
            task = {"key": key, "xs": loads(got[1])}
            if got[2] is not None:
                task["seed"] = loads(got[2])
            evalsha(move, 7, running, finished, states, incarnations, epoch, terminate, own,
                    wid, inc, "running", ep, "", "list", events, prefix,
                    2, "ys", "ys_extra", task["key"], pickle.dumps(ys, PROTOCOL), "")

    # -- W3: the floor of fetching finished tasks -----------------------------------

    def fetch_lua(self, start: int = 0):
        """rush's own read script called by hand (``read_tasks.lua``, same ARGV) +
        unpickling + ``DataFrame.from_records``: what is left is rush's Python overhead."""
        import pandas as pd

        if not hasattr(self, "read_sha"):
            self.read_sha = self.client.script_load(lua_source("read_tasks"))
        keys, _, values, _ = self.client.evalsha(self.read_sha, 2, self.epoch, self.finished,
                                                 self.epoch_value, "l", start, -1, self.prefix,
                                                 *ALL_FIELDS)
        return pd.DataFrame.from_records(_records(keys, _rows(values))) if keys else pd.DataFrame()

    def fetch_floor(self, start: int = 0):
        """Pipelined HMGET of the finished hashes from ``start`` + unpickling +
        ``DataFrame.from_records``."""
        import pandas as pd

        keys = self.client.lrange(self.finished, start, -1)
        pipe = self.client.pipeline(transaction=False)
        prefix = self.prefix.encode()
        for key in keys:
            pipe.hmget(prefix + key, ALL_FIELDS)
        replies = pipe.execute()
        recs = _records(keys, replies)
        return pd.DataFrame.from_records(recs) if recs else pd.DataFrame()


def _rows(values: list, width: int = len(ALL_FIELDS)) -> list[list]:
    return [values[i:i + width] for i in range(0, len(values), width)]


def _records(keys: list[bytes], rows: list) -> list[dict]:
    """Flat records from one row per key (ALL_FIELDS order), written out by hand."""
    loads = pickle.loads
    recs = []
    for key, (xs, ys, xs_extra, ys_extra, worker_id, condition) in zip(keys, rows):
        rec: dict = {}
        if xs is not None:
            rec.update(loads(xs))
        if ys is not None:
            rec.update(loads(ys))
        if xs_extra is not None:
            rec.update(loads(xs_extra))
        if ys_extra is not None:
            rec.update(loads(ys_extra))
        # like rush, a requested non-spread field is always a column (None when absent)
        rec["worker_id"] = None if worker_id is None else worker_id.decode()
        rec["condition"] = None if condition is None else loads(condition)
        rec["keys"] = key.decode()
        recs.append(rec)
    return recs
