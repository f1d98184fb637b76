"""`serve` (Ring's `server start`): run the server in the foreground (spec: config.md §4, §5).

`ring-actors server start` is accepted as well, so scripts written for Ring only
swap the binary name. `--dashboard` is accepted and ignored with a warning: this
build has no embedded dashboard.
"""

from __future__ import annotations

import argparse
import logging
import os

from ring_actors.cli.client import Session
from ring_actors.cli.common import add_command, add_group, default_subcommand

__all__ = ["register"]

_DESCRIPTION = (
    "Run the ring-actors server in the foreground with the selected context's config:\n"
    "the API on <host>:<api.port>, the enabled runtimes, and the supervisors.\n"
    "Needs RING_SECRET_KEY (see `ring-actors init`). SIGTERM/SIGINT stop the server and\n"
    "leave workloads running; the next start adopts them again."
)


def _add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-degraded",
        action="store_true",
        help="start even if some enabled runtime is unreachable (it stays unavailable)",
    )
    parser.add_argument("--dashboard", action="store_true", help="accepted for Ring compatibility; no dashboard here")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = add_command(sub, "serve", "run the server (Ring: `ring server start`)", run_serve, description=_DESCRIPTION)
    _add_flags(serve)
    group, children = add_group(sub, "server", "run the server (alias of `serve`)", None)
    start = add_command(children, "start", "run the server (same as `serve`)", run_serve, description=_DESCRIPTION)
    _add_flags(start)
    default_subcommand(group, start)


def _configure_logging() -> None:
    level_name = (os.environ.get("RUST_LOG") or "info").split(",")[0].split("=")[-1].upper()
    level = getattr(logging, {"WARN": "WARNING", "TRACE": "DEBUG"}.get(level_name, level_name), logging.INFO)
    if os.environ.get("RING_LOG_FORMAT") == "json":
        fmt = '{"time":"%(asctime)s","level":"%(levelname)s","target":"%(name)s","message":"%(message)s"}'
    else:
        fmt = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt)
    # One line per engine request (pings, listings, event streams) would drown the server's own
    # log at the default level; they stay visible with RUST_LOG=debug.
    if level > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)


def run_serve(args: argparse.Namespace, session: Session) -> int:
    from ring_actors.server import run_server

    if getattr(args, "dashboard", False):
        session.err.warning("Warning: --dashboard is not supported by ring-actors; starting without a dashboard")
    _configure_logging()
    return run_server(session.settings, allow_degraded=getattr(args, "allow_degraded", False))
