"""The `ring-actors` CLI as a user runs it: a subprocess against a real server and the real Docker engine.

One server per module (`server` fixture). The CLI reads that server's
RING_CONFIG_DIR (its config.toml names the port) and stores its login there.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.engines import IMAGE_V1
from tests.support.server import RingServer, free_port

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_cli_commands")]

REPO = Path(__file__).resolve().parents[2]
NS = "cli-e2e"
MANIFEST = f"""
namespaces:
  main:
    name: {NS}
deployments:
  web:
    name: web
    namespace: $NAMESPACE
    image: {IMAGE_V1}
    command: ["sh", "-c", "echo hello from $GREETING; exec httpd -f -p 80 -h /www"]
    labels:
      app: web
  worker:
    name: worker
    namespace: {NS}
    image: {IMAGE_V1}
    replicas: 2
    command: ["sh", "-c", "while true; do echo tick; sleep 1; done"]
"""


def cli_command() -> list[str]:
    """`ring-actors` from the same environment as the tests (console script, else `python -m`)."""
    script = Path(sys.executable).parent / "ring-actors"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "ring_actors.cli.main"]


def cli_env(server: RingServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RING_") and k != "NO_COLOR"}
    env["RING_CONFIG_DIR"] = str(server.dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


def ring(
    server: RingServer, *args: str, stdin: str | None = None, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cli_command(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=cli_env(server, **env),
        cwd=server.dir,
        timeout=timeout,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


class Follower:
    """A `... --follow` CLI process whose stdout lines are read with a deadline."""

    def __init__(self, server: RingServer, *args: str) -> None:
        self.process = subprocess.Popen(
            [*cli_command(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=cli_env(server),
            cwd=server.dir,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._buffer = b""

    def _read(self, wait: float) -> bool:
        """Read what is available within `wait` seconds; False at end of output."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            return True
        chunk = os.read(fd, 65536)
        if not chunk:
            return False
        self._buffer += chunk
        *complete, self._buffer = self._buffer.split(b"\n")
        self.lines.extend(part.decode(errors="replace") for part in complete)
        return True

    def wait_for_count(self, needle: str, count: int, timeout: float = 60.0) -> list[str]:
        """Read until `count` lines contain `needle`; returns those lines."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [line for line in self.lines if needle in line]
            if len(matching) >= count:
                return matching
            if time.monotonic() > deadline or not self._read(0.5):
                raise AssertionError(
                    f"wanted {count} lines with {needle!r} within {timeout}s; got {self.lines[-20:]!r}"
                )

    def wait_for_line(self, needle: str, timeout: float = 60.0) -> str:
        return self.wait_for_count(needle, 1, timeout)[0]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode


@pytest.fixture(scope="module")
def logged_in(server: RingServer) -> RingServer:
    result = ring(server, "login", "-u", "admin", "-p", "changeme")
    assert result.returncode == 0, result.stderr
    return server


@pytest.fixture(scope="module")
def applied(logged_in: RingServer) -> Iterator[dict[str, dict[str, Any]]]:
    """The manifest applied with --wait; yields the deployments by name."""
    server = logged_in
    manifest = server.dir / "ring.yaml"
    manifest.write_text(MANIFEST)
    (server.dir / ".env").write_text("NAMESPACE=cli-e2e\nGREETING=the-env-file\n")
    result = ring(server, "apply", "-f", str(manifest), "-e", str(server.dir / ".env"), "--wait", "--timeout", "90")
    listed = ring(server, "deployment", "list", "-n", NS, "-o", "json")
    deployments = {d["name"]: d for d in json.loads(listed.stdout)}
    for d in deployments.values():
        server.track(d["id"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Namespace 'cli-e2e' created" in result.stdout
    assert "Deployment 'web' created" in result.stdout and "Deployment 'worker' created" in result.stdout
    assert "All 2 deployment(s) running" in result.stdout
    yield deployments


def test_login_wrong_password_exits_2(server: RingServer) -> None:
    """Verify a wrong password is exit 2 with Ring's `Login failed: Unauthorized (401)` block."""
    result = ring(server, "login", "-u", "admin", "-p", "not-the-password")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["Login failed: Unauthorized (401)", "  invalid credentials"]


def test_login_stores_a_private_token(logged_in: RingServer) -> None:
    """Verify login wrote auth.json (mode 0600) with a working token for the context."""
    auth = logged_in.dir / "auth.json"
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600
    token = json.loads(auth.read_text())["default"]["token"]
    assert token.startswith("ring_pat_")
    assert ring(logged_in, "context", "user-token").stdout.strip() == token


