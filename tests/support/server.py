"""`RingServer`: a real `ring-actors serve` subprocess for end-to-end tests.

Each server gets its own temp RING_CONFIG_DIR (config.toml with a context on
127.0.0.1 and a free port), secret key, SQLite database, and short timing knobs.
It remembers every deployment created through `deploy()` (or `track()`), and
`close()` deletes them, waits until the runtime holds no container labelled
`ring_deployment=<id>`, and fails the test run if one is left behind.

    server = RingServer(runtimes=("docker",))
    server.start()
    token = server.login()
    with server.client(token) as api:
        created = server.deploy(api, {...})
        server.wait_for_status(api, created["id"], "running")
    server.close()

Plain helpers only (blocking, httpx); fixtures live in tests/conftest.py.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.support.engines import DOCKER_API_VERSION, DOCKER_SOCK, unix_request

__all__ = [
    "HELLO_COMMAND",
    "IDLE_COMMAND",
    "EventStream",
    "RingServer",
    "ServerError",
    "docker_containers",
    "free_port",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
OWNER_LABEL = "ring_deployment"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "changeme"

T = TypeVar("T")

HELLO_COMMAND = ["sh", "-c", "trap 'exit 143' TERM; while true; do echo hello; sleep 1; done"]
"""Prints `hello` every second. Exits at once on SIGTERM with status 143, as a process killed by
the signal would: a shell running as PID 1 ignores SIGTERM otherwise, and every stop would wait
out the engine's 10 s grace period."""
IDLE_COMMAND = ["sh", "-c", "trap 'exit 143' TERM; while true; do sleep 1; done"]
"""Does nothing, forever; exits at once on SIGTERM."""

FAST_ENV = {
    "RING_SCHEDULER_INTERVAL": "1",
    "RING_BACKOFF_BASE": "0.2",
    "RING_BACKOFF_MAX": "2",
    "RING_HEALTHY_WINDOW": "3",
}


class ServerError(RuntimeError):
    """The server did not start, died, or left something behind."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def docker_containers(deployment_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Containers (running or not) labelled with any of these deployment ids."""
    ids = list(deployment_ids)
    if not ids:
        return []
    found: list[dict[str, Any]] = []
    for deployment_id in ids:
        filters = urllib.parse.quote(json.dumps({"label": [f"{OWNER_LABEL}={deployment_id}"]}))
        status, body = unix_request(
            DOCKER_SOCK, "GET", f"/v{DOCKER_API_VERSION}/containers/json?all=1&filters={filters}"
        )
        if status != 200:
            raise ServerError(f"docker: listing containers answered {status}: {body[:200]!r}")
        found.extend(json.loads(body))
    return found


def _remove_container(container_id: str) -> None:
    unix_request(DOCKER_SOCK, "DELETE", f"/v{DOCKER_API_VERSION}/containers/{container_id}?force=1&v=1", timeout=30)


