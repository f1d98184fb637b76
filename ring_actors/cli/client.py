"""The CLI's side of the API: credentials, the HTTP client, error rendering, SSE.

Credentials (cli.md §1.1): `RING_TOKEN` (non-empty) wins; otherwise the entry of
the selected context in `$RING_CONFIG_DIR/auth.json`. Unlike Ring, a missing
entry fails fast with a hint instead of sending an empty token, and `auth.json`
is written with mode 0600.

Errors are translated once, here: a transport failure becomes a `CliError` with
exit code 3 and a sentence naming the URL; a non-2xx answer becomes an `ApiError`
that commands turn into Ring's messages (`describe_status`, `render_failure`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx

from ring_actors import __version__
from ring_actors.cli.output import CliError, CliExit, Console, ExitCode, exit_code_for_status
from ring_actors.config import ConfigError, Context, Settings, config_dir, load_settings

__all__ = [
    "Api",
    "ApiError",
    "Session",
    "SseEvent",
    "delete_unless_used",
    "describe_list_status",
    "describe_status",
    "read_auth",
    "remove_token",
    "render_failure",
    "render_problem",
    "save_token",
    "sse_events",
    "unreachable_message",
]

REQUEST_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
STREAM_TIMEOUT = httpx.Timeout(30.0, connect=5.0, read=None)
BODY_PREVIEW = 2000


# --------------------------------------------------------------------------- auth.json


def auth_path(env: Mapping[str, str] | None = None) -> Path:
    """`$RING_CONFIG_DIR/auth.json`, even when --config points elsewhere (config.md §1)."""
    return config_dir(dict(os.environ if env is None else env)) / "auth.json"


def read_auth(path: Path | None = None) -> dict[str, Any]:
    """The whole auth.json object; `{}` when missing. A corrupt file is an error, not a silent reset."""
    path = auth_path() if path is None else path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON ({exc}); fix or delete it, then log in again") from exc
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a JSON object keyed by context name")
    return data


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` atomically with a 0600 file (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".auth-", suffix=".json", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_token(context: str, token: str, path: Path | None = None) -> Path:
    """Merge `{context: {"token": token}}` into auth.json (mode 0600); returns the path."""
    path = auth_path() if path is None else path
    data = read_auth(path)
    data[context] = {"token": token}
    _write_private(path, data)
    return path


def remove_token(context: str, path: Path | None = None) -> bool:
    """Drop the context's entry; True when there was one."""
    path = auth_path() if path is None else path
    data = read_auth(path)
    if context not in data:
        return False
    del data[context]
    _write_private(path, data)
    return True


# --------------------------------------------------------------------------- session


class Session:
    """What every command needs: parsed global options, settings, context, consoles.

    Settings are loaded lazily so that commands without a server (completions,
    init) work even with a broken config file.
    """

    def __init__(
        self,
        args: argparse.Namespace,
        parser: argparse.ArgumentParser,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.args = args
        self.parser = parser
        self.transport = transport  # tests inject httpx.MockTransport here
        self.out = Console(sys.stdout)
        self.err = Console(sys.stderr)

    @cached_property
    def settings(self) -> Settings:
        wanted = getattr(self.args, "context", None)
        try:
            return load_settings(getattr(self.args, "config", None), wanted)
        except ConfigError as exc:
            if wanted == "default":
                # Ring's implicit context name: fall back to the `current = true` context.
                try:
                    return load_settings(getattr(self.args, "config", None), None)
                except ConfigError as inner:
                    raise CliError(str(inner)) from inner
            raise CliError(str(exc)) from exc

    @property
    def context(self) -> Context:
        return self.settings.context

    @property
    def base_url(self) -> str:
        return self.context.base_url

    def token(self) -> str | None:
        """RING_TOKEN, else the context's auth.json entry, else None."""
        env_token = os.environ.get("RING_TOKEN")
        if env_token:
            return env_token
        entry = read_auth().get(self.context.name)
        token = entry.get("token") if isinstance(entry, dict) else None
        return token if isinstance(token, str) and token else None

    def require_token(self) -> str:
        token = self.token()
        if token is None:
            raise CliError(
                f"not logged in to context '{self.context.name}' ({self.base_url}): "
                "run `ring-actors login` or set RING_TOKEN",
                ExitCode.AUTH,
            )
        return token

    @asynccontextmanager
    async def api(self, *, authenticated: bool = True, token: str | None = None) -> AsyncIterator[Api]:
        """An `Api` for the selected context; fails fast (exit 2) without credentials."""
        headers = {"User-Agent": f"ring-actors-cli/{__version__}", "Accept": "application/json"}
        if authenticated:
            headers["Authorization"] = f"Bearer {token or self.require_token()}"
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=REQUEST_TIMEOUT, transport=self.transport
        ) as client:
            yield Api(client, self.base_url)


