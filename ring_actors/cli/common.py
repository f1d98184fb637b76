"""Shared argparse plumbing: the per-command global options, `-o/--output`, prompts.

Every subcommand parser gets `--context` and `--config` too (long forms only:
`-c` is `--container` under `deployment logs`), so global options work before or
after the command as with Ring's clap parser. Their default is SUPPRESS so a
subcommand never overwrites a value given before it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any

from ring_actors.cli.output import OUTPUT_FORMATS

__all__ = [
    "GLOBAL_OPTIONS",
    "add_command",
    "add_group",
    "add_output_arg",
    "confirm",
    "default_subcommand",
    "prompt",
    "stdin_is_tty",
]

Handler = Callable[..., Any]


def _global_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options")
    group.add_argument("--context", default=argparse.SUPPRESS, metavar="NAME", help="context from config.toml to use")
    group.add_argument(
        "--config", default=argparse.SUPPRESS, metavar="PATH", help="config.toml to read instead of the default"
    )
    return parent


GLOBAL_OPTIONS = _global_options()


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    handler: Handler | None,
    *,
    description: str | None = None,
    epilog: str | None = None,
    aliases: tuple[str, ...] = (),
) -> argparse.ArgumentParser:
    """A subcommand parser with the global options, a help line and its handler."""
    parser = sub.add_parser(
        name,
        help=help_text,
        description=description or help_text,
        epilog=epilog,
        aliases=list(aliases),
        parents=[GLOBAL_OPTIONS],
        formatter_class=_Formatter,
    )
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def add_group(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    default: Handler | None,
    *,
    description: str | None = None,
    aliases: tuple[str, ...] = (),
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    """A command group (`deployment`, `user`, ...) whose bare form runs `default`."""
    parser = add_command(sub, name, help_text, default, description=description, aliases=aliases)
    if default is None:
        parser.set_defaults(handler=lambda args, session: _group_help(parser))
    children = parser.add_subparsers(dest=f"{name}_command", metavar="<subcommand>", title="subcommands")
    return parser, children


def default_subcommand(group: argparse.ArgumentParser, child: argparse.ArgumentParser) -> None:
    """Make the bare group (`ring deployment`) run `child` with its default options."""
    defaults = {
        action.dest: action.default
        for action in child._actions
        if action.dest not in ("help",) and action.default is not argparse.SUPPRESS
    }
    defaults["handler"] = child.get_default("handler")
    group.set_defaults(**defaults)


def _group_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def add_output_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        default="table",
        help="output format: table (default) for people, json (the API body verbatim) or yaml",
    )


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (ValueError, OSError):
        return False


def prompt(label: str, *, secret: bool = False, default: str | None = None) -> str:
    """Ask on the terminal (stderr), masking secrets; `default` when the answer is empty."""
    suffix = f" [{default}]" if default else ""
    if secret:
        answer = getpass.getpass(f"{label}{suffix}: ")
    else:
        sys.stderr.write(f"{label}{suffix}: ")
        sys.stderr.flush()
        answer = sys.stdin.readline()
        if not answer:
            raise EOFError
        answer = answer.rstrip("\n")
    return answer or (default or "")


def confirm(question: str) -> bool:
    """y/N question on the terminal."""
    try:
        answer = prompt(f"{question} [y/N]")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
