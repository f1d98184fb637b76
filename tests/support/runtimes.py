"""The Docker and Podman engines as the runtime integration tests see them: one `Engine` profile each.

A profile says how to reach an engine (socket, CLI, runtime class), how to read its own view of the
containers for assertions (plain httpx, never the client under test), and what differs between the two
engines where a shared test asserts the same thing (accepted names, bounds, message variants). The shared
tests in tests/integration/ run once per profile; fixtures live in tests/integration/conftest.py.

    engine = DOCKER
    async with running_runtime(engine, tmp_path) as runtime:
        handle = await runtime.create(scope.spec("web"))
        info = await engine.inspect(handle.id)
"""

from __future__ import annotations

import json
import os
import re
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import trio
import trio.testing

from ring_actors.runtimes.base import (
    OWNER_LABEL,
    ExitStatus,
    InstanceHandle,
    InstanceSpec,
)
from ring_actors.runtimes.docker import DockerRuntime
from ring_actors.runtimes.dockerapi import DockerAPI
from ring_actors.runtimes.podman import PodmanRuntime
from tests.support.engines import (
    DOCKER_API_VERSION,
    DOCKER_SOCK,
    IMAGE_V1,
    IMAGE_V2,
    PODMAN_LIBPOD_PREFIX,
    PODMAN_SOCK,
    REGISTRY,
    require_engine,
)

__all__ = [
    "DOCKER",
    "ENGINES",
    "EVENT_DRIVEN_BOUND",
    "IDLE",
    "PODMAN",
    "DockerEngine",
    "Engine",
    "PodmanEngine",
    "Scope",
    "TimedRuntime",
    "engine_params",
    "kill_latencies",
    "kill_latency",
    "registry_copy",
    "registry_digest",
    "rfc3339",
    "running_runtime",
    "timed_runtime",
    "wait_for",
    "watching_exit",
]

EVENT_DRIVEN_BOUND = 0.5
"""A 1 s poll would detect an exit 0.5 s late on average; event-driven detection must beat that every time."""
IDLE = ("sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait")
"""Idles, and stops at once on SIGTERM (PID 1 ignores signals it does not handle)."""
_MANIFEST_TYPES = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