class EventStream:
    """A live `text/event-stream` response; `next(predicate, timeout)` returns parsed `data:` objects.

    A reader thread turns the body into messages, so a wait is bounded by its own
    timeout even while the server only sends keep-alive comments.
    """

    _END = object()

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.received: list[Any] = []
        self._queue: queue.Queue[Any] = queue.Queue()
        self.opened = threading.Event()
        self._reader = threading.Thread(target=self._read, name="sse-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        data: list[str] = []
        try:
            for line in self.response.iter_lines():
                if line.startswith(": stream open"):
                    self.opened.set()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                elif line == "" and data:
                    self._queue.put(json.loads("\n".join(data)))
                    data = []
        except (httpx.HTTPError, ValueError, RuntimeError) as exc:  # closed by us, or the server went away
            self._queue.put(exc)
        finally:
            self.opened.set()
            self._queue.put(self._END)

    def next(self, predicate: Callable[[Any], bool] = lambda _: True, *, timeout: float = 30.0) -> Any:
        """The next message matching `predicate`.

        Raises:
            TimeoutError: none within `timeout` seconds.
            EOFError: the stream ended first.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise TimeoutError(
                    f"no matching event within {timeout}s; last received: {self.received[-5:]!r}"
                ) from None
            if item is self._END or isinstance(item, Exception):
                self._queue.put(self._END)
                raise EOFError(f"event stream ended ({item!r}); last received: {self.received[-5:]!r}")
            self.received.append(item)
            if predicate(item):
                return item


class RingServer:
    """One `ring-actors serve` process with its own config dir, database and port."""

    def __init__(
        self,
        *,
        runtimes: Iterable[str] = ("docker",),
        extra_config: str = "",
        env: dict[str, str] | None = None,
        cors_origins: Iterable[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        self.runtimes = tuple(runtimes)
        self.extra_config = extra_config
        self.extra_env = dict(env or {})
        self.cors_origins = list(cors_origins)
        self.startup_timeout = startup_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="ring-e2e-"))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.secret_key = base64.b64encode(os.urandom(32)).decode()
        self.log_path = self.dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.deployment_ids: list[str] = []
        self._admin_token: str | None = None
        self._write_config()

    # ------------------------------------------------------------------ lifecycle

    def _write_config(self) -> None:
        lines = [
            "[contexts.default]",
            "current = true",
            'host = "127.0.0.1"',
            'api.scheme = "http"',
            f"api.port = {self.port}",
            f"api.cors_origins = {json.dumps(self.cors_origins)}",
            "",
            "[server.scheduler]",
            "interval = 1",
            "",
        ]
        for runtime in self.runtimes:
            lines += [f"[server.runtime.{runtime.replace('-', '_')}]", "enabled = true", ""]
        (self.dir / "config.toml").write_text("\n".join(lines) + self.extra_config)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RING_")}
        env.update(FAST_ENV)
        env.update(
            RING_CONFIG_DIR=str(self.dir),
            RING_SECRET_KEY=self.secret_key,
            RING_DATABASE_PATH=str(self.dir / "ring.db"),
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> RingServer:
        if self.running:
            return self
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ring_actors.cli.main", "serve"],
                cwd=self.dir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ServerError(
                    f"ring-actors serve exited with {self.process.returncode} during start-up:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise ServerError(
            f"ring-actors serve did not answer /healthz within {self.startup_timeout}s:\n{self.log_tail()}"
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait (graceful: workloads keep running). Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise ServerError(f"server ignored SIGTERM for {timeout}s:\n{self.log_tail()}") from None
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown at all."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> RingServer:
        """Stop and start again with the same directory, database and port."""
        self.stop()
        self._admin_token = None
        return self.start()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # ------------------------------------------------------------------ API helpers

    def login(self, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> str:
        response = httpx.post(
            f"{self.base_url}/login", json={"username": username, "password": password}, timeout=30
        )
        if response.status_code != 200:
            raise ServerError(f"login as {username} failed: {response.status_code} {response.text}")
        return response.json()["token"]

    def client(self, token: str | None = None, *, timeout: float = 30.0) -> httpx.Client:
        """An API client. It keeps no idle connection: hypercorn's graceful shutdown waits out its
        whole grace period (10 s) for idle keep-alive connections, which would slow every stop()."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    @property
    def admin_token(self) -> str:
        if self._admin_token is None:
            self._admin_token = self.login()
        return self._admin_token

    def create_user(self, username: str, password: str = "password-123", *, role: str = "viewer") -> dict[str, Any]:
        """Create a user as the default admin and give it `role`; returns the user object."""
        with self.client(self.admin_token) as api:
            response = api.post("/users", json={"username": username, "password": password})
            if response.status_code != 201:
                raise ServerError(f"POST /users answered {response.status_code}: {response.text}")
            user = response.json()
            if role != user["role"]:
                response = api.put(f"/users/{user['id']}", json={"role": role})
                if response.status_code != 200:
                    raise ServerError(f"PUT /users answered {response.status_code}: {response.text}")
                user = response.json()
        return user

    def pat(
        self,
        scopes: Iterable[str],
        *,
        namespaces: Iterable[str] = (),
        name: str = "test-token",
        expire_at: str | None = None,
        token: str | None = None,
    ) -> str:
        """Mint a personal access token (as the default admin unless `token` is given); returns its value."""
        body: dict[str, Any] = {"name": name, "scopes": list(scopes), "namespaces": list(namespaces)}
        if expire_at is not None:
            body["expire_at"] = expire_at
        with self.client(token or self.admin_token) as api:
            response = api.post("/tokens", json=body)
        if response.status_code != 201:
            raise ServerError(f"POST /tokens answered {response.status_code}: {response.text}")
        return response.json()["token"]

    def track(self, deployment_id: str) -> str:
        if deployment_id not in self.deployment_ids:
            self.deployment_ids.append(deployment_id)
        return deployment_id

    def deploy(self, api: httpx.Client, spec: dict[str, Any], *, force: bool = False) -> dict[str, Any]:
        """POST /deployments, expect 201, remember the id for cleanup."""
        response = api.post("/deployments", params={"force": "true"} if force else None, json=spec)
        if response.status_code != 201:
            raise AssertionError(f"POST /deployments answered {response.status_code}: {response.text}")
        body = response.json()
        self.track(body["id"])
        return body

    def wait_for(
        self, predicate: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.2, what: str = ""
    ) -> T:
        """Poll `predicate` until it returns something truthy; return that."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            last = predicate()
            if last:
                return last
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate!r}; last={last!r}")
            time.sleep(interval)

    def wait_for_status(
        self, api: httpx.Client, deployment_id: str, statuses: str | Iterable[str], *, timeout: float = 60.0
    ) -> dict[str, Any]:
        """Poll GET /deployments/{id} until its status is one of `statuses`."""
        wanted = {statuses} if isinstance(statuses, str) else set(statuses)
        seen: list[str] = []

        def check() -> dict[str, Any] | None:
            response = api.get(f"/deployments/{deployment_id}")
            if response.status_code != 200:
                seen.append(f"HTTP {response.status_code}")
                return None
            body = response.json()
            seen.append(body["status"])
            return body if body["status"] in wanted else None

        try:
            return self.wait_for(check, timeout=timeout, what=f"deployment {deployment_id[:8]} in {sorted(wanted)}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; statuses seen: {seen[-5:]}\n{self.log_tail(30)}") from None

    @contextmanager
    def stream(self, path: str, token: str | None = None, **params: Any) -> Iterator[EventStream]:
        """Open an SSE endpoint; returns once the server says the stream is live (subscribed)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        timeout = httpx.Timeout(10.0, read=None)
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout) as http:
            with http.stream("GET", path, params=params) as response:
                if response.status_code != 200:
                    response.read()
                    raise AssertionError(f"GET {path} answered {response.status_code}: {response.text}")
                assert response.headers["content-type"].startswith("text/event-stream"), response.headers
                stream = EventStream(response)
                if not stream.opened.wait(10):
                    raise AssertionError(f"GET {path}: the server never said the stream is open")
                yield stream

    # ------------------------------------------------------------------ cleanup

    def cleanup(self, *, timeout: float = 60.0) -> None:
        """Delete every tracked deployment and verify the runtime kept none of their containers.

        Raises:
            ServerError: a container labelled with a tracked id outlived the deletion.
        """
        if not self.deployment_ids:
            return
        if not self.running:
            self.start()
        with self.client(self.login()) as api:
            for deployment_id in self.deployment_ids:
                api.delete(f"/deployments/{deployment_id}")

            def gone() -> bool:
                return all(api.get(f"/deployments/{d}").status_code == 404 for d in self.deployment_ids) and not (
                    "docker" in self.runtimes and docker_containers(self.deployment_ids)
                )

            try:
                self.wait_for(gone, timeout=timeout, interval=0.5, what="tracked deployments to be purged")
            except TimeoutError:
                leftovers = docker_containers(self.deployment_ids) if "docker" in self.runtimes else []
                for container in leftovers:
                    _remove_container(container["Id"])
                if leftovers:
                    names = [c.get("Names") for c in leftovers]
                    raise ServerError(f"containers left behind after delete: {names}\n{self.log_tail()}") from None
        self.deployment_ids.clear()

    def close(self) -> None:
        """Clean up deployments, stop the server and remove its directory."""
        try:
            if self.process is not None:
                self.cleanup()
        finally:
            try:
                if self.running:
                    self.stop()
            finally:
                self.kill()
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
