"""The ``rush`` command: ``rush worker``, ``rush status``, ``rush top``, ``rush dashboard``,
``rush demo``, ``rush server`` and ``rush acl``.

Each command is a pair: a function adding its parser, and a function running it
(``COMMANDS``). Errors a user can fix (no start arguments, a bad URL, an unknown
network, Redis unreachable) are one line on stderr and a non-zero exit, never a
traceback of ours; output piped into ``head`` ends quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from .worker_options import WorkerOptions

#: Exit code when the reader of our output went away (like a process killed by SIGPIPE).
BROKEN_PIPE_EXIT = 141
SERVER_ACTIONS = ("start", "stop", "status", "path")
#: Exit code of ``rush server status`` when the server is not running (as LSB init scripts).
NOT_RUNNING = 3


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="rush", description="Decentralized parallel computing over Redis.")
    parser.add_argument("--version", action="version", version=f"rush {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, _) in COMMANDS.items():
        add_arguments(sub, name)
    return parser


def _url_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="Redis URL, or 'local' for the local rush server "
                                      "(default: $RUSH_REDIS_URL, $REDIS_URL, 127.0.0.1:6379, "
                                      "else the local rush server); prefer the environment "
                                      "variable: a URL here shows in the process list")


def _config(url: str | None):
    from .config import LOCAL_URL, RedisConfig, env_secret, env_url

    if url is None and env_url() == LOCAL_URL:
        url = LOCAL_URL  # for `rush worker` too, which otherwise reads the variable itself
    if url == LOCAL_URL:
        from .local_redis import local_server

        return local_server()
    return RedisConfig(url=url, secret=env_secret()) if url else None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader left (``rush status | head``): send what is still buffered nowhere
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE_EXIT
    except Exception as e:  # the CLI reports errors in one line, never a traceback of ours
        from .errors import WorkerStoppedError

        if isinstance(e, WorkerStoppedError):
            return 0
        print(f"rush {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


# -- rush worker ---------------------------------------------------------------------

def _add_worker(sub: argparse._SubParsersAction, name: str) -> None:
    worker = sub.add_parser(name, help="run one worker of a network (its start arguments "
                                       "must have been stored by a controller)")
    worker.add_argument("--network-id", required=True)
    worker.add_argument("--worker-id")
    worker.add_argument("--start-args", metavar="ID",
                        help="id of the start arguments to run (default: the worker's own, "
                             "else the network's latest)")
    _url_argument(worker)
    WorkerOptions.add_cli_arguments(worker)
    worker.add_argument("--remote", action="store_true", help=argparse.SUPPRESS)
    worker.add_argument("--supervisor-pid", type=int, help=argparse.SUPPRESS)
    worker.add_argument("--incarnation", help=argparse.SUPPRESS)


def _worker(args: argparse.Namespace) -> int:
    from .config import RedisConfig, config_from_environment, env_secret
    from .errors import RushError
    from .validation import check_network_id, check_start_args_id
    from .worker_ids import new_worker_id
    from .worker_process import run_worker

    config = _config(args.url) or config_from_environment() or RedisConfig(secret=env_secret())
    options = WorkerOptions.from_cli(args)
    check_network_id(args.network_id)
    if args.start_args is not None:
        check_start_args_id(args.start_args)
    try:
        run_worker(args.network_id, args.worker_id or new_worker_id(), config, options,
                   remote=args.remote, supervisor_pid=args.supervisor_pid,
                   incarnation=args.incarnation, start_args=args.start_args)
    except RushError:
        raise  # start-up trouble a user fixes: one line
    except Exception:
        # the loop crashed (it is recorded in the network), or its start arguments could
        # not be loaded: the whole traceback, on the worker's stderr
        import traceback

        traceback.print_exc()
        return 1
    return 0


# -- rush status ---------------------------------------------------------------------

def _add_status(sub: argparse._SubParsersAction, name: str) -> None:
    status = sub.add_parser(name, help="every network of the server, or one network: "
                                       "workers, tasks, last activity")
    status.add_argument("--network-id", help="show this network (default: list them all)")
    _url_argument(status)


def _status(args: argparse.Namespace) -> int:
    from .connection import check_connection, connect
    from .plan import resolve_config
    from .status import status_text

    config = resolve_config(_config(args.url))
    check_connection(config)
    client = connect(config)
    try:
        text = status_text(client, config, args.network_id)
    finally:
        client.close()
    print(text, flush=True)
    return 0


# -- rush top ------------------------------------------------------------------------

def _add_top(sub: argparse._SubParsersAction, name: str) -> None:
    top = sub.add_parser(name, help="a live view of a network (needs rich: the [top] extra)")
    top.add_argument("--network-id", help="the network (default: the most recently active)")
    top.add_argument("--objective", help="output column whose best value is shown "
                                         "(default: the first numeric one)")
    direction = top.add_mutually_exclusive_group()
    direction.add_argument("--minimize", dest="minimize", action="store_true", default=True,
                           help="lower is better (the default)")
    direction.add_argument("--maximize", dest="minimize", action="store_false",
                           help="higher is better")
    _url_argument(top)


def _top(args: argparse.Namespace) -> int:
    from .connection import check_connection, connect
    from .plan import resolve_config
    from .top import require_rich, run_top

    require_rich()
    config = resolve_config(_config(args.url))
    check_connection(config)
    client = connect(config)
    try:
        return run_top(client, config, args.network_id, args.objective, args.minimize)
    finally:
        client.close()


# -- rush dashboard ------------------------------------------------------------------

def _add_dashboard(sub: argparse._SubParsersAction, name: str) -> None:
    dashboard = sub.add_parser(name, help="a live web page of the networks (needs the "
                                          "[dashboard] extra)")
    dashboard.add_argument("--network-id", help="the network the page opens on (default: "
                                                "the most recently active)")
    dashboard.add_argument("--host", default="127.0.0.1",
                           help="address to listen on (default 127.0.0.1: this machine only)")
    dashboard.add_argument("--port", type=int, default=8787, help="port (default 8787; 0: a free one)")
    _url_argument(dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    from .dashboard import require, serve

    require()
    try:
        serve(_config(args.url), args.network_id, args.host, args.port)
    except KeyboardInterrupt:  # Ctrl-C is how it stops (uvicorn raises it again once done)
        pass
    return 0


# -- rush demo -----------------------------------------------------------------------

def _add_demo(sub: argparse._SubParsersAction, name: str) -> None:
    demo = sub.add_parser(name, help="random search on Branin with local workers")
    demo.add_argument("--workers", type=int, default=4)
    demo.add_argument("--evaluations", type=int, default=2000)
    _url_argument(demo)


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(n_workers=args.workers, n_evaluations=args.evaluations, config=_config(args.url))


# -- rush server ---------------------------------------------------------------------

def _add_server(sub: argparse._SubParsersAction, name: str) -> None:
    server = sub.add_parser(name, help="the local rush server: one persistent Redis per "
                                       "user, in $RUSH_HOME")
    server.add_argument("action", choices=SERVER_ACTIONS,
                        help="start it (with its networks as they were), stop it (its data "
                             "stays), status (exit code 3 when it is not running), or path: "
                             "print its directory ($RUSH_HOME)")


def _server(args: argparse.Namespace) -> int:
    from .local_redis import LocalServer

    server = LocalServer()
    if args.action == "path":
        print(server.home)
    elif args.action == "start":
        server.start()
        print(server.status().describe())
    elif args.action == "stop":
        pid = server.stop()
        print(f"stopped the local rush server (pid {pid}); its data stays in {server.data_dir}"
              if pid is not None else server.status().describe())
    else:
        status = server.status()
        print(status.describe())
        return 0 if status.running else NOT_RUNNING
    return 0


# -- rush acl ------------------------------------------------------------------------

def _add_acl(sub: argparse._SubParsersAction, name: str) -> None:
    acl = sub.add_parser(name, help="print the ACL SETUSER line of a least-privilege Redis "
                                    "user for one network (only its keys and channel, only "
                                    "the commands rush runs)")
    acl.add_argument("--network-id", required=True)
    acl.add_argument("--user", help="the user's name (default: rush-<network id>)")


def _acl(args: argparse.Namespace) -> int:
    from .acl import acl_setuser

    line = acl_setuser(args.network_id, args.user)
    print(line, flush=True)
    print("rush acl: run the line above as an administrator (e.g. redis-cli < file), then "
          "connect as that user with the password it holds: "
          "redis://<user>:<password>@<host>:<port>/<db>. On a Redis Cluster, run it on every "
          "master (ACL users are per node) and connect with "
          "redis+cluster://<user>:<password>@<host>:<port>", file=sys.stderr)
    return 0


#: command -> (adds its parser, runs it)
COMMANDS: dict[str, tuple[Callable[[argparse._SubParsersAction, str], None],
                          Callable[[argparse.Namespace], int]]] = {
    "worker": (_add_worker, _worker),
    "status": (_add_status, _status),
    "top": (_add_top, _top),
    "dashboard": (_add_dashboard, _dashboard),
    "demo": (_add_demo, _demo),
    "server": (_add_server, _server),
    "acl": (_add_acl, _acl),
}
