"""`config list|inspect|delete` (spec: cli.md §2; api.md §9). Configs are created by `apply`.

`delete --force` is ring-actors' own: the server refuses to delete a config that active
deployments mount (Ring has no such check).
"""

from __future__ import annotations

import argparse
import json

from ring_actors.cli.client import (
    ApiError,
    Session,
    delete_unless_used,
    describe_list_status,
    describe_status,
)
from ring_actors.cli.common import (
    add_command,
    add_group,
    add_output_arg,
    default_subcommand,
)
from ring_actors.cli.output import (
    CliError,
    format_time,
    print_structured,
    render_table,
)

__all__ = ["register"]

KIND = "config"
DATA_PREVIEW = 40


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group, children = add_group(
        sub,
        "config",
        "list, inspect and delete configs",
        None,
        description="Configs hold files mounted into deployments (create them with `apply`).\n"
        "Without a subcommand: `config list`.",
        aliases=("configs",),
    )
    listing = add_command(children, "list", "list configs", run_list, aliases=("ls",))
    listing.add_argument("-n", "--namespace", action="append", default=[], help="only this namespace (repeatable)")
    add_output_arg(listing)
    default_subcommand(group, listing)
    inspect = add_command(children, "inspect", "show a config and its data", run_inspect)
    inspect.add_argument("id", help="config id")
    add_output_arg(inspect)
    delete = add_command(
        children,
        "delete",
        "delete a config",
        run_delete,
        description="Delete a config. Refused while deployments mount it, unless --force.",
        aliases=("rm",),
    )
    delete.add_argument("id", help="config id")
    delete.add_argument("-f", "--force", action="store_true", help="delete even if deployments mount it")


def _preview(data: str) -> str:
    flat = " ".join(str(data).split())
    return flat if len(flat) <= DATA_PREVIEW else flat[: DATA_PREVIEW - 1] + "…"


async def run_list(args: argparse.Namespace, session: Session) -> int:
    params = [("namespace", n) for n in args.namespace]
    async with session.api() as api:
        try:
            response = await api.request("GET", "/configs", params=params)
        except ApiError as exc:
            ns = args.namespace[0] if args.namespace else None
            raise CliError(describe_list_status(exc.status, "configs", ns), exc.exit_code) from exc
    if args.output != "table":
        print_structured(response.json(), args.output, raw=response.text)
        return 0
    rows = [
        [
            c.get("id", ""),
            c.get("name", ""),
            format_time(c.get("created_at")),
            format_time(c.get("updated_at")),
            c.get("namespace", ""),
            _preview(c.get("data", "")),
        ]
        for c in response.json() or []
    ]
    session.out.print(render_table(("Id", "Name", "Created at (UTC)", "Updated at (UTC)", "Namespace", "Data"), rows))
    return 0


async def run_inspect(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        try:
            response = await api.request("GET", f"/configs/{args.id}")
        except ApiError as exc:
            raise CliError(describe_status(exc.status, KIND, args.id), exc.exit_code) from exc
    body = response.json()
    if args.output != "table":
        print_structured(body, args.output, raw=response.text)
        return 0
    lines = [
        "CONFIG DETAILS",
        "==============",
        f"ID         : {body.get('id', '')}",
        f"Name       : {body.get('name', '')}",
        f"Namespace  : {body.get('namespace', '')}",
        f"Labels     : {body.get('labels') or ''}",
        f"Created at : {format_time(body.get('created_at'))}",
        f"Updated at : {format_time(body.get('updated_at'))}",
        "",
        "DATA",
        "----",
    ]
    try:
        data = json.loads(body.get("data") or "{}")
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key, value in data.items():
            lines.append(f"{key}:")
            lines.extend(f"  {line}" for line in str(value).splitlines() or [""])
    else:
        lines.append(str(body.get("data", "")))
    session.out.print("\n".join(lines))
    return 0


async def run_delete(args: argparse.Namespace, session: Session) -> int:
    await delete_unless_used(
        session, path=f"/configs/{args.id}", kind=KIND, resource_id=args.id, force=args.force, used_by="mounted by"
    )
    session.out.success(f"Config {args.id} deleted")
    return 0
