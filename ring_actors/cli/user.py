"""`user list|create|update|delete` (spec: cli.md §2; api.md §12).

Beyond Ring: `user update --id ID` acts on another user (admin only) and
`--role` changes a role; Ring's CLI only updates the logged-in user.
"""

from __future__ import annotations

import argparse

from ring_actors.cli.client import ApiError, Session, describe_list_status, describe_status, render_failure
from ring_actors.cli.common import add_command, add_group, add_output_arg, default_subcommand
from ring_actors.cli.output import CliError, CliExit, format_time, print_structured, render_table

__all__ = ["register"]

KIND = "user"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group, children = add_group(
        sub,
        "user",
        "list, create, update and delete users",
        None,
        description="Work with users. Without a subcommand: `user list`.",
        aliases=("users",),
    )
    listing = add_command(children, "list", "list users", run_list, aliases=("ls",))
    add_output_arg(listing)
    default_subcommand(group, listing)

    create = add_command(
        children,
        "create",
        "create a user (role viewer)",
        run_create,
        description="Create a user (POST /users). New users get the viewer role.",
    )
    create.add_argument("-u", "--username", required=True, help="2-50 characters: letters, digits, '.', '_', '-'")
    create.add_argument("-p", "--password", required=True, help="8-128 characters")

    update = add_command(
        children,
        "update",
        "change a user name, password or role",
        run_update,
        description=(
            "Change your own user name or password (GET /users/me, then PUT /users/{id}).\n"
            "Admins may act on another account with --id and change roles with --role\n"
            "(a role change revokes every session and token of that account)."
        ),
        epilog="example:\n  ring-actors user update --password 'a-long-new-password'",
    )
    update.add_argument("-u", "--username", help="new user name")
    update.add_argument("-p", "--password", help="new password")
    update.add_argument("--role", choices=("admin", "operator", "viewer"), help="new role (admin only)")
    update.add_argument("--id", dest="user_id", metavar="USER_ID", help="user to update (default: yourself)")

    delete = add_command(children, "delete", "delete a user", run_delete, aliases=("rm",))
    delete.add_argument("id", help="user id")


async def run_list(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        try:
            response = await api.request("GET", "/users")
        except ApiError as exc:
            raise CliError(describe_list_status(exc.status, "users"), exc.exit_code) from exc
    if args.output != "table":
        print_structured(response.json(), args.output, raw=response.text)
        return 0
    users = response.json() or []
    headers = ["ID", "Created at (UTC)", "Updated at (UTC)", "Status", "Username", "Login at (UTC)"]
    with_role = any("role" in u for u in users)
    if with_role:
        headers.append("Role")
    rows = []
    for u in users:
        row = [
            u.get("id", ""),
            format_time(u.get("created_at")),
            format_time(u.get("updated_at")),
            u.get("status", ""),
            u.get("username", ""),
            format_time(u.get("login_at")),
        ]
        if with_role:
            row.append(u.get("role") or "")
        rows.append(row)
    session.out.print(render_table(headers, rows))
    return 0


def _reject(session: Session, context: str, exc: ApiError, name: str) -> CliError | CliExit:
    """A problem+json body is worth showing in full; other failures get Ring's one-liner."""
    if exc.problem is not None and (exc.problem.get("violations") or exc.status == 422):
        render_failure(session.err, context, exc)
        return CliExit(exc.exit_code)
    message = describe_status(exc.status, KIND, name)
    if exc.detail and exc.status not in (404,):
        message += f": {exc.detail}"
    return CliError(message, exc.exit_code)


async def run_create(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        try:
            await api.post("/users", {"username": args.username, "password": args.password})
        except ApiError as exc:
            raise _reject(session, f"Unable to create user '{args.username}'", exc, args.username) from exc
    session.out.success(f"User '{args.username}' created")
    return 0


async def run_update(args: argparse.Namespace, session: Session) -> int:
    body = {k: v for k, v in (("username", args.username), ("password", args.password), ("role", args.role)) if v}
    if not body:
        raise CliError("nothing to update: pass --username, --password or --role")
    async with session.api() as api:
        user_id = args.user_id
        if not user_id:
            try:
                me = await api.get("/users/me")
            except ApiError as exc:
                raise CliError(describe_status(exc.status, KIND, "me"), exc.exit_code) from exc
            user_id = me["id"]
        try:
            await api.put(f"/users/{user_id}", body)
        except ApiError as exc:
            raise _reject(session, f"Unable to update user '{user_id}'", exc, user_id) from exc
    session.out.success(f"User {user_id} updated")
    return 0


async def run_delete(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        try:
            await api.delete(f"/users/{args.id}")
        except ApiError as exc:
            raise _reject(session, f"Unable to delete user '{args.id}'", exc, args.id) from exc
    session.out.success(f"User {args.id} deleted")
    return 0
