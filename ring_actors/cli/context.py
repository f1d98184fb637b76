"""`context [configs|list|current-context|current|user-token|use NAME]` (spec: cli.md §3.5, §8).

Improvements over Ring (cli.md §8): `configs` reads the same config file as every
other command (so `--config` is honoured), `current-context` prints just the
name, and `use NAME` marks a context `current = true` in that file.
"""

from __future__ import annotations

import argparse
import re

import tomli

from ring_actors.cli.client import Session
from ring_actors.cli.common import add_command
from ring_actors.cli.output import CliError, ExitCode, render_table

__all__ = ["register", "set_current_context"]

PARAMS = ("configs", "list", "current-context", "current", "user-token", "use")

_HEADER = re.compile(r"^\s*\[(?P<inner>[^\[\]]+)\]\s*(#.*)?$")
_CONTEXT_TABLE = re.compile(r"""^\s*contexts\s*\.\s*(?P<name>"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*$""")
_CURRENT = re.compile(r"^(?P<indent>\s*)current\s*=.*$")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        sub,
        "context",
        "show or switch client contexts",
        run_context,
        description=(
            "Contexts are the [contexts.<name>] tables of config.toml: where the server is.\n\n"
            "  context [configs|list]         table of the contexts (the default)\n"
            "  context current-context        name of the context in use\n"
            "  context user-token             the token that would be sent\n"
            "  context use NAME               make NAME the current context (edits config.toml)"
        ),
        aliases=("contexts",),
    )
    parser.add_argument(
        "param",
        nargs="?",
        default="configs",
        choices=PARAMS,
        metavar="PARAM",
        help="configs (default), current-context, user-token or use",
    )
    parser.add_argument("name", nargs="?", help="context name for `use`")


def run_context(args: argparse.Namespace, session: Session) -> int:
    param = args.param
    if param in ("configs", "list"):
        return _list(session)
    if param in ("current-context", "current"):
        session.out.print(session.context.name)
        return 0
    if param == "user-token":
        token = session.token()
        if token is None:
            raise CliError(
                f"no token for context '{session.context.name}': run `ring-actors login` or set RING_TOKEN",
                ExitCode.AUTH,
            )
        session.out.print(token)
        return 0
    if not args.name:
        raise CliError("usage: ring-actors context use NAME")
    return _use(session, args.name)


def _list(session: Session) -> int:
    settings = session.settings
    contexts = settings.contexts or {settings.context.name: settings.context}
    rows = [
        [name, ctx.host, ctx.base_url, "*" if name == settings.context.name else ""] for name, ctx in contexts.items()
    ]
    session.out.print(render_table(("Name", "Host", "API", "Current"), rows))
    return 0


def _use(session: Session, name: str) -> int:
    path = session.settings.config_path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CliError(f"{path} does not exist: create it with `ring-actors init`") from exc
    if name not in session.settings.contexts:
        known = ", ".join(sorted(session.settings.contexts)) or "none"
        raise CliError(f"context '{name}' is not defined in {path} (defined: {known})")
    updated = set_current_context(text, name)
    path.write_text(updated, encoding="utf-8")
    session.out.success(f"Switched to context '{name}'")
    return 0


def set_current_context(text: str, name: str) -> str:
    """`text` (a config.toml) with `current = true` on context `name` and false on the others.

    Line-based so comments and layout survive. The result is parsed back to check it.

    Raises:
        CliError: when the file would not mark exactly `name` as current.
    """
    lines = text.splitlines()
    out: list[str] = []
    table: str | None = None  # context name of the table we are in, if any
    for line in lines:
        header = _HEADER.match(line)
        if header and not line.lstrip().startswith("[["):
            inner = _CONTEXT_TABLE.match(header["inner"])
            table = inner["name"].strip("\"'") if inner else None
            out.append(line)
            if table == name:
                out.append("current = true")
            continue
        current = _CURRENT.match(line)
        if table is not None and current:
            if table != name:
                out.append(f"{current['indent']}current = false")
            continue  # the selected table already got its line right after the header
        out.append(line)
    result = "\n".join(out) + ("\n" if text.endswith("\n") or not text else "")
    try:
        parsed = tomli.loads(result)
    except tomli.TOMLDecodeError as exc:
        raise CliError(f"cannot update the config file safely: {exc}") from exc
    contexts = parsed.get("contexts") or {}
    currents = [n for n, t in contexts.items() if isinstance(t, dict) and t.get("current")]
    if currents != [name]:
        raise CliError("cannot update the config file safely: set `current = true` on the context by hand")
    return result
