"""Entry point of the `ring-actors` command (console script and `python -m ring_actors.cli.main`).

`ring-actors` accepts Ring's command line (`ring`), with `serve` for Ring's
`server start` (which is accepted too). Commands are async functions run under
trio; failures are reported once, here, as `error: <message>` on stderr with
the exit codes of cli.md §4.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import sys
from collections.abc import Sequence

import httpx
import trio

from ring_actors import __version__
from ring_actors.cli import (
    apply,
    auth,
    completions,
    configs,
    context,
    deployment,
    doctor,
    init,
    namespace,
    node,
    secret,
    serve,
    token,
    user,
    webhook,
)
from ring_actors.cli.client import ApiError, Session
from ring_actors.cli.output import CliError, CliExit, Console

__all__ = ["build_parser", "main", "run"]

_EPILOG = """\
environment:
  RING_CONFIG_DIR   directory of config.toml, auth.json and secret-key (~/.config/kemeter/ring)
  RING_CONFIG_FILE  config.toml to read (overridden by --config)
  RING_TOKEN        API token to use instead of the one stored by `login`
  NO_COLOR          set to disable colours

exit status: 0 ok, 1 error, 2 not authorized, 3 server unreachable, 4 not found, 5 conflict

Run `ring-actors <command> --help` for the options of a command."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ring-actors",
        description="ring-actors: run containers and micro-VMs on one host (Ring-compatible CLI).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-c", "--context", metavar="NAME", help="context from config.toml (default: the current one)")
    parser.add_argument("--config", metavar="PATH", help="config.toml to read instead of $RING_CONFIG_DIR/config.toml")
    parser.add_argument("-V", "--version", action="version", version=f"ring-actors {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    for module in (
        serve,
        auth,
        apply,
        deployment,
        namespace,
        configs,
        secret,
        user,
        token,
        webhook,
        node,
        context,
        init,
        doctor,
        completions,
    ):
        module.register(sub)
    return parser


def run(argv: Sequence[str] | None = None, *, transport: httpx.AsyncBaseTransport | None = None) -> int:
    """Parse `argv`, run the command, return the exit status (never raises for user errors).

    `transport` replaces the network (tests pass an `httpx.MockTransport`).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    session = Session(args, parser, transport=transport)
    try:
        code = trio.run(handler, args, session) if inspect.iscoroutinefunction(handler) else handler(args, session)
    except BaseException as exc:
        return _report(_leaf(exc), session.err)
    return int(code or 0)


def _leaf(exc: BaseException) -> BaseException:
    """The meaningful exception inside trio's exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        interesting = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        exc = (interesting or list(exc.exceptions))[0]
    return exc


def _report(exc: BaseException, err: Console) -> int:
    if isinstance(exc, CliExit):
        return exc.code
    if isinstance(exc, CliError):
        err.error(f"error: {exc.message}")
        return exc.code
    if isinstance(exc, ApiError):
        detail = f": {exc.detail}" if exc.detail else ""
        err.error(f"error: {exc.method} {exc.path}: request failed ({exc.status}){detail}")
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, BrokenPipeError):
        # The reader (e.g. `| head`) left: silence the interpreter's final flush of stdout too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    if isinstance(exc, SystemExit):
        return int(exc.code or 0) if isinstance(exc.code, int) or exc.code is None else 1
    raise exc


def main() -> None:
    """Console-script entry point."""
    code = run()
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