# --------------------------------------------------------------------------- errors


def unreachable_message(base_url: str) -> str:
    return f"cannot reach the ring-actors server at {base_url}: is it running? Start it with `ring-actors serve`"


@dataclass
class ApiError(Exception):
    """The server answered with a non-2xx status."""

    status: int
    reason: str
    content_type: str
    text: str
    body: Any = None
    method: str = ""
    path: str = ""
    problem: dict[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        super().__init__(f"{self.method} {self.path}: {self.status} {self.reason}")

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        content_type = response.headers.get("content-type", "")
        text = response.text
        body: Any = None
        if "json" in content_type:
            try:
                body = json.loads(text)
            except ValueError:
                body = None
        problem = body if content_type.startswith("application/problem+json") and isinstance(body, dict) else None
        return cls(
            status=response.status_code,
            reason=response.reason_phrase,
            content_type=content_type,
            text=text,
            body=body,
            method=response.request.method,
            path=response.request.url.path,
            problem=problem,
        )

    @property
    def exit_code(self) -> int:
        return int(exit_code_for_status(self.status))

    @property
    def detail(self) -> str:
        """The most useful one-line explanation the body carries ('' when none)."""
        body = self.body
        if isinstance(body, dict):
            for key in ("detail", "error", "message"):
                value = body.get(key)
                if isinstance(value, str) and value:
                    return value
            errors = body.get("errors")
            if isinstance(errors, list) and errors:
                return "; ".join(str(e) for e in errors)
        if not body and self.text.strip() and "html" not in self.content_type:
            return self.text.strip()[:BODY_PREVIEW]
        return ""


def describe_status(status: int, kind: str, name: str) -> str:
    """Ring's single-resource messages (cli.md §5), without the `error: ` prefix."""
    if status == 404:
        return f"{kind} '{name}' not found"
    if status == 409:
        return f"{kind} '{name}' already exists or still has dependents"
    if status in (401, 403):
        return f"not authorized to act on {kind} '{name}'"
    return f"{kind} '{name}': request failed ({status})"


async def delete_unless_used(
    session: Session, *, path: str, kind: str, resource_id: str, force: bool, used_by: str
) -> None:
    """DELETE a resource deployments may use (secrets, configs): a refusal lists the users.

    `used_by` completes "<kind> '<id>' is ... deployments:" (e.g. "mounted by").
    """
    params = {"force": "true"} if force else None
    async with session.api() as api:
        try:
            await api.delete(path, params=params)
        except ApiError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            users = body.get("deployments")
            if exc.status == 409 and users:
                session.err.error(f"error: {kind} '{resource_id}' is {used_by} deployments:")
                for name in users:
                    session.err.print(f"  - {name}")
                session.err.print("Use --force to delete it anyway.")
                raise CliExit(exc.exit_code) from exc
            raise CliError(describe_status(exc.status, kind, resource_id), exc.exit_code) from exc


def describe_list_status(status: int, kind: str, namespace: str | None = None) -> str:
    """Ring's list messages (cli.md §5); `namespace=None` for global lists."""
    if namespace is None:
        if status in (401, 403):
            return f"not authorized to list {kind}"
        return f"cannot list {kind}: request failed ({status})"
    scope = f"cannot list {kind} in namespace '{namespace}'"
    if status in (401, 403):
        return f"{scope}: not authorized"
    if status == 404:
        return f"{scope}: namespace not found"
    return f"{scope}: request failed ({status})"


def render_failure(console: Console, context: str, error: ApiError) -> None:
    """Print a rejected request the way Ring does (cli.md §3.3, §5), one violation per line with its code.

    problem+json: `<context>: <title> (<status>)`, then `  * <path>: <message> [<code>]`
    per violation, or `  <detail>`. Anything else: `<context>: <status> <reason>` and
    the body (at most 2000 characters).
    """
    if error.problem is not None:
        render_problem(console, context, error.problem, error.status, error.reason)
        return
    console.error(f"{context}: {error.status} {error.reason}".rstrip())
    detail = error.detail
    if detail:
        console.print(f"  {detail}")


def render_problem(console: Console, context: str, problem: Mapping[str, Any], status: int, reason: str = "") -> None:
    """Render a problem+json body (from the server, or built locally by the CLI)."""
    title = problem.get("title") or reason or "error"
    console.error(f"{context}: {title} ({status})")
    violations = problem.get("violations") or []
    if violations:
        for v in violations:
            code = v.get("code") or ""
            suffix = f" [{code}]" if code else ""
            console.print(f"  * {v.get('property_path', '')}: {v.get('message', '')}{suffix}")
    elif problem.get("detail"):
        for line in str(problem["detail"]).splitlines():
            console.print(f"  {line}")


# --------------------------------------------------------------------------- HTTP


class Api:
    """Thin async client of the ring-actors API (one per command)."""

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self.base_url = base_url

    def _transport_error(self, exc: Exception) -> CliError:
        if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
            return CliError(unreachable_message(self.base_url), ExitCode.CONNECTION)
        if isinstance(exc, httpx.TimeoutException):
            return CliError(f"the server at {self.base_url} did not respond in time (timeout)", ExitCode.CONNECTION)
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return CliError(
                f"the connection to the server at {self.base_url} was closed unexpectedly ({exc})",
                ExitCode.CONNECTION,
            )
        return CliError(f"could not send the request to {self.base_url} ({exc})", ExitCode.CONNECTION)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json_body: Any = None,
    ) -> httpx.Response:
        """Send one request; raise `ApiError` on non-2xx, `CliError` (exit 3) on transport failure."""
        try:
            response = await self._client.request(method, path, params=params, json=json_body)
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise self._transport_error(exc) from exc
        if not response.is_success:
            raise ApiError.from_response(response)
        return response

    async def get(self, path: str, *, params: Any = None) -> Any:
        """GET and decode the JSON body."""
        return _json(await self.request("GET", path, params=params))

    async def post(self, path: str, body: Any = None, *, params: Any = None) -> Any:
        response = await self.request("POST", path, params=params, json_body=body)
        return _json(response)

    async def put(self, path: str, body: Any) -> Any:
        return _json(await self.request("PUT", path, json_body=body))

    async def delete(self, path: str, *, params: Any = None) -> None:
        await self.request("DELETE", path, params=params)

    @asynccontextmanager
    async def stream(self, path: str, *, params: Any = None) -> AsyncIterator[httpx.Response]:
        """Open a long-lived GET (SSE); the response status is checked before yielding."""
        try:
            async with self._client.stream("GET", path, params=params, timeout=STREAM_TIMEOUT) as response:
                if not response.is_success:
                    await response.aread()
                    raise ApiError.from_response(response)
                yield response
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise self._transport_error(exc) from exc


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise CliError(
            f"the server answered {response.request.method} {response.request.url.path} with a body that is not JSON"
        ) from exc