class Engine:
    """One engine: how to reach it, read its view, and what a shared test may accept from it.

    Subclasses hold the values; instances are the module constants DOCKER and PODMAN.
    """

    name: ClassVar[str]
    sock: ClassVar[str]
    runtime_cls: ClassVar[type[DockerRuntime]]
    namespace_prefix: ClassVar[str]
    """First letter of a runtime test's namespace (the namespaces of the two engines never meet)."""
    default_command: ClassVar[tuple[str, ...]]
    """What a test container runs unless the test says otherwise."""
    test_timeout: ClassVar[float]
    """Seconds a runtime test may take."""
    default_network: ClassVar[str]
    """The engine's own default network (a container joins it when not created on `ring_<ns>`)."""
    wildcard_host_ips: ClassVar[tuple[str, ...]]
    """How the engine reports a port binding without a host IP."""
    port_clash_messages: ClassVar[tuple[str, ...]]
    """One of these is in the message when a host port is taken."""
    native_healthcheck: ClassVar[str]
    """"exact": the whole HEALTHCHECK is installed and runs; "test": only its Test is checked, and it runs;
    "absent": the engine cannot run it here, so it is left out."""
    compat_wait_bound: ClassVar[float]
    """Seconds past the exit within which the engine's `/wait` (no pidfd, no events) answers."""
    exit_code_source: ClassVar[str | None]
    """The runtime's `exit_code_sources` key of a self-exit, where the runtime counts sources."""
    cli_removal_bound: ClassVar[float]
    """Seconds within which a removal by the engine's CLI ends a wait (CLI start-up included)."""
    forced_removal_exit_code: ClassVar[int | None]
    """Exit code a wait may see when the container is removed by force (None: any code)."""
    rm_force: ClassVar[tuple[str, ...]]
    """CLI arguments removing a container by force."""
    log_timestamp: ClassVar[str]
    """Regular expression a log line's timestamp matches."""
    log_since_step: ClassVar[float]
    """Seconds after a log line's printed timestamp that lie before the next line (printed 1.5 s later)."""
    pull_test_repo: ClassVar[str]
    """Repository prefix of the throw-away tags of the pull-policy test."""
    hub_image_names: ClassVar[frozenset[str]]
    """How the engine names a container's image created from `busybox`."""
    host_mode_networks: ClassVar[tuple[str, ...]]
    """The networks the engine's inspect lists for a container in host network mode."""

    def __repr__(self) -> str:
        return f"<Engine {self.name}>"

    def require(self) -> Engine:
        """Raise `EngineNotReady` unless the engine answers; return self."""
        require_engine(self.name)
        return self

    def new_runtime(self, **options: Any) -> DockerRuntime:
        return self.runtime_cls(f"unix://{self.sock}", **options)

    def network_name(self, namespace: str) -> str:
        return self.runtime_cls.network_name(namespace)

    def inspect_names(self, name: str) -> set[str]:
        """The names the engine's inspect may show for container `name`."""
        return {f"/{name}"}

    def pinned_image_names(self, pinned_ref: str, tagged_ref: str) -> set[str]:
        """The names the engine's inspect may show as the image of a container created from `pinned_ref`."""
        return {pinned_ref}

    def digest_pulls(self, pulls: list[str], digest: str) -> list[str]:
        """The pulls of a digest-pinned reference among the names of pull events."""
        return [ref for ref in pulls if digest in ref]  # other suites may pull tags meanwhile

    # ------------------------------------------------------------------ async views (plain httpx)

    def client(self, prefix: str = f"/v{DOCKER_API_VERSION}") -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=self.sock), base_url=f"http://{self.name}{prefix}", timeout=60
        )

    async def get(self, path: str, *, prefix: str = f"/v{DOCKER_API_VERSION}", **params: Any) -> Any:
        async with self.client(prefix) as client:
            response = await client.get(path, params=params)
            response.raise_for_status()
            return response.json()

    async def status(self, path: str) -> int:
        async with self.client() as client:
            return (await client.get(path)).status_code

    async def inspect(self, container_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/containers/{container_id}/json")
        return result

    async def containers_of(self, deployment_id: str) -> list[dict[str, Any]]:
        filters = json.dumps({"label": [f"{OWNER_LABEL}={deployment_id}"]})
        result: list[dict[str, Any]] = await self.get("/containers/json", all="true", filters=filters)
        return result

    async def networks_named(self, name: str) -> list[dict[str, Any]]:
        found = await self.get("/networks", filters=json.dumps({"name": [name]}))
        return [net for net in found if net["Name"] == name]

    async def cli(self, *args: str) -> str:
        """Run the engine's CLI (`docker` or `podman`); raise AssertionError when it fails."""
        result = await trio.run_process([self.name, *args], capture_stdout=True, capture_stderr=True, check=False)
        if result.returncode != 0:
            raise AssertionError(f"{self.name} {' '.join(args)} failed: {result.stderr.decode()}")
        return result.stdout.decode()

    def image_pull_events(self) -> AbstractAsyncContextManager[list[str]]:
        """Collect the image names of the engine's `pull` events while the block runs."""
        raise NotImplementedError

    async def stage_pull_test(self, tag: str) -> str:
        """Put IMAGE_V1's content in REGISTRY under `tag`, and IMAGE_V2's in the local store under `tag`.

        Returns:
            The registry's manifest digest of `tag`.
        """
        digest = await registry_copy(IMAGE_V1, tag)
        await self.cli("pull", "-q", IMAGE_V2)
        await self.cli("tag", IMAGE_V2, tag)
        return digest

    async def remove_image_tag(self, client: httpx.AsyncClient, tag: str) -> None:
        raise NotImplementedError

    @contextmanager
    def oom_marker(self, handle: InstanceHandle) -> Iterator[None]:
        """Clean up what the engine leaves behind after an OOM kill of `handle` (nothing by default)."""
        yield

    # ------------------------------------------------------------------ blocking views (lifecycle tests)

    def sync_client(self) -> httpx.Client:
        return httpx.Client(
            transport=httpx.HTTPTransport(uds=self.sock),
            base_url=f"http://{self.name}/v{DOCKER_API_VERSION}",
            timeout=30,
        )

    def list_containers(self, deployment_id: str, *, all_states: bool = True) -> list[dict[str, Any]]:
        filters = json.dumps({"label": [f"{OWNER_LABEL}={deployment_id}"]})
        with self.sync_client() as client:
            response = client.get("/containers/json", params={"all": str(all_states).lower(), "filters": filters})
            response.raise_for_status()
            result: list[dict[str, Any]] = response.json()
            return result

    def inspect_now(self, container_id: str) -> dict[str, Any]:
        with self.sync_client() as client:
            response = client.get(f"/containers/{container_id}/json")
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result

    def kill_now(self, container_id: str) -> None:
        """SIGKILL a container's process."""
        raise NotImplementedError

    def force_remove_all(self, deployment_id: str) -> None:
        with self.sync_client() as client:
            for container in self.list_containers(deployment_id):
                client.delete(f"/containers/{container['Id']}", params={"force": "true", "v": "true", "t": "0"})


class DockerEngine(Engine):
    name = "docker"
    sock = DOCKER_SOCK
    runtime_cls = DockerRuntime
    namespace_prefix = "t"
    default_command = IDLE
    test_timeout = 90.0
    default_network = "bridge"
    wildcard_host_ips = ("0.0.0.0",)
    port_clash_messages = ("already allocated", "address already in use")
    native_healthcheck = "exact"
    compat_wait_bound = EVENT_DRIVEN_BOUND
    exit_code_source = None
    cli_removal_bound = EVENT_DRIVEN_BOUND
    forced_removal_exit_code = None  # Docker stops the container first (die), then destroys it
    rm_force = ("rm", "-f")
    log_timestamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z"
    log_since_step = 0.5
    pull_test_repo = f"{REGISTRY}/ring-test/pulltest"
    hub_image_names = frozenset({"busybox:latest"})
    host_mode_networks = ("host",)

    @asynccontextmanager
    async def image_pull_events(self) -> AsyncIterator[list[str]]:
        seen: list[str] = []
        async with DockerAPI(f"unix://{self.sock}") as api, trio.open_nursery() as nursery:
            ready = trio.Event()

            async def collect() -> None:
                async with api.open_events(filters={"type": ["image"], "event": ["pull"]}) as events:
                    ready.set()
                    async for event in events:
                        seen.append(event.object_id)

            nursery.start_soon(collect)
            await ready.wait()
            yield seen
            await trio.sleep(0.2)  # let the engine deliver the last events
            nursery.cancel_scope.cancel(reason="done collecting")

    async def remove_image_tag(self, client: httpx.AsyncClient, tag: str) -> None:
        # Untag only (tags and digest references of the test repository); the content is shared.
        repository = tag.rsplit(":", 1)[0]
        images = await self.get("/images/json", filters=json.dumps({"reference": [repository]}))
        refs = {ref for image in images for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or [])}
        for ref in sorted(refs):
            if ref.startswith((f"{repository}:", f"{repository}@")):
                await client.delete(f"/images/{ref}")

    def kill_now(self, container_id: str) -> None:
        with self.sync_client() as client:
            client.post(f"/containers/{container_id}/kill", params={"signal": "KILL"}).raise_for_status()


