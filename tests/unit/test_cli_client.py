"""The CLI's API plumbing: auth.json, error rendering, SSE parsing, transport failures."""

from __future__ import annotations

import io
import json
import socket
import stat
from pathlib import Path

import httpx
import pytest

from ring_actors.cli.client import (
    ApiError,
    SseEvent,
    describe_list_status,
    describe_status,
    parse_stream_message,
    read_auth,
    remove_token,
    render_failure,
    save_token,
    sse_events,
)
from ring_actors.cli.main import run
from ring_actors.cli.output import CliError, Console


def test_save_and_remove_token_keep_other_contexts(tmp_path: Path) -> None:
    """Verify auth.json is merged per context, created with its directory, and stays mode 0600."""
    path = tmp_path / "dir" / "auth.json"
    save_token("default", "t1", path)
    save_token("prod", "t2", path)
    assert read_auth(path) == {"default": {"token": "t1"}, "prod": {"token": "t2"}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert remove_token("default", path) is True
    assert remove_token("default", path) is False
    assert read_auth(path) == {"prod": {"token": "t2"}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_corrupt_auth_json_is_reported(tmp_path: Path) -> None:
    """Verify a corrupt auth.json is an error that names the file, not a silent logout."""
    path = tmp_path / "auth.json"
    path.write_text("{not json")
    with pytest.raises(CliError, match=r"auth\.json is not valid JSON"):
        read_auth(path)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "deployment 'web' not found"),
        (409, "deployment 'web' already exists or still has dependents"),
        (401, "not authorized to act on deployment 'web'"),
        (403, "not authorized to act on deployment 'web'"),
        (500, "deployment 'web': request failed (500)"),
    ],
)
def test_describe_status(status: int, message: str) -> None:
    """Verify Ring's error sentences for single resources (cli.md §5)."""
    assert describe_status(status, "deployment", "web") == message


def test_describe_list_status() -> None:
    """Verify Ring's list error sentences, namespaced and global."""
    assert describe_list_status(403, "secrets", "prod") == "cannot list secrets in namespace 'prod': not authorized"
    assert (
        describe_list_status(404, "secrets", "prod") == "cannot list secrets in namespace 'prod': namespace not found"
    )
    assert describe_list_status(403, "users") == "not authorized to list users"
    assert describe_list_status(502, "users") == "cannot list users: request failed (502)"


def _error(status: int, body: object, content_type: str) -> ApiError:
    request = httpx.Request("POST", "http://x/deployments")
    text = body if isinstance(body, str) else json.dumps(body)
    return ApiError.from_response(
        httpx.Response(status, headers={"content-type": content_type}, text=text, request=request)
    )


def test_render_failure_problem_with_violations_and_detail() -> None:
    """Verify problem+json rendering: title line, then one line per violation with its code, or the detail."""
    out = io.StringIO()
    console = Console(out, colour=False)
    body = {
        "title": "Validation failed",
        "status": 422,
        "detail": "...",
        "violations": [{"property_path": "name", "message": "must not be empty", "code": "deployment.name.required"}],
    }
    render_failure(console, "Unable to apply deployment 'x'", _error(422, body, "application/problem+json"))
    render_failure(
        console,
        "Login failed",
        _error(401, {"title": "Unauthorized", "detail": "invalid credentials"}, "application/problem+json"),
    )
    assert out.getvalue().splitlines() == [
        "Unable to apply deployment 'x': Validation failed (422)",
        "  * name: must not be empty [deployment.name.required]",
        "Login failed: Unauthorized (401)",
        "  invalid credentials",
    ]


def test_render_failure_legacy_bodies() -> None:
    """Verify non-problem bodies: status line plus the error/message/plain text (bounded)."""
    out = io.StringIO()
    console = Console(out, colour=False)
    render_failure(
        console, "Ctx", _error(409, {"message": "A deployment with name 'web' already exists"}, "application/json")
    )
    render_failure(console, "Ctx", _error(400, "x" * 3000, "text/plain"))
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["Ctx: 409 Conflict", "  A deployment with name 'web' already exists"]
    assert lines[2] == "Ctx: 400 Bad Request"
    assert len(lines[3]) == 2 + 2000


async def test_sse_events_parsing() -> None:
    """Verify SSE framing: comments skipped, `event:`/`id:` kept, multi-line data joined."""
    body = b': hello\n\nevent: status\nid: 7\ndata: {"a":\ndata: 1}\n\ndata: plain\n\n'
    response = httpx.Response(200, content=body)
    events = [e async for e in sse_events(response)]
    assert [(e.event, e.id, e.data) for e in events] == [("status", "7", '{"a":\n1}'), ("message", None, "plain")]
    assert events[0].json() == {"a": 1}
    assert events[1].json() is None


@pytest.mark.parametrize(
    ("data", "kind", "status"),
    [
        (
            {
                "type": "status",
                "deployment_id": "d",
                "namespace": "n",
                "old_status": "creating",
                "new_status": "running",
            },
            "status",
            "running",
        ),
        (
            {
                "type": "event",
                "deployment_id": "d",
                "namespace": "n",
                "event": {"id": "e", "deployment_id": "d", "level": "info", "reason": "scale_up", "message": "up"},
            },
            "event",
            None,
        ),
        ({"deployment_id": "d", "level": "error", "reason": "x", "message": "boom"}, "event", None),
        ({"type": "lagged", "missed": 3}, "lagged", None),
    ],
)
def test_parse_stream_message_shapes(data: dict, kind: str, status: str | None) -> None:
    """Verify the server's event-stream messages (and a bare event object) are understood."""
    message = parse_stream_message(SseEvent(data=json.dumps(data)))
    assert message is not None
    assert (message.kind, message.new_status) == (kind, status)
    if kind != "lagged":
        assert message.deployment_id == "d"
    if kind == "event":
        assert message.data["reason"] in ("scale_up", "x")


def test_parse_stream_message_ignores_noise() -> None:
    """Verify non-JSON data and unrelated objects are ignored."""
    assert parse_stream_message(SseEvent(data="keep-alive")) is None
    assert parse_stream_message(SseEvent(data='{"hello": 1}')) is None
    assert parse_stream_message(SseEvent(data='{"type": "status", "deployment_id": "d"}')) is None


def test_server_down_with_a_real_socket(tmp_path: Path, monkeypatch, capsys) -> None:
    """Verify a closed port gives exit 3 and the hint to start the server (real TCP, no mock)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "config.toml").write_text(
        f'[contexts.default]\ncurrent = true\nhost = "127.0.0.1"\napi.scheme = "http"\napi.port = {port}\n'
    )
    monkeypatch.setenv("RING_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("RING_TOKEN", "x")
    assert run(["namespace", "list"]) == 3
    assert capsys.readouterr().err.strip() == (
        f"error: cannot reach the ring-actors server at http://127.0.0.1:{port}: is it running? "
        "Start it with `ring-actors serve`"
    )
