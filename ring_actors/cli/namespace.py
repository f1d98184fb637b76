"""`namespace list|create|delete|prune|audit` (spec: cli.md §2, §3.4; api.md §10)."""

from __future__ import annotations

import argparse
from typing import Any

from ring_actors.cli.client import ApiError, Session, describe_list_status, describe_status, render_failure
from ring_actors.cli.common import add_command, add_group, add_output_arg, default_subcommand
from ring_actors.cli.output import CliError, CliExit, format_time, print_structured, render_table

__all__ = ["PRUNABLE", "is_prunable", "register"]

KIND = "namespace"

PRUNABLE = frozenset(
    {
        "completed",
        "failed",
        "deleted",
        "crash_loop_back_off",
        "image_pull_back_off",
        "create_container_error",
        "network_error",
        "config_error",
        "file_system_error",
        "error",
    }
)
"""Statuses `prune` deletes without --all; pending, creating, running, insufficient_resources are kept."""


def is_prunable(status: str, *, everything: bool = False) -> bool:
    return everything or status in PRUNABLE


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group, children = add_group(
        sub,
        "namespace",
        "create, list, delete, prune and audit namespaces",
        None,
        description="Work with namespaces. Without a subcommand: `namespace list`.",
        aliases=("namespaces", "ns"),
    )
    listing = add_command(children, "list", "list namespaces", run_list, aliases=("ls",))
    add_output_arg(listing)
    default_subcommand(group, listing)

    create = add_command(children, "create", "create a namespace", run_create)
    create.add_argument("name", help="namespace name: 2-63 lowercase letters, digits and '-'")

    delete = add_command(
        children,
        "delete",
        "delete an empty namespace",
        run_delete,
        description="Delete a namespace. The server refuses while it still holds deployments, secrets or configs.",
        aliases=("rm",),
    )
    delete.add_argument("name", help="namespace name")

    prune = add_command(
        children,
        "prune",
        "delete finished and failed deployments",
        run_prune,
        description=(
            "Delete the deployments of NAME (every namespace when omitted) whose status is\n"
            "completed, failed, deleted or an error status. Pending, creating, running and\n"
            "insufficient_resources deployments are kept unless --all is given."
        ),
    )
    prune.add_argument("name", nargs="?", help="namespace (default: all namespaces)")
    prune.add_argument("-a", "--all", action="store_true", help="delete active deployments too")

    audit = add_command(
        children,
        "audit",
        "show the audit trail of a namespace",
        run_audit,
        description="Who did what in a namespace, newest first (GET /namespaces/{name}/audit).",
    )
    audit.add_argument("namespace", help="namespace name")
    audit.add_argument("--limit", type=int, metavar="N", help="at most N entries (server default 100, max 1000)")
    add_output_arg(audit)


async def run_list(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        try:
            response = await api.request("GET", "/namespaces")
        except ApiError as exc:
            raise CliError(describe_list_status(exc.status, "namespaces"), exc.exit_code) from exc
    if args.output != "table":
        print_structured(response.json(), args.output, raw=response.text)
        return 0
    rows = [[n.get("id", ""), n.get("name", ""), format_time(n.get("created_at"))] for n in response.json() or []]
    session.out.print(render_table(("Id", "Name", "Created at (UTC)"), rows))
    return 0


async def run_create(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        try:
            await api.post("/namespaces", {"name": args.name})
        except ApiError as exc:
            if exc.status == 409:
                raise CliError(f"namespace '{args.name}' already exists", exc.exit_code) from exc
            if exc.problem is not None or exc.status == 422:
                render_failure(session.err, f"Unable to create namespace '{args.name}'", exc)
                raise CliExit(exc.exit_code) from exc
            raise CliError(describe_status(exc.status, KIND, args.name), exc.exit_code) from exc
    session.out.success(f"Namespace '{args.name}' created")
    return 0


async def run_delete(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        try:
            await api.delete(f"/namespaces/{args.name}")
        except ApiError as exc:
            if exc.status == 409:
                raise CliError(_not_empty_message(args.name, exc.body), exc.exit_code) from exc
            raise CliError(describe_status(exc.status, KIND, args.name), exc.exit_code) from exc
    session.out.success(f"Namespace '{args.name}' deleted")
    return 0


def _not_empty_message(name: str, body: Any) -> str:
    """The 409 explanation: a problem's detail, or Ring's `{error, remaining, hint}`."""
    if not isinstance(body, dict):
        return describe_status(409, KIND, name)
    text = f"cannot delete namespace '{name}': {body.get('detail') or body.get('error') or 'namespace is not empty'}"
    remaining = body.get("remaining")
    if remaining is not None and str(remaining) not in text:
        text += f" ({remaining} remaining)"
    hint = body.get("hint")
    if hint and hint not in text:
        text += f"; {hint}"
    return text


async def run_prune(args: argparse.Namespace, session: Session) -> int:
    params = {"namespace": args.name} if args.name else None
    deleted = skipped = failed = 0
    first_failure = 0
    async with session.api() as api:
        try:
            items = await api.get("/deployments", params=params)
        except ApiError as exc:
            raise CliError(describe_list_status(exc.status, "deployments", args.name), exc.exit_code) from exc
        for d in items or []:
            if args.name and d.get("namespace") != args.name:
                continue
            if not is_prunable(d.get("status", ""), everything=args.all):
                skipped += 1
                continue
            try:
                await api.delete(f"/deployments/{d['id']}")
            except ApiError as exc:
                failed += 1
                first_failure = first_failure or exc.exit_code
                session.err.error(f"error: {describe_status(exc.status, 'deployment', d['id'])}")
                continue
            deleted += 1
            session.out.print(f"Deployment {d['id']} deleted")
    session.out.print("Summary:")
    session.out.print(f"  Deleted: {deleted}")
    if skipped:
        session.out.print(f"  Skipped (active): {skipped} — use --all to delete them too")
    if failed:
        session.out.print(f"  Failed: {failed}")
    return first_failure


async def run_audit(args: argparse.Namespace, session: Session) -> int:
    params = {"limit": args.limit} if args.limit is not None else None
    async with session.api() as api:
        try:
            response = await api.request("GET", f"/namespaces/{args.namespace}/audit", params=params)
        except ApiError as exc:
            raise CliError(describe_status(exc.status, KIND, args.namespace), exc.exit_code) from exc
    if args.output != "table":
        print_structured(response.json(), args.output, raw=response.text)
        return 0
    rows = [
        [
            format_time(e.get("timestamp")),
            e.get("user_id") or e.get("username") or "",
            e.get("action", ""),
            e.get("target_type", ""),
            e.get("target_name", ""),
        ]
        for e in response.json() or []
    ]
    session.out.print(render_table(("Timestamp", "User", "Action", "Type", "Target"), rows))
    return 0