class PodmanEngine(Engine):
    name = "podman"
    sock = PODMAN_SOCK
    runtime_cls = PodmanRuntime
    namespace_prefix = "p"
    default_command = ("sleep", "300")
    test_timeout = 120.0
    default_network = "podman"
    wildcard_host_ips = ("", "0.0.0.0")
    port_clash_messages = ("address already in use",)
    # Podman runs HEALTHCHECKs from systemd timers: without systemd (this test host) it is left out rather
    # than stuck in `starting`.
    native_healthcheck = "test" if os.path.isdir("/run/systemd/system") else "absent"
    compat_wait_bound = 3.0  # Podman's compat /wait is itself polled (and slow under load)
    exit_code_source = "conmon"
    cli_removal_bound = 3 * EVENT_DRIVEN_BOUND  # includes the podman CLI's own start-up
    forced_removal_exit_code = 137
    rm_force = ("rm", "-f", "-t", "0")
    log_timestamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"
    # Podman 4.3 prints whole seconds (`2026-01-01T00:00:00Z`) but filters `since` on the exact time:
    # one second after a line's printed second lies between it and a line printed 1.5 s later.
    log_since_step = 1.0
    pull_test_repo = f"{REGISTRY}/ring-test/podman-pulltest"
    hub_image_names = frozenset({"busybox:latest", "docker.io/library/busybox:latest"})
    host_mode_networks = ()

    def inspect_names(self, name: str) -> set[str]:
        return {name, f"/{name}"}

    def pinned_image_names(self, pinned_ref: str, tagged_ref: str) -> set[str]:
        # Podman shows the image's name, not the reference it was created from.
        return {pinned_ref, tagged_ref}

    def digest_pulls(self, pulls: list[str], digest: str) -> list[str]:
        # Other test modules may pull tags meanwhile (Podman's events are host-wide): only digest pulls count.
        return [name for name in pulls if "@sha256:" in name]

    @asynccontextmanager
    async def image_pull_events(self) -> AsyncIterator[list[str]]:
        seen: list[str] = []
        async with self.client(PODMAN_LIBPOD_PREFIX) as client, trio.open_nursery() as nursery:
            ready = trio.Event()

            async def collect() -> None:
                filters = json.dumps({"type": ["image"], "event": ["pull"]})
                async with client.stream("GET", "/events", params={"filters": filters}, timeout=None) as response:
                    ready.set()
                    async for line in response.aiter_lines():
                        if line.strip():
                            seen.append(json.loads(line)["Actor"]["Attributes"].get("name", ""))

            nursery.start_soon(collect)
            await ready.wait()
            yield seen
            await trio.sleep(0.6)  # Podman's file event logger is read every ~250 ms
            nursery.cancel_scope.cancel(reason="done collecting")

    async def remove_image_tag(self, client: httpx.AsyncClient, tag: str) -> None:
        await client.delete(f"/images/{tag}", params={"noprune": "false"})

    @contextmanager
    def oom_marker(self, handle: InstanceHandle) -> Iterator[None]:
        # conmon 2.1.6 writes its `oom` marker relative to its working directory (the Podman service's),
        # not into the container's bundle where Podman looks: remove that stray file.
        assert handle.pid
        stray = Path(os.readlink(f"/proc/{_parent(handle.pid)}/cwd")) / "oom"
        existed = stray.exists()
        try:
            yield
        finally:
            if not existed and stray.is_file() and stray.stat().st_size == 0:
                stray.unlink()

    def kill_now(self, container_id: str) -> None:
        os.kill(self.inspect_now(container_id)["State"]["Pid"], signal.SIGKILL)


