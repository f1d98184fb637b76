"""`token create|list|revoke|rotate` (spec: cli.md §2, §3.8; api.md §13).

A new token is printed alone on stdout so `TOKEN=$(ring-actors token create ...)`
captures exactly it; the summary and the "won't be shown again" notice go to stderr.
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta
from typing import Any

import trio

from ring_actors.cli.client import ApiError, Session, describe_list_status, describe_status, render_failure
from ring_actors.cli.common import add_command, add_group, add_output_arg, confirm, default_subcommand, stdin_is_tty
from ring_actors.cli.output import CliError, CliExit, Console, format_time, now_utc, print_structured, render_table

__all__ = ["parse_expiry", "register", "token_status"]

KIND = "token"
_DURATION = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group, children = add_group(
        sub,
        "token",
        "create, list, revoke and rotate personal access tokens",
        None,
        description="Personal access tokens (ring_pat_...) for scripts and CI. Without a subcommand: `token list`.",
        aliases=("tokens",),
    )
    listing = add_command(children, "list", "list your tokens", run_list, aliases=("ls",))
    add_output_arg(listing)
    default_subcommand(group, listing)

    create = add_command(
        children,
        "create",
        "create a token (printed once, on stdout)",
        run_create,
        description=(
            "Create a personal access token. The token is printed alone on stdout (capture it\n"
            "with $(...)); a summary goes to stderr. It cannot be shown again."
        ),
        epilog=(
            "scopes: deployments:read deployments:write secrets:read secrets:write configs:read\n"
            "        configs:write namespaces:read namespaces:write volumes:read volumes:write\n"
            "        users:read users:write webhooks:read webhooks:write admin\n\n"
            "example:\n  export RING_TOKEN=$(ring-actors token create ci -s deployments:read -n prod -e 30d)"
        ),
    )
    create.add_argument("name", help="token name (label)")
    create.add_argument(
        "-s", "--scope", action="append", required=True, help="scope, e.g. deployments:read (repeatable)"
    )
    create.add_argument("-n", "--namespace", action="append", default=[], help="restrict to a namespace (repeatable)")
    create.add_argument(
        "-e", "--expires", metavar="N{d|h|m}", help="expire after N days, hours or minutes (default never)"
    )

    revoke = add_command(
        children,
        "revoke",
        "revoke a token",
        run_revoke,
        description="Revoke a token. Asks for confirmation on a terminal; elsewhere --yes is required.",
    )
    revoke.add_argument("id", help="token id")
    revoke.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    rotate = add_command(
        children,
        "rotate",
        "replace a token by a new one (printed on stdout)",
        run_rotate,
        description="Revoke a token and create a new one with the same name, scopes, namespaces and expiry.",
    )
    rotate.add_argument("id", help="token id")


def parse_expiry(spec: str, now: datetime | None = None) -> str:
    """`30d` / `12h` / `90m` -> absolute RFC 3339 UTC time.

    Raises:
        CliError: for anything else.
    """
    match = _DURATION.match(spec.strip())
    if not match:
        raise CliError(f"invalid duration '{spec}': expected a number and a unit d, h or m (e.g. 30d, 12h, 90m)")
    amount, unit = int(match[1]), match[2]
    moment = (now or now_utc()) + timedelta(**{_UNITS[unit]: amount})
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def token_status(token: dict[str, Any], now: datetime | None = None) -> str:
    """`revoked`, `expired` or `active`."""
    if token.get("revoked_at"):
        return "revoked"
    expire_at = token.get("expire_at")
    if expire_at:
        stamp = format_time(expire_at)
        try:
            moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return "expired"  # an unparseable expiry is rejected by the server
        current = (now or now_utc()).replace(tzinfo=None)
        if moment <= current:
            return "expired"
    return "active"


async def run_list(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        try:
            response = await api.request("GET", "/tokens")
        except ApiError as exc:
            raise CliError(describe_list_status(exc.status, "tokens"), exc.exit_code) from exc
    if args.output != "table":
        print_structured(response.json(), args.output, raw=response.text)
        return 0
    rows = []
    for t in response.json() or []:
        status = token_status(t)
        rows.append(
            [
                t.get("id", ""),
                t.get("name", ""),
                t.get("token_prefix", ""),
                ",".join(t.get("scopes") or []),
                ",".join(t.get("namespaces") or []) or "all",
                (status, "green" if status == "active" else "red"),
                format_time(t.get("created_at")),
                format_time(t.get("last_used_at")),
                format_time(t.get("expire_at")),
            ]
        )
    headers = (
        "Id",
        "Name",
        "Prefix",
        "Scopes",
        "Namespaces",
        "Status",
        "Created (UTC)",
        "Last used (UTC)",
        "Expires (UTC)",
    )
    session.out.print(render_table(headers, rows, session.out))
    return 0


def _print_created(created: dict[str, Any], err: Console, out: Console, verb: str) -> None:
    scopes = ", ".join(created.get("scopes") or []) or "(none)"
    namespaces = ", ".join(created.get("namespaces") or []) or "all"
    err.print(f"Token '{created.get('name', '')}' {verb}. Copy it now — it will not be shown again.", "yellow")
    err.print(f"  id:         {created.get('id', '')}")
    err.print(f"  scopes:     {scopes}")
    err.print(f"  namespaces: {namespaces}")
    err.print(f"  expires:    {created.get('expire_at') or 'never'}")
    err.print(f"  prefix:     {created.get('token_prefix', '')}")
    out.print(created.get("token", ""))


async def run_create(args: argparse.Namespace, session: Session) -> int:
    body: dict[str, Any] = {"name": args.name, "scopes": args.scope, "namespaces": args.namespace}
    if args.expires:
        body["expire_at"] = parse_expiry(args.expires)
    async with session.api() as api:
        try:
            created = await api.post("/tokens", body)
        except ApiError as exc:
            render_failure(session.err, f"Failed to create token '{args.name}'", exc)
            raise CliExit(exc.exit_code) from exc
    _print_created(created, session.err, session.out, "created")
    return 0


async def run_revoke(args: argparse.Namespace, session: Session) -> int:
    if not args.yes:
        if not stdin_is_tty():
            raise CliError(f"refusing to revoke token '{args.id}' without confirmation: pass --yes")
        if not await trio.to_thread.run_sync(confirm, f"Revoke token {args.id}?"):
            session.err.print("Aborted")
            return 1
    async with session.api() as api:
        try:
            await api.delete(f"/tokens/{args.id}")
        except ApiError as exc:
            raise CliError(describe_status(exc.status, KIND, args.id), exc.exit_code) from exc
    session.out.success(f"Token {args.id} revoked")
    return 0


async def run_rotate(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        try:
            created = await api.post(f"/tokens/{args.id}/rotate")
        except ApiError as exc:
            raise CliError(describe_status(exc.status, KIND, args.id), exc.exit_code) from exc
    _print_created(created, session.err, session.out, "rotated")
    return 0
