"""`secret list|create|delete` (spec: cli.md §2; api.md §8). Values are never printed."""

from __future__ import annotations

import argparse

from ring_actors.cli.client import ApiError, Session, delete_unless_used, describe_list_status, render_failure
from ring_actors.cli.common import add_command, add_group, add_output_arg, default_subcommand
from ring_actors.cli.output import CliError, CliExit, format_time, print_structured, render_table

__all__ = ["register"]

KIND = "secret"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group, children = add_group(
        sub,
        "secret",
        "list, create and delete secrets",
        None,
        description="Secrets are encrypted values for environment secretRefs and secret volumes.\n"
        "Without a subcommand: `secret list`.",
        aliases=("secrets",),
    )
    listing = add_command(children, "list", "list secrets (names only)", run_list, aliases=("ls",))
    listing.add_argument("-n", "--namespace", action="append", default=[], help="only this namespace (repeatable)")
    add_output_arg(listing)
    default_subcommand(group, listing)
    create = add_command(children, "create", "create a secret", run_create)
    create.add_argument("name", help="secret name")
    create.add_argument("-n", "--namespace", required=True, help="namespace (must exist)")
    create.add_argument("-v", "--value", required=True, help="secret value (up to 1 MiB)")
    delete = add_command(
        children,
        "delete",
        "delete a secret",
        run_delete,
        description="Delete a secret. Refused while deployments reference it, unless --force.",
        aliases=("rm",),
    )
    delete.add_argument("id", help="secret id")
    delete.add_argument("-f", "--force", action="store_true", help="delete even if deployments reference it")


async def run_list(args: argparse.Namespace, session: Session) -> int:
    params = [("namespace", n) for n in args.namespace]
    async with session.api() as api:
        try:
            response = await api.request("GET", "/secrets", params=params)
        except ApiError as exc:
            ns = args.namespace[0] if args.namespace else None
            raise CliError(describe_list_status(exc.status, "secrets", ns), exc.exit_code) from exc
    if args.output != "table":
        print_structured(response.json(), args.output, raw=response.text)
        return 0
    rows = [
        [
            s.get("id", ""),
            s.get("name", ""),
            s.get("namespace", ""),
            format_time(s.get("created_at")),
            format_time(s.get("updated_at")),
        ]
        for s in response.json() or []
    ]
    session.out.print(render_table(("Id", "Name", "Namespace", "Created at (UTC)", "Updated at (UTC)"), rows))
    return 0


async def run_create(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        try:
            await api.post("/secrets", {"namespace": args.namespace, "name": args.name, "value": args.value})
        except ApiError as exc:
            render_failure(session.err, f"Unable to create secret '{args.name}'", exc)
            raise CliExit(exc.exit_code) from exc
    session.out.success(f"Secret '{args.name}' created in namespace '{args.namespace}'")
    return 0


async def run_delete(args: argparse.Namespace, session: Session) -> int:
    await delete_unless_used(
        session, path=f"/secrets/{args.id}", kind=KIND, resource_id=args.id, force=args.force, used_by="referenced by"
    )
    session.out.success(f"Secret {args.id} deleted")
    return 0