DOCKER: Engine = DockerEngine()
PODMAN: Engine = PodmanEngine()
ENGINES: tuple[Engine, ...] = (DOCKER, PODMAN)


def engine_params(groups: dict[str, str]) -> list[Any]:
    """`pytest.param`s for `parametrize("engine", ..., indirect=True)`: one per engine, id its name,
    marked with the engine's marker and its xdist group (`groups[name]`), so the engines run concurrently."""
    return [
        pytest.param(
            engine, id=engine.name, marks=[getattr(pytest.mark, engine.name), pytest.mark.xdist_group(groups[engine.name])]
        )
        for engine in ENGINES
    ]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def rfc3339(text: str) -> float:
    """An engine's RFC 3339 time (nanosecond fraction, Z or offset) as Unix seconds."""
    match = re.match(r"^(.*?)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    assert match, text
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(match.group(1) + zone).timestamp() + float(match.group(2) or 0)


# --------------------------------------------------------------------------- runtimes and scopes


@asynccontextmanager
async def running_runtime(
    engine: Engine, tmp_path: Path, *, serve: bool = True, **options: Any
) -> AsyncIterator[DockerRuntime]:
    """The engine's runtime with its event watcher running (unless `serve=False`)."""
    async with (
        engine.new_runtime(payload_dir=tmp_path / "payloads", **options) as runtime,
        trio.open_nursery() as nursery,
    ):
        if serve:
            await nursery.start(runtime.serve)
            assert runtime.events_live
        yield runtime
        nursery.cancel_scope.cancel(reason="test done")


class Scope:
    """One test's namespace, deployments and engine objects, all removed by `cleanup()`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.namespace = f"{engine.namespace_prefix}{uuid.uuid4().hex[:10]}"
        self.deployment_ids: list[str] = []
        self.volumes: list[str] = []
        self.image_tags: list[str] = []

    def spec(self, name: str = "web", *, deployment_id: str | None = None, **fields: Any) -> InstanceSpec:
        """An InstanceSpec of deployment `name` in this scope's namespace (a new deployment id unless given).

        Defaults: IMAGE_V1, IfNotPresent, the engine's `default_command`. `spec_type=` builds a subclass of
        InstanceSpec instead (a spec with fields the base does not have yet).
        """
        deployment_id = deployment_id or str(uuid.uuid4())
        if deployment_id not in self.deployment_ids:
            self.deployment_ids.append(deployment_id)
        fields.setdefault("image", IMAGE_V1)
        fields.setdefault("pull_policy", "IfNotPresent")
        fields.setdefault("command", self.engine.default_command)
        kind = fields.pop("spec_type", InstanceSpec)
        spec: InstanceSpec = kind(deployment_id=deployment_id, deployment_name=name, namespace=self.namespace, **fields)
        return spec

    def volume(self) -> str:
        name = f"ring-test-{uuid.uuid4().hex[:10]}"
        self.volumes.append(name)
        return name

    async def cleanup(self) -> list[str]:
        """Remove everything; return the names of containers that were still there."""
        engine = self.engine
        leftovers: list[str] = []
        async with engine.client() as client:
            for deployment_id in self.deployment_ids:
                for container in await engine.containers_of(deployment_id):
                    leftovers.append(container["Names"][0])
                    await client.delete(f"/containers/{container['Id']}", params={"force": "true", "v": "true"})
            for network in await engine.networks_named(engine.network_name(self.namespace)):
                for _ in range(20):  # endpoints of just-removed containers may take a moment to go
                    if (await client.delete(f"/networks/{network['Id']}")).status_code in (200, 204, 404):
                        break
                    await trio.sleep(0.1)
            for volume in self.volumes:
                await client.delete(f"/volumes/{volume}", params={"force": "true"})
            for tag in self.image_tags:
                await engine.remove_image_tag(client, tag)
        return leftovers


async def wait_for(predicate: Any, *, within: float = 10.0, interval: float = 0.05) -> Any:
    """Test-side helper: await `predicate()` until truthy (assertions only, never runtime logic)."""
    with trio.fail_after(within):
        while True:
            value = await predicate()
            if value:
                return value
            await trio.sleep(interval)


@asynccontextmanager
async def watching_exit(runtime: DockerRuntime, handle: InstanceHandle) -> AsyncIterator[dict[str, Any]]:
    """Wait for `handle`'s exit in a background task while the block runs; the block starts once the wait
    is blocked, and ends once it returned. The dict gets `status` (ExitStatus) and `returned` (trio time)."""
    result: dict[str, Any] = {}

    async def waiter() -> None:
        result["status"] = await runtime.wait_exit(handle)
        result["returned"] = trio.current_time()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        yield result


async def kill_latency(
    engine: Engine, runtime: DockerRuntime, scope: Scope, *, via: str
) -> tuple[float, float, int | None]:
    """Kill a new container with SIGKILL to its PID (`via="pid"`) or the engine's CLI (`via="cli"`).

    Returns:
        Seconds from the kill to the exit being detected, and to `wait_exit` returning; the exit code.
    """
    handle = await runtime.create(scope.spec("victim"))
    async with watching_exit(runtime, handle) as result:
        killed_at = trio.current_time()
        if via == "pid":
            assert handle.pid
            os.kill(handle.pid, signal.SIGKILL)
        else:
            await engine.cli("kill", handle.id)
    status: ExitStatus = result["status"]
    await runtime.remove(handle)
    return status.detected_at - killed_at, result["returned"] - killed_at, status.exit_code


async def kill_latencies(
    engine: Engine, runtime: DockerRuntime, scope: Scope, *, times: int, via: str = "pid"
) -> tuple[list[float], list[float]]:
    """`kill_latency` `times` times; each kill must be seen with exit code 137.

    Returns:
        The latencies until the exit was detected, and until `wait_exit` returned.
    """
    detected: list[float] = []
    returned: list[float] = []
    for _ in range(times):
        seen, back, code = await kill_latency(engine, runtime, scope, via=via)
        assert code == 137
        detected.append(seen)
        returned.append(back)
    return detected, returned


# --------------------------------------------------------------------------- registries


async def registry_digest(registry: str, reference: str, auth: tuple[str, str] | None = None) -> str:
    """The registry's manifest digest of `reference` (`<registry>/<repository>:<tag>`)."""
    repository, tag = reference[len(registry) + 1 :].rsplit(":", 1)
    async with httpx.AsyncClient(auth=auth) as client:
        response = await client.head(
            f"http://{registry}/v2/{repository}/manifests/{tag}", headers={"Accept": _MANIFEST_TYPES}
        )
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]


