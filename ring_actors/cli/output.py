"""Terminal output for the CLI: exit codes, colour, tables, timestamps (spec: cli.md §3.9, §4, §6).

Everything here is pure (no network, no global state) so it is unit tested directly.

Colour rules (cli.md §6): a stream is coloured only when it is a terminal and
`NO_COLOR` is unset or empty; each stream is judged on its own, so piping stdout
never leaves escape codes in the captured text. JSON output is never coloured.

Exit codes (cli.md §4):

| Code | Meaning                                                     |
|------|-------------------------------------------------------------|
| 0    | success                                                     |
| 1    | general: validation, parsing, unexpected status, local error|
| 2    | auth: HTTP 401/403, no credentials                          |
| 3    | connection: refused, timeout, request not sent              |
| 4    | HTTP 404                                                    |
| 5    | HTTP 409                                                    |
"""

from __future__ import annotations

import enum
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import yaml

__all__ = [
    "OUTPUT_FORMATS",
    "CliError",
    "CliExit",
    "Console",
    "ExitCode",
    "exit_code_for_status",
    "format_bytes",
    "format_time",
    "print_structured",
    "render_table",
    "replicas_cell",
    "status_colour",
    "use_colour",
]

OUTPUT_FORMATS = ("table", "json", "yaml")


class ExitCode(enum.IntEnum):
    SUCCESS = 0
    GENERAL = 1
    AUTH = 2
    CONNECTION = 3
    NOT_FOUND = 4
    CONFLICT = 5


def exit_code_for_status(status: int) -> ExitCode:
    """The exit code for an HTTP status (cli.md §4)."""
    if 200 <= status < 300:
        return ExitCode.SUCCESS
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    if status == 409:
        return ExitCode.CONFLICT
    return ExitCode.GENERAL


class CliError(Exception):
    """A failure to report as one `error: <message>` line on stderr, then exit with `code`."""

    def __init__(self, message: str, code: int = ExitCode.GENERAL) -> None:
        super().__init__(message)
        self.message = message
        self.code = int(code)


class CliExit(Exception):
    """Stop with `code`; whatever had to be said was already printed."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = int(code)


# --------------------------------------------------------------------------- colour

_CODES = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

_STATUS_COLOURS = {
    "running": "green",
    "completed": "green",
    "active": "green",
    "success": "green",
    "pending": "yellow",
    "starting": "yellow",
    "deleted": "yellow",
    "warning": "yellow",
    "error": "red",
    "failed": "red",
    "timeout": "red",
    "revoked": "red",
    "expired": "red",
    "crash_loop_back_off": "red",
    "image_pull_back_off": "red",
    "create_container_error": "red",
    "network_error": "red",
    "config_error": "red",
    "file_system_error": "red",
    "insufficient_resources": "red",
}


def use_colour(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """True when `stream` is a terminal and NO_COLOR is unset or empty."""
    env = os.environ if env is None else env
    if env.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # closed or odd streams
        return False


def status_colour(status: str) -> str | None:
    """Colour name of a deployment/token/check status, or None (uncoloured)."""
    return _STATUS_COLOURS.get(status)


class Console:
    """One output stream plus the decision whether to colour it."""

    def __init__(self, stream: TextIO, *, colour: bool | None = None) -> None:
        self.stream = stream
        self.colour = use_colour(stream) if colour is None else colour

    def paint(self, text: str, colour: str | None) -> str:
        if not self.colour or not colour:
            return text
        return f"\x1b[{_CODES[colour]}m{text}\x1b[0m"

    def print(self, text: str = "", colour: str | None = None) -> None:
        print(self.paint(text, colour), file=self.stream, flush=True)

    def write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def success(self, text: str) -> None:
        self.print(text, "green")

    def warning(self, text: str) -> None:
        self.print(text, "yellow")

    def error(self, text: str) -> None:
        self.print(text, "red")


def stdout_console() -> Console:
    return Console(sys.stdout)


def stderr_console() -> Console:
    return Console(sys.stderr)


# --------------------------------------------------------------------------- tables

Cell = str | tuple[str, str | None]
"""A table cell: plain text, or (text, colour name) to colour it on a terminal."""


def _visible(text: str) -> int:
    return len(_ANSI.sub("", text))


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Cell]], console: Console | None = None) -> str:
    """Columns aligned with two spaces, header first; colour applied after padding.

    Cells may be `(text, colour)`; colour only shows when `console` colours.
    The last column is not padded (no trailing spaces).
    """
    plain_rows: list[list[tuple[str, str | None]]] = []
    for row in rows:
        plain_rows.append([(c, None) if isinstance(c, str) else (c[0], c[1]) for c in row])
    widths = [len(h) for h in headers]
    for row in plain_rows:
        for i, (text, _) in enumerate(row):
            widths[i] = max(widths[i], len(text))

    def line(cells: list[tuple[str, str | None]]) -> str:
        parts = []
        last = len(cells) - 1
        for i, (text, colour) in enumerate(cells):
            padded = text if i == last else text.ljust(widths[i])
            if console is not None and colour:
                padded = console.paint(text, colour) + padded[len(text) :]
            parts.append(padded)
        return "  ".join(parts).rstrip()

    out = [line([(h, None) for h in headers])]
    out.extend(line(row) for row in plain_rows)
    return "\n".join(out)


# --------------------------------------------------------------------------- values

_TIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?P<frac>\.\d+)?\s*"
    r"(?P<zone>Z|z|UTC|[+-]\d{2}:?\d{2})?$"
)


def format_time(value: Any) -> str:
    """A timestamp as `YYYY-MM-DD HH:MM:SS` in UTC (cli.md §3.9); empty for null/empty.

    Accepts RFC 3339 (`2026-05-03T22:22:21.5+02:00`, `...Z`), Ring's chrono form
    (`2026-05-03 22:22:21.341309196 UTC`) and SQLite's `YYYY-MM-DD HH:MM:SS`.
    Anything else is shown as it is.
    """
    if value is None or value == "":
        return ""
    text = str(value).strip()
    match = _TIME.match(text)
    if not match:
        return text
    stamp = datetime.strptime(f"{match['date']} {match['time']}", "%Y-%m-%d %H:%M:%S")
    zone = match["zone"]
    if zone and zone not in ("Z", "z", "UTC"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        stamp = stamp - sign * offset
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def replicas_cell(deployment: Mapping[str, Any]) -> str:
    """`<live instances>/<target>`, target = desired_replicas with `*` when autoscaled (`3/8*`)."""
    live = len(deployment.get("instances") or [])
    autoscale = deployment.get("autoscale")
    if autoscale:
        target = deployment.get("desired_replicas")
        if target is None:
            target = deployment.get("replicas", 0)
        return f"{live}/{target}*"
    return f"{live}/{deployment.get('replicas', 0)}"


def format_bytes(value: Any) -> str:
    """Binary units with two decimals (`512.00 MiB`), bytes below 1 KiB."""
    try:
        number = float(value or 0)
    except (TypeError, ValueError):
        return str(value)
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if number >= size:
            return f"{number / size:.2f} {unit}"
    return f"{int(number)} B"


def now_utc() -> datetime:
    return datetime.now(UTC)


def print_structured(body: Any, fmt: str, stream: TextIO | None = None, *, raw: str | None = None) -> None:
    """Print an API body as JSON (verbatim when `raw` is given) or YAML; never coloured."""
    stream = sys.stdout if stream is None else stream
    if fmt == "yaml":
        stream.write(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    elif raw is not None:
        stream.write(raw if raw.endswith("\n") else raw + "\n")
    else:
        stream.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    stream.flush()
