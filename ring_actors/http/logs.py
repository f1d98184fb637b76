"""`GET /deployments/{id}/logs`: JSON or, with `follow=true`, Server-Sent Events (api.md §7.6).

Differences from Ring (api.md §16): an unknown deployment is a 404 (Ring: `200 []`);
`timestamp` is the runtime's own timestamp in RFC 3339 (Ring scrapes the line);
`level` keeps Ring's heuristic but says it is a guess (`level_guessed`), and a JSON
log line's own `level` / `severity` field wins over the guess.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncGenerator
from typing import cast

import trio
from quart import Blueprint, Response, request

from ring_actors.http.bodies import LogLineView
from ring_actors.http.common import json_response, load_deployment, query_bool, state
from ring_actors.http.errors import ApiError
from ring_actors.http.sse import STREAM_OPEN, sse_event, sse_response
from ring_actors.runtimes.base import InstanceHandle, LogLine, Runtime
from ring_actors.schemas.validation import parse_rfc3339

__all__ = ["blueprint", "guess_level", "parse_since", "parse_tail"]

log = logging.getLogger(__name__)

blueprint = Blueprint("logs", __name__)

DEFAULT_TAIL = 100
LOGS_CALL_TIMEOUT = 30.0
HANDLE_POLL_INTERVAL = 1.0
NO_REFERRER = {"Referrer-Policy": "no-referrer"}

_SINCE = re.compile(r"^(\d+)([smh])$")
_SYSLOG = re.compile(r"^(?:\[[^\]]*\]\s*)?<([0-7])>")
_SYSLOG_LEVEL = {0: "error", 1: "error", 2: "error", 3: "error", 4: "warning", 5: "info", 6: "info", 7: "debug"}
_JSON_LEVEL = {
    "error": "error", "err": "error", "fatal": "error", "critical": "error", "crit": "error",
    "panic": "error", "alert": "error", "emerg": "error", "emergency": "error",
    "warning": "warning", "warn": "warning",
    "info": "info", "notice": "info", "information": "info",
    "debug": "debug", "trace": "debug",
}


def guess_level(line: str) -> str:
    """Ring's heuristic (runtimes.md §8.5), first match wins."""
    if "[error]" in line:
        return "error"
    if "[warning]" in line:
        return "warning"
    if "[notice]" in line or "[info]" in line or "info:" in line:
        return "info"
    if any(marker in line for marker in ("Kernel panic", "BUG:", "Oops:", "oops:", "panic:")):
        return "error"
    if match := _SYSLOG.match(line):
        return _SYSLOG_LEVEL[int(match.group(1))]
    if "[ERROR]" in line or "[CRITICAL]" in line:
        return "error"
    if "[WARNING]" in line or "[WARN]" in line:
        return "warning"
    if "[NOTICE]" in line or "[INFO]" in line:
        return "info"
    if "[DEBUG]" in line:
        return "debug"
    if "ERROR" in line or "CRITICAL" in line or " ERR " in line:
        return "error"
    if "WARNING" in line or " WARN " in line:
        return "warning"
    if "NOTICE" in line or " INFO " in line or "INFO:" in line:
        return "info"
    if " DEBUG " in line or "DEBUG:" in line:
        return "debug"
    return "unknown"


