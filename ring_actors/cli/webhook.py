"""`webhook list|create|delete|inspect` (spec: cli.md §2; api.md §14)."""

from __future__ import annotations

import argparse
from typing import Any

import trio

from ring_actors.cli.client import ApiError, Session, describe_list_status, describe_status, render_failure
from ring_actors.cli.common import add_command, add_group, add_output_arg, default_subcommand
from ring_actors.cli.output import CliError, CliExit, format_time, print_structured, render_table

__all__ = ["register"]

KIND = "webhook"
FOLLOW_INTERVAL = 2.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group, children = add_group(
        sub,
        "webhook",
        "list, create, delete and inspect webhooks",
        None,
        description="Webhooks receive deployment events as signed HTTP POSTs. Without a subcommand: `webhook list`.",
        aliases=("webhooks",),
    )
    listing = add_command(children, "list", "list webhooks", run_list, aliases=("ls",))
    add_output_arg(listing)
    default_subcommand(group, listing)
    create = add_command(
        children,
        "create",
        "create a webhook (id on stdout, secret on stderr)",
        run_create,
        epilog="example:\n  ring-actors webhook create https://hooks.example.com/ring -e deployment.status_changed",
    )
    create.add_argument("url", help="http(s) URL to POST events to")
    create.add_argument(
        "-e", "--event", action="append", default=[], help="event kind or family.* (repeatable; default all)"
    )
    create.add_argument("-s", "--secret", help="signing secret (default: generated and printed once)")
    create.add_argument(
        "-n", "--namespace", action="append", default=[], help="only events of this namespace (repeatable; default all)"
    )
    delete = add_command(children, "delete", "delete a webhook", run_delete, aliases=("rm",))
    delete.add_argument("id", help="webhook id")
    inspect = add_command(children, "inspect", "show a webhook's recent deliveries", run_inspect)
    inspect.add_argument("id", help="webhook id")
    inspect.add_argument("-f", "--follow", action="store_true", help=f"refresh every {FOLLOW_INTERVAL:g} s")
    add_output_arg(inspect)


async def run_list(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        try:
            response = await api.request("GET", "/webhooks")
        except ApiError as exc:
            raise CliError(describe_list_status(exc.status, "webhooks"), exc.exit_code) from exc
    if args.output != "table":
        print_structured(response.json(), args.output, raw=response.text)
        return 0
    rows = []
    for w in response.json() or []:
        status = "revoked" if w.get("revoked_at") else "active"
        rows.append(
            [
                w.get("id", ""),
                w.get("url", ""),
                ",".join(w.get("events") or []) or "*",
                (status, "green" if status == "active" else "red"),
                format_time(w.get("created_at")),
            ]
        )
    session.out.print(render_table(("Id", "URL", "Events", "Status", "Created (UTC)"), rows, session.out))
    return 0


async def run_create(args: argparse.Namespace, session: Session) -> int:
    body: dict[str, Any] = {"url": args.url, "events": args.event}
    if args.secret:
        body["secret"] = args.secret
    if args.namespace:
        body["namespaces"] = args.namespace
    async with session.api() as api:
        try:
            created = await api.post("/webhooks", body)
        except ApiError as exc:
            render_failure(session.err, f"Unable to create webhook '{args.url}'", exc)
            raise CliExit(exc.exit_code) from exc
    session.err.print(f"Webhook created for {created.get('url', args.url)}")
    session.err.print(f"  events: {', '.join(created.get('events') or []) or 'all'}")
    if created.get("namespaces"):
        session.err.print(f"  namespaces: {', '.join(created['namespaces'])}")
    if created.get("secret") and not args.secret:
        session.err.print(f"  secret: {created['secret']}  (copy it now — it will not be shown again)", "yellow")
    session.out.print(created.get("id", ""))
    return 0


async def run_delete(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        try:
            await api.delete(f"/webhooks/{args.id}")
        except ApiError as exc:
            raise CliError(describe_status(exc.status, KIND, args.id), exc.exit_code) from exc
    session.out.success(f"Webhook {args.id} deleted")
    return 0


async def run_inspect(args: argparse.Namespace, session: Session) -> int:
    first = True
    async with session.api() as api:
        while True:
            try:
                response = await api.request("GET", f"/webhooks/{args.id}/events")
            except (ApiError, CliError) as exc:
                if first:
                    if isinstance(exc, ApiError):
                        raise CliError(describe_status(exc.status, KIND, args.id), exc.exit_code) from exc
                    raise
            else:
                if args.output != "table":
                    print_structured(response.json(), args.output, raw=response.text)
                else:
                    rows = [
                        [
                            e.get("id", ""),
                            e.get("kind", ""),
                            e.get("status", ""),
                            str(e.get("attempts", 0)),
                            format_time(e.get("updated_at")),
                            e.get("last_error") or "",
                        ]
                        for e in response.json() or []
                    ]
                    if args.follow and not first:
                        session.out.write("\x1b[2J\x1b[H" if session.out.colour else "\n")
                    session.out.print(
                        render_table(("Id", "Kind", "Status", "Attempts", "Updated (UTC)", "Last error"), rows)
                    )
            first = False
            if not args.follow:
                return 0
            await trio.sleep(FOLLOW_INTERVAL)
