"""Task and worker states, declared once."""

from __future__ import annotations

from enum import Enum


class TaskState(str, Enum):
    """Where a task is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


class WorkerState(str, Enum):
    """What a worker is doing, as recorded in Redis."""

    RUNNING = "running"
    TERMINATED = "terminated"  # left its loop normally or was told to
    KILLED = "killed"  # stopped by stop_workers(type="kill")
    LOST = "lost"  # found dead by detect_lost_workers()


TASK_STATES: tuple[str, ...] = tuple(s.value for s in TaskState)
WORKER_STATES: tuple[str, ...] = tuple(s.value for s in WorkerState)