def test_dry_run_creates_nothing(logged_in: RingServer) -> None:
    """Verify --dry-run previews namespaces and deployments and sends nothing to the server."""
    manifest = logged_in.dir / "dry.yaml"
    manifest.write_text(MANIFEST.replace(NS, "cli-dry").replace("$NAMESPACE", "cli-dry"))
    result = ring(logged_in, "apply", "-f", str(manifest), "--dry-run", "--verbose")
    assert result.returncode == 0, result.stderr
    assert "DRY RUN - Would create namespace 'cli-dry'" in result.stdout
    assert "DRY RUN - Deployment 'web'" in result.stdout and "DRY RUN - Deployment 'worker'" in result.stdout
    assert '"replicas": 2' in result.stdout
    assert "DRY RUN COMPLETE - No actual changes were made" in result.stdout
    assert json.loads(ring(logged_in, "deployment", "list", "-n", "cli-dry", "-o", "json").stdout) == []
    assert "cli-dry" not in ring(logged_in, "namespace", "list").stdout


def test_apply_wait_and_list(applied: dict[str, dict[str, Any]], logged_in: RingServer) -> None:
    """Verify applied deployments are running, with interpolated values and the table's replicas column."""
    assert {name: d["status"] for name, d in applied.items()} == {"web": "running", "worker": "running"}
    assert applied["web"]["namespace"] == NS and applied["web"]["labels"] == {"app": "web"}
    assert "the-env-file" in " ".join(applied["web"]["command"])
    table = ring(logged_in, "deployment", "list", "-n", NS, "-s", "running")
    assert table.returncode == 0
    rows = {line.split()[6]: line.split() for line in table.stdout.splitlines()[1:]}
    assert rows["worker"][-2:] == ["2/2", "running"] and rows["web"][-2:] == ["1/1", "running"]
    labelled = json.loads(ring(logged_in, "deployment", "list", "-l", "app=web", "-o", "json").stdout)
    assert [d["name"] for d in labelled] == ["web"]


def test_inspect_logs_and_events(applied: dict[str, dict[str, Any]], logged_in: RingServer) -> None:
    """Verify inspect (by namespace/name and id), logs and events of a running deployment."""
    web = applied["web"]
    inspect = ring(logged_in, "deployment", "inspect", f"{NS}/web")
    assert inspect.returncode == 0, inspect.stderr
    assert f"ID            : {web['id']}" in inspect.stdout and "Status        : running" in inspect.stdout
    as_json = json.loads(ring(logged_in, "deployment", "inspect", web["id"], "-o", "json").stdout)
    assert as_json["id"] == web["id"] and as_json["instances"]

    def logged() -> bool:
        result = ring(logged_in, "deployment", "logs", web["id"], "--tail", "10")
        return result.returncode == 0 and "hello from the-env-file" in result.stdout

    logged_in.wait_for(logged, timeout=30, what="the web deployment's first log line")
    events = ring(logged_in, "deployment", "events", f"{NS}/web")
    assert events.returncode == 0
    assert events.stdout.splitlines()[0].split() == ["Time", "Level", "Component", "Reason", "Message"]
    assert "scale_up" in events.stdout


def test_logs_and_events_follow(applied: dict[str, dict[str, Any]], logged_in: RingServer) -> None:
    """Verify `logs -f` streams new lines and `events -f` shows history then live events (SSE)."""
    worker = applied["worker"]
    logs = Follower(logged_in, "deployment", "logs", worker["id"], "-f", "--tail", "1")
    try:
        lines = logs.wait_for_count("tick", 6, timeout=30)  # two replicas tick every second: lines keep coming
        assert all("_worker_" in line for line in lines), lines
    finally:
        logs.stop()
    events = Follower(logged_in, "deployment", "events", f"{NS}/worker", "-f")
    try:
        events.wait_for_line("Following events for deployment", timeout=30)
        events.wait_for_line("scale_up", timeout=30)
    finally:
        events.stop()


def test_apply_rejection_shows_violation_codes(logged_in: RingServer) -> None:
    """Verify the server's 422 is rendered one violation per line with its code, exit 1."""
    manifest = logged_in.dir / "bad.yaml"
    manifest.write_text(
        f"deployments:\n  bad:\n    name: bad\n    namespace: {NS}\n    image: {IMAGE_V1}\n"
        "    ports: [{published: 0, target: 80}]\n    environment: {'bad-key': 'x'}\n"
    )
    result = ring(logged_in, "apply", "-f", str(manifest))
    assert result.returncode == 1
    assert "Unable to apply deployment 'bad': Validation failed (422)" in result.stderr
    assert "[deployment.ports.published.out_of_range]" in result.stderr
    assert "[deployment.environment.key.invalid]" in result.stderr
    assert "  Failed: 1" in result.stdout