async def registry_copy(source: str, target: str) -> str:
    """Copy `source`'s manifest to `target` inside REGISTRY (blob mounts, same bytes, same digest).

    Used instead of `podman push`, which re-encodes the manifest: Podman would then know the same
    image under two digests and list every name with both.

    Returns:
        The manifest digest (the same for both names).
    """
    src_repo, src_tag = source[len(REGISTRY) + 1 :].rsplit(":", 1)
    dst_repo, dst_tag = target[len(REGISTRY) + 1 :].rsplit(":", 1)
    async with httpx.AsyncClient(base_url=f"http://{REGISTRY}/v2") as client:
        got = await client.get(f"/{src_repo}/manifests/{src_tag}", headers={"Accept": _MANIFEST_TYPES})
        got.raise_for_status()
        manifest = got.json()
        for blob in [manifest["config"], *manifest["layers"]]:
            mounted = await client.post(f"/{dst_repo}/blobs/uploads/", params={"mount": blob["digest"], "from": src_repo})
            assert mounted.status_code == 201, mounted.text
        put = await client.put(
            f"/{dst_repo}/manifests/{dst_tag}",
            content=got.content,
            headers={"Content-Type": got.headers["Content-Type"]},
        )
        put.raise_for_status()
        return got.headers["Docker-Content-Digest"]


