"""Task and worker states, and the condition messages rush writes, declared once."""

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

#: Condition of fail_tasks() and push_failed_tasks() when none is given.
DEFAULT_CONDITION = {"message": "Task failed"}
#: Message of the tasks failed by stop_workers(type="kill").
KILLED_MESSAGE = "Worker was killed"
#: Message of the tasks of a worker found lost, or whose loop crashed.
LOST_MESSAGE = "Worker has crashed or was killed"
#: Message of the tasks of a supervised local worker whose controller process ended.
CONTROLLER_EXITED_MESSAGE = "Controller of the worker exited"
#: Message of the tasks a worker took and neither finished nor failed before its loop ended.
LEFT_UNFINISHED_MESSAGE = "Worker left its loop without finishing this task"
#: Message of the tasks moved to failed by empty_queue().
REMOVED_MESSAGE = "Removed from queue"
#: Message of a task stopped for running past its timeout (``timeout`` in seconds).
TIMEOUT_MESSAGE = "Task timed out after {timeout:g} s"
#: Message of a task with retries that failed on its last attempt.
RETRIES_MESSAGE = "Task failed after {attempts} attempts: {message}"
