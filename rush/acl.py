"""A least-privilege Redis user for one network (``rush acl``).

The user may touch only the keys of its network (``~{<id>}:*``: a network id holds no
glob character and the brace closes it, so the pattern reaches no other network, however
its id begins) and its pub/sub channel, and may run only the commands rush sends, in
Python and in its Lua scripts (Redis checks the calls of a script against the caller's
rules too). Left out on purpose:

- ``rush:networks``, the server-wide index of networks: writing it would let the user
  see and change the entries of every network. rush skips it when refused, so a network
  run by such a user is missing from the listing of ``rush status`` (``rush status
  --network-id <id>`` still shows it);
- KEYS, SCAN, FLUSHALL/FLUSHDB (rush never scans the keyspace or flushes), CONFIG (it
  can read the server's password and write files), INFO, CLIENT: ``snapshot_schedule``
  and ``redis_info()`` need an administrator's user. redis-py's ``CLIENT SETINFO`` on
  connecting is refused and ignored (the command only exists from Redis 7.2 on).

On a Redis Cluster, ACL users are per node: the line goes to every master. The user
may run the few read-only commands redis-py's cluster client learns the cluster with.

The rules use the syntax of Redis 6.2 (``~`` and ``&`` patterns, ``+command|subcommand``),
which later versions accept too.
"""

from __future__ import annotations

import re
import secrets

from .keys import NetworkKeys

#: The commands rush runs: as the controller, a worker, a heartbeat process, ``reset()``,
#: ``rush status --network-id``, and inside its Lua scripts. (A test runs a full job as
#: such a user; some of these serve paths it does not take: SELECT for a db other than 0,
#: GETDEL for remote launch tokens, HSETNX for a worker killed while it starts, LPUSH,
#: ZREM and ZRANGEBYSCORE for retries, resent kills and timeouts.)
COMMANDS = (
    # connection and transactions
    "ping", "select", "multi", "exec",
    # scripts (run by SHA, loaded again after a restart of the server)
    "evalsha", "script|load",
    # pub/sub: the network's channel of events
    "subscribe", "publish",
    # strings and keys
    "get", "set", "getdel", "exists", "del", "unlink", "expire", "rename", "object|idletime",
    # hashes
    "hget", "hset", "hsetnx", "hmget", "hgetall", "hvals", "hkeys", "hlen", "hdel", "hincrby",
    # lists
    "lpush", "rpush", "lpop", "lrange", "llen", "lrem", "blmove", "blpop",
    # sets
    "sadd", "srem", "smembers", "sismember", "smismember", "scard", "spop",
    # sorted sets (timeouts' deadlines)
    "zadd", "zrem", "zscore", "zrange", "zrangebyscore",
    # Redis's clock (deadlines of timeouts)
    "time",
    # what redis-py's cluster client reads to learn the nodes, slots and key positions
    # (a Redis Cluster; harmless on a single server)
    "cluster|info", "cluster|slots", "cluster|shards", "command",
)
_USER_NAME = re.compile(r"[A-Za-z0-9._-]+")


def default_user(network_id: str) -> str:
    """The user name ``rush acl`` gives when none is asked for."""
    return "rush-" + network_id


def acl_rules(network_id: str) -> list[str]:
    """The ACL rules of a least-privilege user of network ``network_id`` (no password)."""
    keys = NetworkKeys(network_id)  # checks the id
    return [f"~{keys.pattern()}", "resetchannels", f"&{keys.events}", "-@all",
            *(f"+{c}" for c in COMMANDS)]


def acl_setuser(network_id: str, user: str | None = None, password: str | None = None
                ) -> str:
    """The ``ACL SETUSER`` line of a least-privilege user for one network: ``user``
    (default ``rush-<network_id>``) with ``password`` (default: a new random one)."""
    rules = acl_rules(network_id)  # checks the id first
    name = default_user(network_id) if user is None else user
    if not isinstance(name, str) or _USER_NAME.fullmatch(name) is None:
        raise ValueError(f"user may hold only letters, digits, '-', '_' and '.', got {name!r}")
    secret = secrets.token_urlsafe(24) if password is None else password
    if not secret or any(c.isspace() for c in secret):
        raise ValueError("password must be non-empty and hold no whitespace")
    return " ".join(["ACL", "SETUSER", name, "reset", "on", f">{secret}", *rules])
