"""The key space of a network: every Redis key rush uses is built here, and only here.

All keys share the hash tag ``{network_id}`` so a network lives in one Redis Cluster
slot and a Lua script may touch any of its keys.
"""

from __future__ import annotations


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class NetworkKeys:
    """Names of the Redis keys of one network."""

    __slots__ = (
        "network_id", "prefix", "task_prefix", "all_tasks", "queued", "running",
        "finished", "failed", "worker_states", "worker_prefix", "events",
        "start_args", "worker_start_args", "terminate",
    )

    def __init__(self, network_id: str) -> None:
        self.network_id = network_id
        self.prefix = "{" + network_id + "}:"
        p = self.prefix
        self.task_prefix = p + "task:"  # + task key -> hash of pickled fields
        self.all_tasks = p + "tasks"  # list, creation order
        self.queued = p + "queued"  # list, FIFO
        self.running = p + "running"  # set
        self.finished = p + "finished"  # list, finishing order
        self.failed = p + "failed"  # set
        self.worker_states = p + "worker_states"  # hash worker_id -> state
        self.worker_prefix = p + "worker:"  # + worker_id -> registration hash
        self.events = p + "events"  # pub/sub channel: task and worker events
        self.start_args = p + "start_args"  # id of the latest start arguments
        self.worker_start_args = p + "worker_start_args"  # hash worker_id -> start args id
        self.terminate = p + "terminate"  # set of worker ids told to terminate

    def task(self, key: str) -> str:
        """Hash holding the fields of task ``key``."""
        return self.task_prefix + key

    def worker(self, worker_id: str) -> str:
        """Registration hash of a worker."""
        return self.worker_prefix + worker_id

    def worker_running(self, worker_id: str) -> str:
        """Set of the tasks a worker is running."""
        return self.prefix + "worker_running:" + worker_id

    def pending(self, worker_id: str) -> str:
        """List holding a task between a worker's pop and its mark-running."""
        return self.prefix + "pending:" + worker_id

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

    def task_pattern(self) -> str:
        """SCAN pattern matching every task hash of the network."""
        return _glob_escape(self.task_prefix) + "*"

    def pending_pattern(self) -> str:
        """SCAN pattern matching every pending list of the network."""
        return _glob_escape(self.pending("")) + "*"
