"""The Lua scripts of ``rush/lua``: loaded once, registered once per client, called by SHA.

Each script file starts with its KEYS/ARGV contract; ``_lib.lua`` holds the helpers and
conventions they share: the helpers a script calls are put in front of it when it is
loaded.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import Any, Sequence

import redis
import redis.cluster

SCRIPT_NAMES = ("create_tasks", "move_tasks", "claim_task", "stop_worker", "empty_queue",
                "read_tasks", "worker_info", "trash_keys", "empty_trash", "set_worker_state",
                "sweep_pending", "register_worker", "heartbeat", "send_kill",
                "create_priority_tasks", "timed_out", "stop_workers", "move_and_claim",
                "move_and_create", "record_crash", "mark_unregistered", "next_deadline")
_FUNCTION = re.compile(r"^local function (\w+)\(", re.M)


def _helpers(lib: str) -> tuple[str, list[tuple[str, str]]]:
    """``_lib.lua`` cut into its conventions (the text before the first helper) and its
    helpers, each ``(name, text)`` with the comment above it, in file order."""
    starts = [m.start() for m in _FUNCTION.finditer(lib)]
    cuts = []
    for start in starts:  # a helper's text begins with the comment lines right above it
        lines = lib[:start].split("\n")[:-1]
        while lines and lines[-1].startswith("--"):
            lines.pop()
        cuts.append(len("\n".join(lines)) + 1 if lines else 0)
    head = lib[:cuts[0]] if cuts else lib
    parts = [lib[a:b] for a, b in zip(cuts, cuts[1:] + [len(lib)])]
    return head, [(_FUNCTION.search(p).group(1), p) for p in parts]  # type: ignore[union-attr]


def _with_helpers(head: str, helpers: list[tuple[str, str]], body: str) -> str:
    """The script ``body`` after the helpers it calls (directly or through another helper):
    Redis runs a script's whole text on every call, so each unused helper would cost a
    closure per call."""
    used: set[str] = set()
    todo = [body]
    while todo:
        text = todo.pop()
        for name, part in helpers:
            if name not in used and re.search(rf"\b{name}\(", text):
                used.add(name)
                todo.append(part)
    return head + "".join(p for name, p in helpers if name in used) + body


def _load_sources() -> dict[str, str]:
    folder = resources.files("rush") / "lua"
    head, helpers = _helpers((folder / "_lib.lua").read_text(encoding="utf-8"))
    return {name: _with_helpers(head, helpers,
                                (folder / f"{name}.lua").read_text(encoding="utf-8"))
            for name in SCRIPT_NAMES}


SOURCES = _load_sources()
_SHAS = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in SOURCES.items()}


class Scripts:
    """Calls the scripts on one client by SHA; loads them again if Redis forgot them
    (a restarted server, a cluster node that joined or took over a slot), so a call never
    fails for that."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def call(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA the script ``name``."""
        # execute_command directly: what redis-py's evalsha() does, minus two call frames
        # and two copies of the argument tuple on every task write.
        try:
            return self._client.execute_command("EVALSHA", _SHAS[name], len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.load_all()
            return self._client.execute_command("EVALSHA", _SHAS[name], len(keys), *keys, *args)

    def queue(self, pipe: Any, name: str, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Add an EVALSHA of the script ``name`` to a pipeline (a NOSCRIPT error comes back
        as its reply)."""
        pipe.execute_command("EVALSHA", _SHAS[name], len(keys), *keys, *args)

    def load_all(self) -> None:
        """Register every script on the server (one round trip); on a cluster, on each
        master (one round trip per master: a cluster pipeline cannot carry SCRIPT LOAD)."""
        client = self._client
        if not isinstance(client, redis.cluster.RedisCluster):
            self._load(client)
            return
        unreachable = []
        for node in client.get_primaries():
            try:
                self._load(client.get_redis_connection(node))
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                # a master that is down now gets them on its first NOSCRIPT; the network
                # on it waits for it like any command does
                unreachable.append(node)
        if len(unreachable) == len(client.get_primaries()):
            raise redis.exceptions.ConnectionError("no master of the cluster answers")

    @staticmethod
    def _load(node: redis.Redis) -> None:
        pipe = node.pipeline(transaction=False)
        for src in SOURCES.values():
            pipe.script_load(src)
        pipe.execute()
