"""The key space of a network: every Redis key rush uses is built here, and only here.

All keys share the hash tag ``{network_id}``, so a network lives in one Redis Cluster
slot and a Lua script may touch any of its keys. The schema, with ``P = "{<id>}:"``:

=============================  =======  ==============================================
key                            type     holds
=============================  =======  ==============================================
``P tasks``                    list     every task key, in creation order
``P queued``                   list     queued task keys, FIFO
``P running``                  set      running task keys
``P finished``                 list     finished task keys, in finishing order
``P failed``                   set      failed task keys
``P task:<key>``               hash     a task's fields (xs, ys, ..., each pickled;
                                        worker_id as text)
``P worker_running:<wid>``     set      keys of the tasks a worker took (may keep keys
                                        another writer moved on: check ``running``)
``P pending:<wid>``            list     a task between a worker's pop and its claim
``P worker_states``            hash     worker id -> state
``P worker:<wid>``             hash     a worker's registration (pid, hostname, ...)
``P terminate``                set      worker ids told to terminate
``P heartbeat:<wid>``          string   kept alive by the worker's heartbeat process
``P kill:<wid>``               list     the heartbeat blocks on it; a push kills
``P launch:<wid>``             string   one-time token of a remote worker's launch
``P log:<wid>``                list     JSON log records of a worker
``P worker_errors``            hash     worker id -> JSON record of its loop's crash
                                        (the latest, if it crashed more than once)
``P start_args``               string   id of the latest start arguments
``P start_args:<id>``          string   pickled start arguments (content id)
``P worker_start_args``        hash     worker id -> id of its start arguments
``P events``                   channel  pub/sub: "tasks" and "workers" events
=============================  =======  ==============================================

One key is server-wide, outside every network:

=============================  =======  ==============================================
``rush:networks``              zset     network id -> time of its last recorded
                                        activity (a controller attached, a worker
                                        registered, ended or crashed); ``reset()``
                                        removes the id. How ``rush status`` finds the
                                        networks without scanning the keyspace.
=============================  =======  ==============================================

Lua scripts get fixed keys through KEYS, and build the per-task and per-worker keys
from the prefixes above (``task_prefix``, ``worker_prefix``, ``pending_prefix``,
``worker_running_prefix``), passed in ARGV.
"""

from __future__ import annotations


#: Sorted set of the network ids of the server (see the module docstring).
NETWORKS = "rush:networks"


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class NetworkKeys:
    """Names of the Redis keys of one network (see the module docstring)."""

    __slots__ = (
        "network_id", "prefix", "all_tasks", "queued", "running", "finished", "failed",
        "task_prefix", "worker_running_prefix", "pending_prefix", "worker_states",
        "worker_prefix", "terminate", "events", "start_args", "worker_start_args",
        "worker_errors",
    )

    def __init__(self, network_id: str) -> None:
        self.network_id = network_id
        self.prefix = p = "{" + network_id + "}:"
        self.all_tasks = p + "tasks"
        self.queued = p + "queued"
        self.running = p + "running"
        self.finished = p + "finished"
        self.failed = p + "failed"
        self.task_prefix = p + "task:"
        self.worker_running_prefix = p + "worker_running:"
        self.pending_prefix = p + "pending:"
        self.worker_states = p + "worker_states"
        self.worker_prefix = p + "worker:"
        self.terminate = p + "terminate"
        self.events = p + "events"
        self.start_args = p + "start_args"
        self.worker_start_args = p + "worker_start_args"
        self.worker_errors = p + "worker_errors"

    def task(self, key: str) -> str:
        """Hash holding the fields of task ``key``."""
        return self.task_prefix + key

    def worker(self, worker_id: str) -> str:
        """Registration hash of a worker."""
        return self.worker_prefix + worker_id

    def worker_running(self, worker_id: str) -> str:
        """Set of the keys of the tasks a worker took."""
        return self.worker_running_prefix + worker_id

    def pending(self, worker_id: str) -> str:
        """List holding a task between a worker's pop and its claim."""
        return self.pending_prefix + worker_id

    def heartbeat(self, worker_id: str) -> str:
        """Key kept alive (with an expiry) by the worker's heartbeat process."""
        return self.prefix + "heartbeat:" + worker_id

    def kill(self, worker_id: str) -> str:
        """List the heartbeat process blocks on; a push there kills the worker."""
        return self.prefix + "kill:" + worker_id

    def log(self, worker_id: str) -> str:
        """List of JSON log records of a worker."""
        return self.prefix + "log:" + worker_id

    def launch(self, worker_id: str) -> str:
        """One-time token of the latest launch of a remote worker."""
        return self.prefix + "launch:" + worker_id

    def start_args_blob(self, args_id: str) -> str:
        """Pickled start arguments with id ``args_id`` (a content hash)."""
        return self.prefix + "start_args:" + args_id

    def pattern(self) -> str:
        """SCAN pattern matching every key of the network, orphans included."""
        return "{" + _glob_escape(self.network_id) + "}*"

    def task_data_patterns(self) -> list[str]:
        """SCAN patterns of the per-task and per-worker task keys (task hashes, pending
        lists, worker running sets)."""
        return [_glob_escape(p) + "*" for p in
                (self.task_prefix, self.pending_prefix, self.worker_running_prefix)]
