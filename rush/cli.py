"""The ``rush`` command: ``rush worker``, ``rush status``, ``rush demo`` and ``rush server``."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .worker_options import WorkerOptions
SERVER_ACTIONS = ("start", "stop", "status", "path")
#: Exit code of ``rush server status`` when the server is not running (as LSB init scripts).
NOT_RUNNING = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rush", description="Decentralized parallel computing over Redis.")
    sub = parser.add_subparsers(dest="command", required=True)

    worker = sub.add_parser("worker", help="run one worker of a network (its start arguments "
                                           "must have been stored by a controller)")
    worker.add_argument("--network-id", required=True)
    worker.add_argument("--worker-id")
    _url_argument(worker)
    WorkerOptions.add_cli_arguments(worker)
    worker.add_argument("--remote", action="store_true",
                        help="register as a remote worker (the commands of worker_script() do)")
    worker.add_argument("--supervisor-pid", type=int, help=argparse.SUPPRESS)
    worker.add_argument("--incarnation", help=argparse.SUPPRESS)

    status = sub.add_parser("status", help="task counts and the worker table of a network")
    status.add_argument("--network-id", required=True)
    _url_argument(status)

    demo = sub.add_parser("demo", help="random search on Branin with local workers")
    demo.add_argument("--workers", type=int, default=4)
    demo.add_argument("--evaluations", type=int, default=2000)
    _url_argument(demo)

    server = sub.add_parser("server", help="the local rush server: one persistent Redis per "
                                           "user, in $RUSH_HOME")
    server.add_argument("action", choices=SERVER_ACTIONS,
                        help="start it (with its networks as they were), stop it (its data "
                             "stays), status (exit code 3 when it is not running), or path: "
                             "print its directory ($RUSH_HOME)")
    return parser


def _url_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="Redis URL, or 'local' for the local rush server "
                                      "(default: $RUSH_REDIS_URL, $REDIS_URL, 127.0.0.1:6379, "
                                      "else the local rush server); prefer the environment "
                                      "variable: a URL here shows in the process list")


def _config(url: str | None):
    from .config import LOCAL_URL, RedisConfig, env_url

    if url is None and env_url() == LOCAL_URL:
        url = LOCAL_URL  # for `rush worker` too, which otherwise reads the variable itself
    if url == LOCAL_URL:
        from .local_redis import local_server

        return local_server()
    return RedisConfig(url=url) if url else None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # the CLI reports errors in one line, never a traceback of ours
        from .errors import WorkerStoppedError

        if isinstance(e, WorkerStoppedError):
            return 0
        print(f"rush {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        if args.command == "worker":
            import traceback

            traceback.print_exc()
        return 1


def _worker(args: argparse.Namespace) -> int:
    from .config import RedisConfig, config_from_environment
    from .worker_ids import new_worker_id
    from .worker_process import run_worker

    config = _config(args.url) or config_from_environment() or RedisConfig()
    run_worker(args.network_id, args.worker_id or new_worker_id(), config,
               WorkerOptions.from_cli(args), remote=args.remote,
               supervisor_pid=args.supervisor_pid, incarnation=args.incarnation)
    return 0


def _status(args: argparse.Namespace) -> int:
    from . import rsh

    with rsh(args.network_id, config=_config(args.url)) as controller:
        print(controller)
        info = controller.worker_info
        print(info.to_string(index=False) if len(info) else "no workers registered")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(n_workers=args.workers, n_evaluations=args.evaluations, config=_config(args.url))


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


_COMMANDS = {"worker": _worker, "status": _status, "demo": _demo, "server": _server}
