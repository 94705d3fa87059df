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
``P task:<key>``               hash     a task's fields (xs, ys, ..., each pickled,
                                        signed for its key and field when the network
                                        has a secret; worker_id as text)
``P hashes``                   set      keys of the task hashes write_hashes wrote
``P worker_running:<wid>``     set      keys of the tasks a worker took (may keep keys
                                        another writer moved on: check ``running``)
``P pending:<wid>``            list     a task between a worker's pop and its claim
``P epoch``                    string   a token made when the network was made: if it
                                        changes or vanishes, the network is gone
``P queue:<wid>``              list     a worker's own queue (priority tasks), served
                                        before the shared queue
``P priority``                 set      every task key waiting in a worker's own queue
``P deadlines:<wid>``          zset     running tasks of a worker that have a timeout ->
                                        deadline (Redis time, s); may keep entries of
                                        tasks that moved on (check ``running``)
``P terminate_on_idle``        string   set: workers leave once the queues are empty
``P worker_states``            hash     worker id -> state
``P incarnations``             hash     worker id -> token of its current start
``P worker:<wid>``             hash     a worker's registration (pid, hostname, ...)
``P terminate``                set      worker ids told to terminate
``P heartbeat:<wid>``          string   kept alive by the worker's heartbeat process
``P kill:<wid>``               list     the heartbeat blocks on it; a push kills
``P launch:<wid>``             string   one-time token of a remote worker's launch
``P log:<wid>``                list     JSON log records of a worker
``P step:<wid>``               hash     the last write step of a worker and its reply
``P worker_errors``            hash     worker id -> JSON record of its loop's crash
                                        (the latest, if it crashed more than once)
``P start_args``               string   id of the latest start arguments
``P start_args:<id>``          string   pickled start arguments (content id; signed)
``P start_args_ids``           set      ids of every stored start arguments
``P worker_start_args``        hash     worker id -> id of its start arguments
``P trash``                    hash     reset id -> what that reset still has to free
``P trash:<id>:<n>``           any      keys a reset moved away, freed in slices
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
``worker_running_prefix``, ``own_queue_prefix``, ``deadlines_prefix``), passed in ARGV.
Task fields that scripts read are stored as text: ``worker_id``, and the numbers
``timeout``, ``max_retries`` and ``attempts`` (see ``serialization.TEXT_FIELDS``).

Every key is reachable from the fixed keys: task hashes from ``tasks`` and ``hashes``,
per-worker keys from the worker ids in ``worker_states`` and ``worker_start_args``,
start arguments from ``start_args_ids``. So ``reset()`` finds every key without scanning
the keyspace. A new key must be added to ``fixed_keys``/``task_data_keys`` or to
``worker_prefixes``/``worker_task_prefixes``.
"""

from __future__ import annotations

from .validation import check_network_id

#: Sorted set of the network ids of the server (see the module docstring).
NETWORKS = "rush:networks"


class NetworkKeys:
    """Names of the Redis keys of one network (see the module docstring)."""

    __slots__ = (
        "network_id", "prefix", "all_tasks", "queued", "running", "finished", "failed",
        "task_prefix", "worker_running_prefix", "pending_prefix", "worker_states",
        "worker_prefix", "terminate", "events", "start_args", "worker_start_args",
        "hashes", "start_args_ids", "trash", "epoch", "incarnations",
        "own_queue_prefix", "priority", "deadlines_prefix", "terminate_on_idle",
        "worker_errors",
    )

    def __init__(self, network_id: str) -> None:
        # the id is checked here, where every key is made: no id can reach another network
        self.network_id = check_network_id(network_id)
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
        self.incarnations = p + "incarnations"
        self.epoch = p + "epoch"
        self.worker_prefix = p + "worker:"
        self.terminate = p + "terminate"
        self.events = p + "events"
        self.start_args = p + "start_args"
        self.worker_start_args = p + "worker_start_args"
        self.hashes = p + "hashes"
        self.start_args_ids = p + "start_args_ids"
        self.trash = p + "trash"
        self.own_queue_prefix = p + "queue:"
        self.priority = p + "priority"
        self.deadlines_prefix = p + "deadlines:"
        self.terminate_on_idle = p + "terminate_on_idle"
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

    def own_queue(self, worker_id: str) -> str:
        """A worker's own queue of priority tasks."""
        return self.own_queue_prefix + worker_id

    def deadlines(self, worker_id: str) -> str:
        """Deadlines of the worker's running tasks that have a timeout."""
        return self.deadlines_prefix + worker_id

    def heartbeat(self, worker_id: str) -> str:
        """Key kept alive (with an expiry) by the worker's heartbeat process."""
        return self.prefix + "heartbeat:" + worker_id

    def kill(self, worker_id: str) -> str:
        """List the heartbeat process blocks on; a push there kills the worker."""
        return self.prefix + "kill:" + worker_id

    def log(self, worker_id: str) -> str:
        """List of JSON log records of a worker."""
        return self.prefix + "log:" + worker_id

    def step(self, worker_id: str) -> str:
        """Hash recording a worker's last write step and its reply (for resent calls)."""
        return self.prefix + "step:" + worker_id

    def launch(self, worker_id: str) -> str:
        """One-time token of the latest launch of a remote worker."""
        return self.prefix + "launch:" + worker_id

    def start_args_blob(self, args_id: str) -> str:
        """Pickled start arguments with id ``args_id`` (a content hash)."""
        return self.prefix + "start_args:" + args_id

    def start_args_prefix(self) -> str:
        """Prefix of the start arguments blobs (``start_args_blob`` without the id)."""
        return self.prefix + "start_args:"

    def trash_prefix(self, reset_id: str) -> str:
        """Prefix of the keys a reset moved away (``+ <n>``)."""
        return self.prefix + "trash:" + reset_id + ":"

    # -- what reset() deletes ------------------------------------------------------------

    def task_data_keys(self) -> list[str]:
        """The fixed keys holding task data (``reset(workers=False)`` empties them)."""
        return [self.all_tasks, self.queued, self.running, self.finished, self.failed,
                self.hashes, self.priority, self.terminate_on_idle]

    def fixed_keys(self) -> list[str]:
        """Every fixed key of the network."""
        return [*self.task_data_keys(), self.worker_states, self.incarnations, self.epoch,
                self.terminate, self.start_args, self.worker_start_args, self.start_args_ids,
                self.worker_errors]

    def worker_task_prefixes(self) -> list[str]:
        """Prefixes (``+ worker id``) of the per-worker keys holding task data."""
        return [self.pending_prefix, self.worker_running_prefix, self.own_queue_prefix,
                self.deadlines_prefix]

    def worker_prefixes(self) -> list[str]:
        """Prefixes (``+ worker id``) of every per-worker key."""
        return [*self.worker_task_prefixes(), self.worker_prefix, self.heartbeat(""),
                self.kill(""), self.log(""), self.launch(""), self.step("")]

    def pattern(self) -> str:
        """Glob pattern matching every key of the network and nothing else (an id holds no
        glob character, and the closing brace ends it): for ACLs, tests and tools; rush
        itself never scans the keyspace."""
        return self.prefix + "*"
