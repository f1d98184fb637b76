"""Pure output helpers of the CLI: tables, replicas, timestamps, exit codes, colour."""

from __future__ import annotations

import io
import json

import pytest

from ring_actors.cli.output import (
    Console,
    ExitCode,
    exit_code_for_status,
    format_bytes,
    format_time,
    print_structured,
    render_table,
    replicas_cell,
    use_colour,
)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("status", "code"),
    [(200, 0), (201, 0), (204, 0), (400, 1), (401, 2), (403, 2), (404, 4), (408, 1), (409, 5), (422, 1), (500, 1)],
)
def test_exit_code_for_status(status: int, code: int) -> None:
    """Verify the HTTP status -> exit code table of cli.md §4."""
    assert exit_code_for_status(status) == code


def test_exit_code_names() -> None:
    """Verify the exit codes keep Ring's numeric values."""
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("deployment", "cell"),
    [
        ({"replicas": 3, "instances": [{"id": "a"}, {"id": "b"}]}, "2/3"),
        ({"replicas": 1}, "0/1"),
        (
            {
                "replicas": 2,
                "instances": [],
                "autoscale": {"min": 2, "max": 8, "target_cpu": 70},
                "desired_replicas": 8,
            },
            "0/8*",
        ),
        ({"replicas": 2, "instances": [{"id": "a"}] * 3, "autoscale": {"min": 1, "max": 8, "target_cpu": 50}}, "3/2*"),
    ],
)
def test_replicas_cell(deployment: dict, cell: str) -> None:
    """Verify `<live>/<target>` with a `*` for autoscaled targets (desired_replicas when known)."""
    assert replicas_cell(deployment) == cell


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-05-03T22:22:21.123456Z", "2026-05-03 22:22:21"),
        ("2026-05-03T22:22:21+00:00", "2026-05-03 22:22:21"),
        ("2026-05-04T00:22:21.5+02:00", "2026-05-03 22:22:21"),
        ("2026-05-03T20:00:00-01:30", "2026-05-03 21:30:00"),
        ("2026-05-30 20:07:20.341309196 UTC", "2026-05-30 20:07:20"),
        ("2026-05-30 20:07:20", "2026-05-30 20:07:20"),
        ("", ""),
        (None, ""),
        ("yesterday", "yesterday"),
    ],
)
def test_format_time(value: object, shown: str) -> None:
    """Verify timestamps are shown in UTC, to the second, without a zone, whatever format the server used."""
    assert format_time(value) == shown


def test_render_table_aligns_columns_without_trailing_spaces() -> None:
    """Verify columns are padded to the widest cell and the last column is not padded."""
    text = render_table(("ID", "Name", "Status"), [["1", "web", "running"], ["22", "a-long-name", "failed"]])
    assert text.splitlines() == [
        "ID  Name         Status",
        "1   web          running",
        "22  a-long-name  failed",
    ]


def test_render_table_colours_after_padding_only_on_a_terminal() -> None:
    """Verify coloured cells keep the alignment and plain consoles get no escape codes."""
    rows = [[("running", "green"), "x"], [("failed", "red"), "y"]]
    plain = render_table(("Status", "N"), rows, Console(io.StringIO(), colour=False))
    assert "\x1b" not in plain
    coloured = render_table(("Status", "N"), rows, Console(_Tty(), colour=True))
    assert "\x1b[32mrunning\x1b[0m  x" in coloured
    assert "\x1b[31mfailed\x1b[0m   y" in coloured


def test_use_colour_needs_a_terminal_and_no_NO_COLOR() -> None:
    """Verify colour only on a TTY and never when NO_COLOR is non-empty (an empty NO_COLOR is ignored)."""
    assert use_colour(_Tty(), env={}) is True
    assert use_colour(_Tty(), env={"NO_COLOR": "1"}) is False
    assert use_colour(_Tty(), env={"NO_COLOR": ""}) is True
    assert use_colour(io.StringIO(), env={}) is False


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0 B"), (1023, "1023 B"), (2048, "2.00 KiB"), (52428800, "50.00 MiB"), (3 * 2**30, "3.00 GiB"), (None, "0 B")],
)
def test_format_bytes(value: object, shown: str) -> None:
    """Verify binary units with two decimals, as Ring's metrics block shows them."""
    assert format_bytes(value) == shown


def test_print_structured_json_is_verbatim_and_yaml_is_parsed() -> None:
    """Verify `-o json` prints the API body byte for byte and `-o yaml` renders the same data."""
    raw = '[{"id":"a","name":"web"}]'
    out = io.StringIO()
    print_structured(json.loads(raw), "json", out, raw=raw)
    assert out.getvalue() == raw + "\n"
    out = io.StringIO()
    print_structured(json.loads(raw), "yaml", out, raw=raw)
    assert out.getvalue() == "- id: a\n  name: web\n"