def test_apply_wait_reports_a_failed_pull(logged_in: RingServer) -> None:
    """Verify --wait ends on a failure status and prints the reason from the latest error event."""
    manifest = logged_in.dir / "missing.yaml"
    manifest.write_text(
        "deployments:\n  ghost:\n    name: ghost\n    namespace: cli-fail\n"
        "    image: 127.0.0.1:5000/ring-test/busybox:no-such-tag\n"
    )
    result = ring(logged_in, "apply", "-f", str(manifest), "--wait", "--timeout", "90")
    for d in json.loads(ring(logged_in, "deployment", "list", "-n", "cli-fail", "-o", "json").stdout):
        logged_in.track(d["id"])
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("  cli-fail/ghost: "))
    assert "image_pull_back_off" in line and len(line) > len("  cli-fail/ghost: image_pull_back_off: ")
    assert "error: 1 of 1 deployment(s) failed" in result.stderr


def test_delete_deployments(logged_in: RingServer) -> None:
    """Verify delete of several deployments (one by namespace/name), then 404 for an unknown id (exit 4)."""
    manifest = logged_in.dir / "doomed.yaml"
    manifest.write_text(
        "deployments:\n"
        f"  a: {{name: doomed-a, namespace: cli-del, image: '{IMAGE_V1}', command: [sleep, '600']}}\n"
        f"  b: {{name: doomed-b, namespace: cli-del, image: '{IMAGE_V1}', command: [sleep, '600']}}\n"
    )
    applied = ring(logged_in, "apply", "-f", str(manifest))
    created = {
        d["name"]: d for d in json.loads(ring(logged_in, "deployment", "list", "-n", "cli-del", "-o", "json").stdout)
    }
    for d in created.values():
        logged_in.track(d["id"])
    assert applied.returncode == 0, applied.stderr
    result = ring(logged_in, "deployment", "delete", "cli-del/doomed-a", created["doomed-b"]["id"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"Deployment {created['doomed-a']['id']} deleted",
        f"Deployment {created['doomed-b']['id']} deleted",
    ]

    def gone() -> bool:
        return json.loads(ring(logged_in, "deployment", "list", "-n", "cli-del", "-o", "json").stdout) == []

    logged_in.wait_for(gone, timeout=60, interval=1, what="deleted deployments to be purged")
    missing = ring(logged_in, "deployment", "delete", "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == 4
    assert missing.stderr.strip() == "error: deployment '00000000-0000-4000-8000-000000000000' not found"
    assert ring(logged_in, "deployment", "inspect", "cli-del/doomed-a").returncode == 4


def test_namespace_create_list_delete(logged_in: RingServer) -> None:
    """Verify namespace create (then 409 -> exit 5), list, delete (then 404 -> exit 4)."""
    assert ring(logged_in, "namespace", "create", "cli-ns").returncode == 0
    again = ring(logged_in, "namespace", "create", "cli-ns")
    assert again.returncode == 5 and "already exists" in again.stderr
    invalid = ring(logged_in, "namespace", "create", "Not_Valid")
    assert invalid.returncode == 1 and "[namespace.name.format]" in invalid.stderr
    assert "cli-ns" in [line.split()[1] for line in ring(logged_in, "namespace", "list").stdout.splitlines()[1:]]
    assert ring(logged_in, "namespace", "delete", "cli-ns").returncode == 0
    gone = ring(logged_in, "namespace", "delete", "cli-ns")
    assert gone.returncode == 4 and gone.stderr.strip() == "error: namespace 'cli-ns' not found"


def test_user_lifecycle(logged_in: RingServer) -> None:
    """Verify user create/list/update/delete, with role changes and Ring's error mapping."""
    assert ring(logged_in, "user", "create", "-u", "carol", "-p", "carol-password-1").returncode == 0
    users = json.loads(ring(logged_in, "user", "list", "-o", "json").stdout)
    carol = next(u for u in users if u["username"] == "carol")
    assert "carol" in ring(logged_in, "user", "list").stdout
    updated = ring(logged_in, "user", "update", "--id", carol["id"], "--role", "operator", "-u", "carol2")
    assert updated.returncode == 0, updated.stderr
    assert "carol2" in ring(logged_in, "user", "list").stdout
    assert logged_in.login("carol2", "carol-password-1")
    assert ring(logged_in, "user", "delete", carol["id"]).returncode == 0
    assert ring(logged_in, "user", "delete", carol["id"]).returncode == 4


def test_token_lifecycle(applied: dict[str, dict[str, Any]], logged_in: RingServer) -> None:
    """Verify token create (stdout = token), use via RING_TOKEN, list, rotate, revoke (needs --yes off a TTY)."""
    created = ring(logged_in, "token", "create", "cli-read", "-s", "deployments:read", "-e", "1d")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("ring_pat_") and len(created.stdout.splitlines()) == 1
    assert "  prefix:     " + token[:15] in created.stderr
    assert ring(logged_in, "deployment", "list", RING_TOKEN=token).returncode == 0
    denied = ring(logged_in, "namespace", "create", "cli-denied", RING_TOKEN=token)
    assert denied.returncode == 2
    tokens = json.loads(ring(logged_in, "token", "list", "-o", "json").stdout)
    token_id = next(t["id"] for t in tokens if t["name"] == "cli-read")
    rotated = ring(logged_in, "token", "rotate", token_id)
    assert rotated.returncode == 0, rotated.stderr
    new_token = rotated.stdout.strip()
    assert new_token.startswith("ring_pat_") and new_token != token
    assert ring(logged_in, "deployment", "list", RING_TOKEN=token).returncode == 2
    assert ring(logged_in, "deployment", "list", RING_TOKEN=new_token).returncode == 0
    new_id = next(
        t["id"]
        for t in json.loads(ring(logged_in, "token", "list", "-o", "json").stdout)
        if t["name"] == "cli-read" and not t.get("revoked_at")
    )
    refused = ring(logged_in, "token", "revoke", new_id)
    assert refused.returncode == 1 and "pass --yes" in refused.stderr
    assert ring(logged_in, "token", "revoke", new_id, "--yes").returncode == 0
    assert ring(logged_in, "deployment", "list", RING_TOKEN=new_token).returncode == 2
    statuses = [line.split()[5] for line in ring(logged_in, "token", "list").stdout.splitlines()[1:]]
    assert statuses and set(statuses) == {"revoked"}


def test_server_down_exit_code_and_message(tmp_path: Path) -> None:
    """Verify an unreachable server gives exit 3 and tells the user how to start it."""
    port = free_port()
    (tmp_path / "config.toml").write_text(
        f'[contexts.default]\ncurrent = true\nhost = "127.0.0.1"\napi.scheme = "http"\napi.port = {port}\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RING_")}
    env.update(RING_CONFIG_DIR=str(tmp_path), RING_TOKEN="ring_pat_x", PYTHONPATH=str(REPO))
    for args in (["deployment", "list"], ["login", "-u", "a", "-p", "b"]):
        result = subprocess.run(
            [*cli_command(), *args], capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL
        )
        assert result.returncode == 3
        assert result.stderr.strip().endswith(
            f"error: cannot reach the ring-actors server at http://127.0.0.1:{port}: is it running? "
            "Start it with `ring-actors serve`"
        )


def _run_on_pty(server: RingServer, args: list[str], **env: str) -> str:
    """Run the CLI with stdout on a pseudo-terminal; returns what it printed."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [*cli_command(), *args],
            stdout=follower,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=cli_env(server, **env),
        )
        os.close(follower)
        output = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        process.wait(60)
        assert process.returncode == 0, process.stderr.read() if process.stderr else ""
        if process.stderr:
            process.stderr.close()
    finally:
        os.close(leader)
    return output.decode(errors="replace")


def test_colour_only_on_a_terminal_without_NO_COLOR(logged_in: RingServer) -> None:
    """Verify escape codes appear on a TTY, never with NO_COLOR, never when piped."""
    ring(logged_in, "namespace", "create", "cli-colour")
    piped = ring(logged_in, "token", "list")
    assert piped.returncode == 0 and "\x1b[" not in piped.stdout
    created = ring(logged_in, "token", "create", "colour", "-s", "deployments:read")
    assert "\x1b[" not in created.stdout + created.stderr
    on_tty = _run_on_pty(logged_in, ["token", "list"])
    assert "\x1b[32mactive\x1b[0m" in on_tty
    no_color = _run_on_pty(logged_in, ["token", "list"], NO_COLOR="1")
    assert "active" in no_color and "\x1b[" not in no_color
    ring(logged_in, "namespace", "delete", "cli-colour")
