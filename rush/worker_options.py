"""Options of a worker process, declared once: validated in one place, and turned into
``start_worker`` keyword arguments or ``rush worker`` command-line arguments and back.

Where Redis is travels separately, in the environment (``config_environment``), so
that no password is ever on a command line.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from .plan import plan_value
from .validation import check_buffer_size, check_heartbeat, check_log_dir, check_thresholds


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker runs: logging to Redis, heartbeat, and where its stderr/stdout go."""

    lgr_thresholds: dict[str, str] | None = None
    lgr_buffer_size: int = 0
    heartbeat_period: float | None = None
    heartbeat_expire: float | None = None
    message_log: str | None = None
    output_log: str | None = None

    @classmethod
    def checked(cls, lgr_thresholds: Any = None, lgr_buffer_size: Any = None,
                heartbeat_period: Any = None, heartbeat_expire: Any = None,
                message_log: Any = None, output_log: Any = None) -> "WorkerOptions":
        """Validated options (``TypeError``/``ValueError`` naming the argument); unset
        logging options come from the plan."""
        thresholds = lgr_thresholds if lgr_thresholds is not None else plan_value("lgr_thresholds")
        buffer_size = lgr_buffer_size if lgr_buffer_size is not None else plan_value("lgr_buffer_size", 0)
        period, expire = check_heartbeat(heartbeat_period, heartbeat_expire)
        return cls(lgr_thresholds=check_thresholds(thresholds) if thresholds else None,
                   lgr_buffer_size=check_buffer_size(buffer_size),
                   heartbeat_period=period, heartbeat_expire=expire,
                   message_log=check_log_dir("message_log", message_log),
                   output_log=check_log_dir("output_log", output_log))

    def with_default_heartbeat(self, period: float) -> "WorkerOptions":
        """These options, with a heartbeat of ``period`` seconds unless one is set."""
        if self.heartbeat_period is not None:
            return self
        period_, expire = check_heartbeat(period, None)
        return replace(self, heartbeat_period=period_, heartbeat_expire=expire)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``rush.start_worker``."""
        return asdict(self)

    def to_cli(self, include_logs: bool = True) -> list[str]:
        """Arguments for ``rush worker`` (``include_logs=False`` leaves the log files to the
        launcher, which opens them itself)."""
        args: list[str] = []
        if self.lgr_thresholds:
            args += ["--lgr-thresholds", json.dumps(self.lgr_thresholds)]
        if self.lgr_buffer_size:
            args += ["--lgr-buffer-size", str(self.lgr_buffer_size)]
        if self.heartbeat_period is not None:
            args += ["--heartbeat-period", repr(self.heartbeat_period),
                     "--heartbeat-expire", repr(self.heartbeat_expire)]
        if include_logs and self.message_log:
            args += ["--message-log", self.message_log]
        if include_logs and self.output_log:
            args += ["--output-log", self.output_log]
        return args

    @staticmethod
    def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
        """Declare the options on the ``rush worker`` parser."""
        parser.add_argument("--lgr-thresholds", type=json.loads, metavar="JSON",
                            help='loggers to store in Redis, e.g. \'{"rush": "info"}\'')
        parser.add_argument("--lgr-buffer-size", type=int, default=0)
        parser.add_argument("--heartbeat-period", type=float)
        parser.add_argument("--heartbeat-expire", type=float)
        parser.add_argument("--message-log", help="directory for message_<worker_id>.log (stderr)")
        parser.add_argument("--output-log", help="directory for output_<worker_id>.log (stdout)")

    @classmethod
    def from_cli(cls, args: argparse.Namespace) -> "WorkerOptions":
        """Validated options from parsed ``rush worker`` arguments."""
        return cls.checked(args.lgr_thresholds, args.lgr_buffer_size, args.heartbeat_period,
                           args.heartbeat_expire, args.message_log, args.output_log)
