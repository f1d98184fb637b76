"""`login` and `logout` (spec: cli.md §3.7, api.md §6)."""

from __future__ import annotations

import argparse

import trio

from ring_actors.cli.client import ApiError, Session, read_auth, remove_token, render_failure, save_token
from ring_actors.cli.common import add_command, prompt, stdin_is_tty
from ring_actors.cli.output import CliError, CliExit, ExitCode

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    login = add_command(
        sub,
        "login",
        "log in and store a session token for the current context",
        run_login,
        description=(
            "Log in to the server of the selected context (POST /login) and store the session\n"
            "token in $RING_CONFIG_DIR/auth.json (mode 0600) under the context's name.\n"
            "Missing values are prompted for on a terminal; the password is never echoed."
        ),
        epilog="example:\n  ring-actors login -u admin -p changeme\n  ring-actors --context prod login -u alice",
    )
    login.add_argument("-u", "--username", help="user name (prompted on a terminal when omitted)")
    login.add_argument("-p", "--password", help="password (prompted on a terminal when omitted)")

    add_command(
        sub,
        "logout",
        "revoke the session and forget the token of the current context",
        run_logout,
        description=(
            "Revoke the stored session on the server (POST /logout, best effort) and remove the\n"
            "current context's entry from auth.json. Other contexts are untouched."
        ),
    )


async def _ask(label: str, *, secret: bool) -> str:
    try:
        return await trio.to_thread.run_sync(lambda: prompt(label, secret=secret))
    except EOFError as exc:
        raise CliError(f"{label.lower()} required") from exc


async def run_login(args: argparse.Namespace, session: Session) -> int:
    username, password = args.username, args.password
    interactive = stdin_is_tty()
    if not username:
        if not interactive:
            raise CliError("username required; pass --username or run in a terminal")
        username = await _ask("Username", secret=False)
    if not password:
        if not interactive:
            raise CliError("password required; pass --password or run in a terminal")
        password = await _ask("Password", secret=True)
    session.out.print(f"Logging in as {username}")
    async with session.api(authenticated=False) as api:
        try:
            body = await api.post("/login", {"username": username, "password": password})
        except ApiError as exc:
            render_failure(session.err, "Login failed", exc)
            code = exc.exit_code if exc.status != 422 else ExitCode.AUTH
            raise CliExit(code) from exc
    token = body.get("token") if isinstance(body, dict) else None
    if not token:
        raise CliError("the server accepted the login but returned no token")
    path = save_token(session.context.name, token)
    session.out.success(f"Logged in to context '{session.context.name}' ({session.base_url}); token saved in {path}")
    return 0


async def run_logout(args: argparse.Namespace, session: Session) -> int:
    name = session.context.name
    entry = read_auth().get(name)
    token = entry.get("token") if isinstance(entry, dict) else None
    if token:  # the stored session only: never revoke a RING_TOKEN the user exported
        try:
            async with session.api(token=token) as api:
                await api.request("POST", "/logout")
        except (ApiError, CliError) as exc:
            message = exc.message if isinstance(exc, CliError) else f"{exc.status} {exc.reason}"
            session.err.warning(f"Warning: could not revoke the session on the server: {message}")
    remove_token(name)
    session.out.success(f"Logged out of context '{name}'")
    return 0