# --------------------------------------------------------------------------- a runtime that reports


class TimedRuntime:
    """Mixin for a runtime class: records when the instance actors learn of exits and get replacements.

    `wait_exit` returning is the instance actor being informed; `create` returning is a (replacement)
    instance running. Build one with `timed_runtime(engine)`.
    """

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self.exits: list[tuple[float, InstanceHandle, ExitStatus]] = []
        self.creates: list[tuple[float, InstanceHandle]] = []
        self._changed = trio.Event()

    async def wait_exit(self, handle: InstanceHandle) -> ExitStatus:
        status: ExitStatus = await super().wait_exit(handle)  # type: ignore[misc]
        self.exits.append((trio.current_time(), handle, status))
        self._wake()
        return status

    async def create(self, spec: InstanceSpec) -> InstanceHandle:
        handle: InstanceHandle = await super().create(spec)  # type: ignore[misc]
        self.creates.append((trio.current_time(), handle))
        self._wake()
        return handle

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def until(self, predicate: Any, timeout: float = 20.0) -> Any:
        with trio.fail_after(timeout):
            while not (found := predicate()):
                await self._changed.wait()
            return found


_TIMED: dict[type, type] = {}


def timed_runtime(engine: Engine, **options: Any) -> Any:
    """A `TimedRuntime` over the engine's runtime class, on the engine's socket."""
    cls = _TIMED.setdefault(
        engine.runtime_cls, type(f"Timed{engine.runtime_cls.__name__}", (TimedRuntime, engine.runtime_cls), {})
    )
    return cls(f"unix://{engine.sock}", **options)