# --------------------------------------------------------------------------- SSE


@dataclass
class SseEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None

    def json(self) -> Any:
        """The data as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.data)
        except ValueError:
            return None


async def sse_events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    """Parse a `text/event-stream` body into events (comments and keep-alives skipped)."""
    current = SseEvent()
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                current.data = "\n".join(data)
                yield current
            current, data = SseEvent(), []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            current.event = value
        elif name == "id":
            current.id = value
    if data:
        current.data = "\n".join(data)
        yield current


@dataclass
class StreamMessage:
    """One message of an event stream: a deployment event, a status change, or `lagged`."""

    kind: str  # "event" | "status" | "lagged"
    deployment_id: str
    data: dict[str, Any]
    new_status: str | None = None
    old_status: str | None = None


def parse_stream_message(sse: SseEvent) -> StreamMessage | None:
    """Interpret an SSE message of `/events` or `/deployments/{id}/events` (None when unrelated).

    The server sends `{"type": "event", "deployment_id", "namespace", "event": {...}}`,
    `{"type": "status", "deployment_id", "old_status", "new_status"}` and
    `{"type": "lagged", "missed": N}` (the subscriber fell behind and lost messages).
    A bare event object (`{id, deployment_id, level, reason, message, ...}`) is accepted too.
    """
    data = sse.json()
    if not isinstance(data, dict):
        return None
    kind = data.get("type")
    deployment_id = str(data.get("deployment_id") or "")
    if kind == "lagged":
        return StreamMessage("lagged", "", data)
    if kind == "status":
        new_status = data.get("new_status")
        if not isinstance(new_status, str):
            return None
        return StreamMessage("status", deployment_id, data, new_status=new_status, old_status=data.get("old_status"))
    event = data.get("event") if kind == "event" else data
    if isinstance(event, dict) and ("message" in event or "reason" in event):
        return StreamMessage("event", deployment_id or str(event.get("deployment_id") or ""), event)
    return None