def _declared_level(line: str) -> str | None:
    """The level a structured (JSON object) log line states about itself."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        fields = json.loads(text)
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    for key in ("level", "severity", "lvl", "log.level"):
        value = fields.get(key)
        if isinstance(value, str) and value.lower() in _JSON_LEVEL:
            return _JSON_LEVEL[value.lower()]
    return None


def view(line: LogLine, handle: InstanceHandle) -> LogLineView:
    declared = _declared_level(line.message)
    return LogLineView(
        instance=line.instance or handle.name,
        instance_id=handle.id,
        message=line.message,
        level=declared or guess_level(line.message),
        level_guessed=declared is None,
        timestamp=line.timestamp,
        stream=line.stream,
    )


def parse_tail(raw: str | None) -> int | None:
    """`tail`: a count (default 100) or `all` (None = everything)."""
    if raw is None or raw == "":
        return DEFAULT_TAIL
    if raw.lower() == "all":
        return None
    try:
        return max(0, int(raw))
    except ValueError:
        return DEFAULT_TAIL


def parse_since(raw: str | None, *, now: float | None = None) -> float | None:
    """`since`: `<n>s|m|h` ago or an RFC 3339 instant, as a Unix time; anything else is ignored."""
    if not raw:
        return None
    now = time.time() if now is None else now
    if match := _SINCE.match(raw):
        return now - int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]
    parsed = parse_rfc3339(raw)
    return parsed.timestamp() if parsed else None


def _selected(handles: list[InstanceHandle], container: str | None) -> list[InstanceHandle]:
    if not container:
        return handles
    return [h for h in handles if h.id.startswith(container) or container in h.name]


@blueprint.get("/deployments/<id>/logs")
async def deployment_logs(id: str) -> Response:
    services = state().services
    deployment = await load_deployment(id)
    runtime = services.runtimes.get(deployment.runtime)
    if runtime is None:
        raise ApiError(404, f"runtime '{deployment.runtime}' is not enabled on this server")
    tail = parse_tail(request.args.get("tail"))
    container = request.args.get("container")
    if query_bool("follow"):
        return sse_response(_follower(id, runtime, tail, container), headers=NO_REFERRER)
    since = parse_since(request.args.get("since"))
    handles = _selected(services.supervisor.handles(id), container)
    per_instance: list[list[LogLineView]] = [[] for _ in handles]

    async def fetch(index: int, handle: InstanceHandle) -> None:
        with trio.move_on_after(LOGS_CALL_TIMEOUT):
            try:
                lines = await runtime.logs(handle, tail=tail, since=since)
            except Exception as exc:  # noqa: BLE001 - one instance failing must not hide the others
                log.warning("logs of %s failed: %s", handle.name, exc)
                return
            per_instance[index] = [view(line, handle) for line in lines]

    async with trio.open_nursery() as nursery:
        for index, handle in enumerate(handles):
            nursery.start_soon(fetch, index, handle)
    merged = [line for lines in per_instance for line in lines]
    if len(per_instance) > 1 and all(line.timestamp for line in merged):
        merged.sort(key=lambda line: line.timestamp or "")
    return json_response(merged, headers=NO_REFERRER)


def _follower(deployment_id: str, runtime: Runtime, tail: int | None, container: str | None):
    """Producer for the SSE stream: follow every instance, and new ones as they appear.

    Instances present when the stream opens start with `tail` lines; instances that
    appear later (restarts, scale-up) are followed from their first line. The stream
    ends when the deployment row is purged.
    """
    services = state().services

    async def follow_one(handle: InstanceHandle, lines_back: int | None, send: trio.MemorySendChannel[bytes]) -> None:
        try:
            stream = runtime.follow_logs(handle, tail=lines_back)
            # An async generator holding an engine connection: close it deterministically.
            closing = (
                contextlib.aclosing(cast(AsyncGenerator[LogLine, None], stream))
                if hasattr(stream, "aclose")
                else contextlib.nullcontext(stream)
            )
            async with closing:
                async for line in stream:
                    await send.send(sse_event(view(line, handle)))
        except Exception as exc:  # noqa: BLE001 - the instance (or the client) went away
            log.debug("log stream of %s ended: %s", handle.name, exc)

    async def produce(send: trio.MemorySendChannel[bytes]) -> None:
        await send.send(STREAM_OPEN)
        followed: set[str] = set()
        first = True
        async with trio.open_nursery() as nursery:
            while await services.deployments.get(deployment_id) is not None:
                for handle in _selected(services.supervisor.handles(deployment_id), container):
                    if handle.id not in followed:
                        followed.add(handle.id)
                        nursery.start_soon(follow_one, handle, tail if first else None, send)
                first = False
                await trio.sleep(HANDLE_POLL_INTERVAL)
            nursery.cancel_scope.cancel(reason="deployment purged")

    return produce
