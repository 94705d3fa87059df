"""rush: decentralized, asynchronous parallel computing over Redis.

Workers run their own loop and share task state (queued, running, finished, failed)
through one Redis database; a controller (``rsh()``) starts, watches and stops them.

Security: task values, worker loops and start arguments are pickled into Redis, and
unpickling runs code. Without a network secret, whoever can write to that Redis can run
code in your controller and workers. With one (``RedisConfig(secret=...)``,
``RUSH_SECRET``; the local rush server has its own), every payload is signed for the key
it is stored at and checked before it is unpickled (``RushSecurityError``). Protect the
Redis too (password/ACL, see ``rush acl``; TLS; bind address).
"""

from __future__ import annotations


from .attach import report_existing_network
from .config import RedisConfig, redis_config
from .controller import Rush
from .errors import (RushConnectionError, RushError, RushSecurityError, RushWorkerError,
                     WorkerStoppedError)
from .local_redis import local_server
from .plan import remove_rush_plan, rush_available, rush_config, rush_plan
from .seeds import task_seed
from .server import RedisServer
from .states import TaskState, WorkerState
from .worker import RushWorker
from .worker_process import start_worker

__version__ = "0.1.0"


def rsh(network_id: str | None = None, config: RedisConfig | None = None,
        seed: int | None = None, network: str | None = None) -> Rush:
    """Connect to a network as its controller.

    ``network`` is an alias of ``network_id``; ``None`` makes a new id. With ``seed`` (an
    int >= 0) every task this controller pushes gets a reproducible ``seed`` field,
    derived from ``seed`` and the task's position (see ``rush.task_seed``). Without
    ``config`` rush uses the plan's, ``$RUSH_REDIS_URL``/``$REDIS_URL``, a Redis on
    127.0.0.1:6379, or else the local rush server (one persistent Redis per user,
    started on first use; ``RUSH_REDIS_URL=local`` skips the 6379 probe). Raises
    ``RushConnectionError`` when Redis does not answer within about 5 seconds. When the
    network already has tasks or workers, says so at INFO, with counts by state.
    """
    if network_id is not None and network is not None and network_id != network:
        raise ValueError("give network_id or network, not both")
    controller = Rush(network_id if network_id is not None else network, config, seed)
    try:
        report_existing_network(controller)
    except BaseException:
        controller.close()
        raise
    return controller


__all__ = [
    "RedisConfig", "RedisServer", "Rush", "RushConnectionError", "RushError",
    "RushSecurityError", "RushWorker", "RushWorkerError", "TaskState", "WorkerState",
    "WorkerStoppedError", "local_server",
    "redis_config", "remove_rush_plan", "rsh", "rush_available", "rush_config", "rush_plan",
    "start_worker", "task_seed",
]
