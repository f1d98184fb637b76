"""DockerRuntime against the REAL dockerd and the local test registries (no mocks).

Every test works in its own namespace and deployment ids (uuids); the `scope`
fixture removes every container, network, volume and image tag the test made,
and fails the test if a container labelled for it is still there afterwards.
Assertions read the engine through plain httpx (`engine_get`), not through the
client under test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from ring_actors.runtimes.base import (
    OWNER_LABEL,
    SERVER_LABEL,
    InstanceHandle,
    InstanceSpec,
    Mount,
    RegistryAuth,
    Runtime,
)
from ring_actors.runtimes.docker import DockerRuntime
from ring_actors.runtimes.dockerapi import DockerAPI
from ring_actors.runtimes.errors import FailureKind, InstanceGone, RuntimeFailure
from ring_actors.schemas.manifest import CommandCheck, Port, ResourceQuantities, Resources, RunAsUser
from tests.support.engines import (
    AUTH_PASSWORD,
    AUTH_REGISTRY,
    AUTH_USER,
    DOCKER_SOCK,
    HUB_IMAGE,
    IMAGE_REPO,
    IMAGE_V1,
    IMAGE_V2,
    PRIVATE_IMAGE,
    REGISTRY,
    require_engine,
    require_registry,
)

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("docker-runtime")]

TEST_TIMEOUT = 90.0
IDLE = ("sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait")
"""Default command: idles, and stops at once on SIGTERM (PID 1 ignores signals it does not handle)."""
EVENT_DRIVEN_BOUND = 0.5
"""A 1 s poll would detect an exit 0.5 s late on average; event-driven detection must beat that every time."""


# --------------------------------------------------------------------------- engine views (plain httpx)


def _engine() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=DOCKER_SOCK), base_url="http://docker/v1.41", timeout=60
    )


async def engine_get(path: str, **params: Any) -> Any:
    async with _engine() as client:
        response = await client.get(path, params=params)
        response.raise_for_status()
        return response.json()


async def engine_status(path: str) -> int:
    async with _engine() as client:
        return (await client.get(path)).status_code


async def inspect(container_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await engine_get(f"/containers/{container_id}/json")
    return result


async def containers_of(deployment_id: str) -> list[dict[str, Any]]:
    filters = json.dumps({"label": [f"{OWNER_LABEL}={deployment_id}"]})
    result: list[dict[str, Any]] = await engine_get("/containers/json", all="true", filters=filters)
    return result


async def networks_named(name: str) -> list[dict[str, Any]]:
    found = await engine_get("/networks", filters=json.dumps({"name": [name]}))
    return [net for net in found if net["Name"] == name]


async def docker_cli(*args: str) -> str:
    result = await trio.run_process(["docker", *args], capture_stdout=True, capture_stderr=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.decode()}")
    return result.stdout.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session", autouse=True)
def _engine_and_images() -> None:
    """The engine and registries answer, and the test images are in the local image store."""
    require_engine("docker")
    require_registry(REGISTRY)
    require_registry(AUTH_REGISTRY)


@pytest.fixture(autouse=True)
async def _deadline(nursery: trio.Nursery) -> None:
    """Every test has a timeout: a crashing fixture task cancels the test and reports why."""

    async def watchdog() -> None:
        await trio.sleep(TEST_TIMEOUT)
        raise TimeoutError(f"test did not finish within {TEST_TIMEOUT} s")

    nursery.start_soon(watchdog)


@asynccontextmanager
async def running_runtime(tmp_path: Path, *, serve: bool = True, **options: Any) -> AsyncIterator[DockerRuntime]:
    """A DockerRuntime with its event watcher running (unless `serve=False`)."""
    async with DockerRuntime(f"unix://{DOCKER_SOCK}", payload_dir=tmp_path / "payloads", **options) as runtime:
        async with trio.open_nursery() as nursery:
            if serve:
                await nursery.start(runtime.serve)
                assert runtime.events_live
            yield runtime
            nursery.cancel_scope.cancel(reason="test done")


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[DockerRuntime]:
    async with running_runtime(tmp_path) as rt:
        yield rt


class Scope:
    """One test's namespace, deployments and engine objects, all removed at teardown."""

    def __init__(self) -> None:
        self.namespace = f"t{uuid.uuid4().hex[:10]}"
        self.deployment_ids: list[str] = []
        self.volumes: list[str] = []
        self.image_tags: list[str] = []

    def spec(self, name: str = "web", *, deployment_id: str | None = None, **fields: Any) -> InstanceSpec:
        deployment_id = deployment_id or str(uuid.uuid4())
        if deployment_id not in self.deployment_ids:
            self.deployment_ids.append(deployment_id)
        fields.setdefault("image", IMAGE_V1)
        fields.setdefault("pull_policy", "IfNotPresent")
        fields.setdefault("command", IDLE)
        return InstanceSpec(deployment_id=deployment_id, deployment_name=name, namespace=self.namespace, **fields)

    def volume(self) -> str:
        name = f"ring-test-{uuid.uuid4().hex[:10]}"
        self.volumes.append(name)
        return name

    async def cleanup(self) -> list[str]:
        """Remove everything; return the names of containers that were still there."""
        leftovers: list[str] = []
        async with _engine() as client:
            for deployment_id in self.deployment_ids:
                for container in await containers_of(deployment_id):
                    leftovers.append(container["Names"][0])
                    await client.delete(f"/containers/{container['Id']}", params={"force": "true", "v": "true"})
            for network in await networks_named(DockerRuntime.network_name(self.namespace)):
                for _ in range(20):  # endpoints of just-removed containers may take a moment to go
                    if (await client.delete(f"/networks/{network['Id']}")).status_code in (204, 404):
                        break
                    await trio.sleep(0.1)
            for volume in self.volumes:
                await client.delete(f"/volumes/{volume}", params={"force": "true"})
            for tag in self.image_tags:
                # Untag only (tags and digest references of the test repository); the content is shared.
                repository = tag.rsplit(":", 1)[0]
                images = await engine_get("/images/json", filters=json.dumps({"reference": [repository]}))
                refs = {
                    ref for image in images for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or [])
                }
                for ref in sorted(refs):
                    if ref.startswith((f"{repository}:", f"{repository}@")):
                        await client.delete(f"/images/{ref}")
        return leftovers


@pytest.fixture
async def scope() -> AsyncIterator[Scope]:
    test_scope = Scope()
    try:
        yield test_scope
    finally:
        with trio.move_on_after(60, shield=True):
            await test_scope.cleanup()
            for deployment_id in test_scope.deployment_ids:
                assert await containers_of(deployment_id) == [], "containers outlived the test"


async def wait_for(predicate: Any, *, within: float = 10.0, interval: float = 0.05) -> Any:
    """Test-side helper: await `predicate()` until truthy (assertions only, never runtime logic)."""
    with trio.fail_after(within):
        while True:
            value = await predicate()
            if value:
                return value
            await trio.sleep(interval)


# --------------------------------------------------------------------------- create


async def test_runtime_satisfies_protocol(runtime: DockerRuntime) -> None:
    """Verify DockerRuntime is a `Runtime` and ping answers."""
    assert isinstance(runtime, Runtime)
    await runtime.ping()


async def test_create_names_labels_env_command_network_aliases(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify name pattern, owner label (not overridable), env, Cmd, ring_<ns> network with DNS aliases."""
    spec = scope.spec(
        "web",
        command=("httpd", "-f", "-p", "80", "-h", "/www"),
        env={"GREETING": "hello world", "EMPTY": ""},
        labels={"app": "web", OWNER_LABEL: "someone-else"},
    )
    handle = await runtime.create(spec)
    assert re.fullmatch(rf"{scope.namespace}_web_[0-9a-f]{{8}}", handle.name)
    assert handle.deployment_id == spec.deployment_id
    info = await inspect(handle.id)
    assert info["Name"] == f"/{handle.name}"
    assert info["State"]["Running"] is True
    assert handle.pid == info["State"]["Pid"] > 0
    assert info["Config"]["Labels"] == {"app": "web", OWNER_LABEL: spec.deployment_id}
    assert "GREETING=hello world" in info["Config"]["Env"] and "EMPTY=" in info["Config"]["Env"]
    assert info["Config"]["Cmd"] == ["httpd", "-f", "-p", "80", "-h", "/www"]
    assert info["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
    networks = info["NetworkSettings"]["Networks"]
    ring_net = DockerRuntime.network_name(scope.namespace)
    # Only the namespace network: never the default bridge shared by every namespace (Ring joins both).
    assert set(networks) == {ring_net}
    assert {"web", handle.name} <= set(networks[ring_net]["Aliases"])
    assert handle.address == networks[ring_net]["IPAddress"] == await runtime.address(handle)
    assert len(await networks_named(ring_net)) == 1
    assert handle.image_digest and handle.image_digest.startswith("sha256:")

    # DNS inside the namespace network: by deployment name and by container name.
    for target in ("web", handle.name):
        client = await runtime.create(
            scope.spec("client", command=("wget", "-q", "-O", "-", f"http://{target}/index.html"))
        )
        status = await runtime.wait_exit(client)
        lines = [line.message for line in await runtime.logs(client, tail=None, since=None)]
        assert status.exit_code == 0, lines
        assert lines == ["v1"]
        await runtime.remove(client)
    await runtime.remove(handle, timeout=0)  # httpd as PID 1 ignores SIGTERM


async def test_concurrent_creates_share_one_namespace_network(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify concurrent creations in a new namespace make exactly one `ring_<ns>` network."""
    handles: list[InstanceHandle] = []
    spec = scope.spec("many")

    async def create_one() -> None:
        handles.append(await runtime.create(spec))

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(create_one)
    assert len(await networks_named(DockerRuntime.network_name(scope.namespace))) == 1
    assert len({h.name for h in handles}) == 4
    for handle in handles:
        await runtime.remove(handle)


async def test_ports_are_bound_and_reachable(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify PortBindings/ExposedPorts carry host_ip and protocol, and the port answers on 127.0.0.1."""
    tcp_port, udp_port = free_port(), free_port()
    spec = scope.spec(
        "ports",
        command=("httpd", "-f", "-p", "80", "-h", "/www"),
        ports=(
            Port(published=tcp_port, target=80, host_ip="127.0.0.1"),
            Port(published=udp_port, target=5353, protocol="udp"),
        ),
    )
    handle = await runtime.create(spec)
    info = await inspect(handle.id)
    assert info["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(tcp_port)}],
        "5353/udp": [{"HostIp": "0.0.0.0", "HostPort": str(udp_port)}],
    }
    assert set(info["Config"]["ExposedPorts"]) == {"80/tcp", "5353/udp"}

    async def fetch() -> str | None:
        try:
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://127.0.0.1:{tcp_port}/index.html", timeout=2)
                return response.text
        except httpx.HTTPError:
            return None

    assert (await wait_for(fetch)).strip() == "v1"

    # The same host port again: Ring's "port is already allocated" -> instance_creation_failed, nothing left.
    clash = scope.spec("clash", command=("httpd", "-f", "-p", "80"), ports=(Port(published=tcp_port, target=80),))
    with pytest.raises(RuntimeFailure) as failure:
        await runtime.create(clash)
    assert failure.value.kind is FailureKind.INSTANCE_CREATION_FAILED
    assert failure.value.disposition.permanent
    assert "already allocated" in failure.value.message or "address already in use" in failure.value.message
    assert await containers_of(clash.deployment_id) == []
    await runtime.remove(handle, timeout=0)


async def test_bind_volume_and_file_mounts(runtime: DockerRuntime, scope: Scope, tmp_path: Path) -> None:
    """Verify bind mount, named volume (labelled, survives removal) and read-only private file mount."""
    host_dir = tmp_path / "bind"
    host_dir.mkdir()
    (host_dir / "hello.txt").write_text("from the host")
    volume = scope.volume()
    payload = b"password=s3cret\n"
    spec = scope.spec(
        "mounts",
        mounts=(
            Mount(kind="bind", source=str(host_dir), destination="/bind"),
            Mount(kind="volume", source=volume, destination="/data"),
            Mount(kind="file", destination="/etc/app/app.conf", content=payload, read_only=True),
        ),
    )
    handle = await runtime.create(spec)

    async def run(*argv: str) -> tuple[int, str]:
        result = await runtime.exec(handle, list(argv), 10)
        return result.exit_code, result.output

    assert await run("cat", "/bind/hello.txt") == (0, "from the host")
    assert await run("sh", "-c", "echo stored > /data/f && cat /data/f") == (0, "stored\n")
    assert await run("cat", "/etc/app/app.conf") == (0, payload.decode())
    code, output = await run("sh", "-c", "echo overwritten > /etc/app/app.conf")
    assert code != 0 and "Read-only" in output

    mounts = {m["Destination"]: m for m in (await inspect(handle.id))["Mounts"]}
    assert mounts["/bind"]["Type"] == "bind" and mounts["/bind"]["RW"] is True
    assert mounts["/data"]["Type"] == "volume" and mounts["/data"]["Name"] == volume
    assert mounts["/etc/app/app.conf"]["Type"] == "bind" and mounts["/etc/app/app.conf"]["RW"] is False

    labels = (await engine_get(f"/volumes/{volume}"))["Labels"]
    assert labels == {"ring.managed": "true", "ring.namespace": scope.namespace, "ring.deployment": "mounts"}

    host_file = trio.Path(mounts["/etc/app/app.conf"]["Source"])
    assert await host_file.read_bytes() == payload
    assert stat.S_IMODE((await host_file.stat()).st_mode) == 0o600
    assert stat.S_IMODE((await host_file.parent.stat()).st_mode) == 0o700
    assert Path(host_file.parent) == runtime.deployment_files_dir(spec.deployment_id)

    await runtime.remove(handle)
    assert not await host_file.parent.exists(), "payload dir must go with the deployment's last container"
    assert await engine_status(f"/volumes/{volume}") == 200, "named volumes are never removed"


async def test_file_mount_is_readable_by_the_container_user(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify a 0600 payload belongs to the `config.user` uid, so a non-root container can read it."""
    spec = scope.spec(
        "nobody",
        user=RunAsUser(id=65534, group=65534),
        mounts=(Mount(kind="file", destination="/cfg/token", content=b"tok", read_only=True),),
    )
    handle = await runtime.create(spec)
    result = await runtime.exec(handle, ["cat", "/cfg/token"], 10)
    assert (result.exit_code, result.output) == (0, "tok")
    await runtime.remove(handle)


async def test_missing_bind_source_fails_and_leaves_nothing(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify an engine-rejected spec is instance_creation_failed (permanent) and no container remains."""
    missing = f"/nonexistent/ring-test-{uuid.uuid4().hex}"
    spec = scope.spec("badbind", mounts=(Mount(kind="bind", source=missing, destination="/x"),))
    with pytest.raises(RuntimeFailure) as failure:
        await runtime.create(spec)
    assert failure.value.kind is FailureKind.INSTANCE_CREATION_FAILED
    assert await containers_of(spec.deployment_id) == []


async def test_resources_user_privileged_healthcheck(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify NanoCpus/Memory/MemoryReservation, User id:group, Privileged and the native HEALTHCHECK."""
    check = CommandCheck(
        command="test -f /VERSION",
        interval="1s",
        timeout="2s",
        threshold=2,
        start_period="500ms",
        on_failure="restart",
        readiness=True,
    )
    spec = scope.spec(
        "limits",
        resources=Resources(
            limits=ResourceQuantities(cpu="500m", memory="64Mi"), requests=ResourceQuantities(memory="32Mi")
        ),
        user=RunAsUser(id=65534, group=65534, privileged=True),
        native_healthcheck=check,
    )
    handle = await runtime.create(spec)
    info = await inspect(handle.id)
    host = info["HostConfig"]
    assert (host["NanoCpus"], host["Memory"], host["MemoryReservation"]) == (500_000_000, 64 << 20, 32 << 20)
    assert host["Privileged"] is True
    assert info["Config"]["User"] == "65534:65534"
    assert info["Config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "test -f /VERSION"],
        "Interval": 1_000_000_000,
        "Timeout": 2_000_000_000,
        "StartPeriod": 500_000_000,
        "Retries": 2,
    }
    result = await runtime.exec(handle, ["id", "-u"], 10)
    assert (result.exit_code, result.output.strip()) == (0, "65534")

    async def healthy() -> bool:
        return bool((await inspect(handle.id))["State"]["Health"]["Status"] == "healthy")

    await wait_for(healthy, within=15)
    await runtime.remove(handle)

    only_id = await runtime.create(scope.spec("uidonly", user=RunAsUser(id=1234)))
    assert (await inspect(only_id.id))["Config"]["User"] == "1234"
    await runtime.remove(only_id)


async def test_host_network_mode(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify host mode: NetworkMode host, no ring_<ns> network, no address."""
    handle = await runtime.create(scope.spec("hostnet", network_mode="host"))
    info = await inspect(handle.id)
    assert info["HostConfig"]["NetworkMode"] == "host"
    assert list(info["NetworkSettings"]["Networks"]) == ["host"]
    assert handle.address is None and await runtime.address(handle) is None
    assert await networks_named(DockerRuntime.network_name(scope.namespace)) == []
    await runtime.remove(handle)


async def test_insufficient_host_memory(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify admission: a 100Ti request is refused before anything is created, with Ring's message."""
    spec = scope.spec("huge", resources=Resources(requests=ResourceQuantities(memory="100Ti")))
    with pytest.raises(RuntimeFailure) as failure:
        await runtime.create(spec)
    assert failure.value.kind is FailureKind.INSUFFICIENT_RESOURCES
    assert failure.value.disposition.permanent
    assert re.fullmatch(
        r"insufficient host memory for 'huge': needs 104857600 MiB but only \d+ MiB is available — free memory "
        r"on the host or lower resources\.requests\.memory / resources\.limits\.memory",
        failure.value.message,
    )
    assert await containers_of(spec.deployment_id) == []
    assert await networks_named(DockerRuntime.network_name(scope.namespace)) == []


# --------------------------------------------------------------------------- images


@asynccontextmanager
async def image_pull_events() -> AsyncIterator[list[str]]:
    """Collect the engine's image `pull` events while the block runs."""
    seen: list[str] = []
    async with DockerAPI(f"unix://{DOCKER_SOCK}") as api, trio.open_nursery() as nursery:
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


async def version_of(runtime: DockerRuntime, handle: InstanceHandle) -> str:
    return (await runtime.exec(handle, ["cat", "/VERSION"], 10)).output.strip()


async def test_pull_policies(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify Always pulls (registry content wins), IfNotPresent uses the local image, Never never pulls."""
    # The registry holds v1 content under a fresh tag; the local store holds v2 content under the same tag.
    tag = f"{REGISTRY}/ring-test/pulltest-{uuid.uuid4().hex[:8]}:t"
    scope.image_tags.append(tag)
    await docker_cli("pull", IMAGE_V1)
    await docker_cli("pull", IMAGE_V2)
    await docker_cli("tag", IMAGE_V1, tag)
    await docker_cli("push", tag)
    await docker_cli("tag", IMAGE_V2, tag)

    local = await runtime.create(scope.spec("ifnp", image=tag, pull_policy="IfNotPresent"))
    assert await version_of(runtime, local) == "v2"
    never = await runtime.create(scope.spec("never", image=tag, pull_policy="Never"))
    assert await version_of(runtime, never) == "v2"

    async with image_pull_events() as pulls:
        always = await runtime.create(scope.spec("always", image=tag, pull_policy="Always"))
    assert await version_of(runtime, always) == "v1"
    assert any(tag.rsplit(":", 1)[0] in ref for ref in pulls), pulls
    manifest_digest = await registry_digest(REGISTRY, tag)
    assert always.image_digest == manifest_digest

    missing = f"{REGISTRY}/ring-test/pulltest-{uuid.uuid4().hex[:8]}:absent"
    with pytest.raises(RuntimeFailure) as failure:
        await runtime.create(scope.spec("nevermissing", image=missing, pull_policy="Never"))
    assert failure.value.kind is FailureKind.IMAGE_NOT_FOUND
    assert failure.value.disposition.permanent
    assert "image_pull_policy=Never forbids pulling" in failure.value.message

    for handle in (local, never, always):
        await runtime.remove(handle)


async def registry_digest(registry: str, reference: str, auth: tuple[str, str] | None = None) -> str:
    repository, tag = reference[len(registry) + 1 :].rsplit(":", 1)
    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
    async with httpx.AsyncClient(auth=auth) as client:
        response = await client.head(f"http://{registry}/v2/{repository}/manifests/{tag}", headers={"Accept": accept})
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]


async def test_digest_pinned_always_uses_cache_and_hub_names(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify Always does not re-pull a digest-pinned image already present, and docker.io names resolve."""
    first = await runtime.create(scope.spec("first", image=IMAGE_V1, pull_policy="Always"))
    assert first.image_digest == await registry_digest(REGISTRY, IMAGE_V1)
    pinned_ref = f"{IMAGE_REPO}@{first.image_digest}"
    async with image_pull_events() as pulls:
        pinned = await runtime.create(scope.spec("pinned", image=pinned_ref, pull_policy="Always"))
    assert [ref for ref in pulls if first.image_digest in ref] == []  # other suites may pull meanwhile
    assert pinned.image_digest == first.image_digest
    assert (await inspect(pinned.id))["Config"]["Image"] == pinned_ref

    hub = await runtime.create(scope.spec("hub", image=HUB_IMAGE.split(":")[0], pull_policy="IfNotPresent"))
    assert (await inspect(hub.id))["Config"]["Image"] == "busybox:latest"
    assert hub.image_digest and hub.image_digest.startswith("sha256:")
    for handle in (first, pinned, hub):
        await runtime.remove(handle)


async def test_private_registry_credentials(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify inline credentials pull from the auth registry; wrong password, no creds and missing tag classify."""
    good = RegistryAuth(server=AUTH_REGISTRY, username=AUTH_USER, password=AUTH_PASSWORD)
    handle = await runtime.create(scope.spec("private", image=PRIVATE_IMAGE, pull_policy="Always", registry_auth=good))
    assert handle.image_digest == await registry_digest(AUTH_REGISTRY, PRIVATE_IMAGE, (AUTH_USER, AUTH_PASSWORD))
    assert await version_of(runtime, handle) == "v1"
    await runtime.remove(handle)

    bad = RegistryAuth(server=AUTH_REGISTRY, username=AUTH_USER, password="wrong")
    for auth in (bad, None):
        with pytest.raises(RuntimeFailure) as failure:
            await runtime.create(scope.spec("private", image=PRIVATE_IMAGE, pull_policy="Always", registry_auth=auth))
        assert failure.value.kind is FailureKind.IMAGE_PULL_FAILED
        assert not failure.value.disposition.permanent
        assert failure.value.message.startswith(
            f"registry authentication failed for '{PRIVATE_IMAGE}' — check config.server, config.username and "
            "config.password (original error: "
        )

    missing_tag = PRIVATE_IMAGE.rsplit(":", 1)[0] + ":does-not-exist"
    with pytest.raises(RuntimeFailure) as failure:
        await runtime.create(scope.spec("private", image=missing_tag, pull_policy="Always", registry_auth=good))
    assert failure.value.kind is FailureKind.IMAGE_NOT_FOUND
    assert failure.value.disposition.permanent


async def test_unreachable_registry(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify a registry nobody listens on gives Ring's 'cannot reach the registry' (transient)."""
    image = f"127.0.0.1:{free_port()}/ring-test/busybox:v1"
    with pytest.raises(RuntimeFailure) as failure:
        await runtime.create(scope.spec("unreach", image=image, pull_policy="Always"))
    assert failure.value.kind is FailureKind.IMAGE_PULL_FAILED
    assert not failure.value.disposition.permanent
    assert failure.value.message.startswith(
        f"cannot reach the registry for '{image}' — is it up and the registry host correct? (original error: "
    )


# --------------------------------------------------------------------------- exit detection


async def test_wait_exit_reports_exit_code(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify a container exiting with 3 reports 3, within the event-driven bound of its real exit."""
    handle = await runtime.create(scope.spec("job", command=("sh", "-c", "sleep 0.3; exit 3")))
    status = await runtime.wait_exit(handle)
    wall_minus_trio = time.time() - trio.current_time()
    assert (status.exit_code, status.oom_killed, status.removed) == (3, False, False)
    finished = (await inspect(handle.id))["State"]["FinishedAt"]
    finished_at = _rfc3339(finished)
    latency = status.detected_at + wall_minus_trio - finished_at
    print(f"\nself-exit detection vs engine FinishedAt: {latency * 1000:+.1f} ms")
    assert abs(latency) < EVENT_DRIVEN_BOUND
    # Already exited: answered at once from the engine's state.
    again = await runtime.wait_exit(handle)
    assert again.exit_code == 3
    await runtime.remove(handle)


def _rfc3339(text: str) -> float:
    from datetime import datetime

    match = re.match(r"^(.*?)(\.\d+)?Z$", text)
    assert match, text
    base = datetime.fromisoformat(match.group(1) + "+00:00").timestamp()
    return base + float(match.group(2) or 0)


async def _kill_latency(runtime: DockerRuntime, scope: Scope, *, via: str) -> tuple[float, int | None]:
    handle = await runtime.create(scope.spec("victim"))
    result: dict[str, Any] = {}

    async def waiter() -> None:
        result["status"] = await runtime.wait_exit(handle)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        killed_at = trio.current_time()
        if via == "pid":
            assert handle.pid
            os.kill(handle.pid, signal.SIGKILL)
        else:
            await docker_cli("kill", handle.id)
    status = result["status"]
    await runtime.remove(handle)
    return status.detected_at - killed_at, status.exit_code


async def test_kill_is_detected_event_driven_pidfd_and_die_event(
    runtime: DockerRuntime, scope: Scope, tmp_path: Path
) -> None:
    """Verify kill -9 of the container's PID and `docker kill` are detected well under a poll interval.

    Measures both paths: pidfd (default) and the engine's `die` event alone (use_pidfd=False).
    """
    pidfd_latencies, event_latencies = [], []
    for _ in range(3):
        latency, code = await _kill_latency(runtime, scope, via="pid")
        assert code == 137
        pidfd_latencies.append(latency)
    latency, code = await _kill_latency(runtime, scope, via="docker")
    assert code == 137
    pidfd_latencies.append(latency)
    async with running_runtime(tmp_path, use_pidfd=False) as events_only:
        for _ in range(3):
            latency, code = await _kill_latency(events_only, scope, via="pid")
            assert code == 137
            event_latencies.append(latency)
    print(
        f"\nexit detection latency: pidfd median {statistics.median(pidfd_latencies) * 1000:.1f} ms "
        f"{[round(x * 1000, 1) for x in pidfd_latencies]}; die event median "
        f"{statistics.median(event_latencies) * 1000:.1f} ms {[round(x * 1000, 1) for x in event_latencies]}"
    )
    assert max(pidfd_latencies + event_latencies) < EVENT_DRIVEN_BOUND
    assert statistics.median(pidfd_latencies) < 0.1


async def test_wait_exit_without_event_stream_uses_engine_wait(scope: Scope, tmp_path: Path) -> None:
    """Verify the fallback (no pidfd, no event watcher): `/wait` still reports the exit code."""
    async with running_runtime(tmp_path, serve=False, use_pidfd=False) as bare:
        handle = await bare.create(scope.spec("fallback", command=("sh", "-c", "sleep 0.3; exit 5")))
        started = trio.current_time()
        status = await bare.wait_exit(handle)
        assert status.exit_code == 5
        assert status.detected_at - started < 0.3 + EVENT_DRIVEN_BOUND
        await bare.remove(handle)


async def test_concurrent_waits_share_the_event_stream(scope: Scope, tmp_path: Path) -> None:
    """Verify several waiters on one events-only runtime each get their own container's exit code."""
    async with running_runtime(tmp_path, use_pidfd=False) as events_only:
        handles = [
            await events_only.create(scope.spec(f"w{code}", command=("sh", "-c", f"sleep 0.{code}; exit {code}")))
            for code in (2, 4, 6)
        ]
        results: dict[str, Any] = {}

        async def wait_one(handle: InstanceHandle) -> None:
            results[handle.id] = await events_only.wait_exit(handle)

        async with trio.open_nursery() as nursery:
            for handle in handles:
                nursery.start_soon(wait_one, handle)
        assert [results[h.id].exit_code for h in handles] == [2, 4, 6], results
        assert events_only._watches == {}
        for handle in handles:
            await events_only.remove(handle)


async def test_oom_kill_is_reported(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify a container exceeding limits.memory reports oom_killed."""
    spec = scope.spec(
        "oom",
        resources=Resources(limits=ResourceQuantities(memory="16Mi")),
        command=("sh", "-c", "sleep 0.2; x=a; while true; do x=$x$x; done"),
    )
    handle = await runtime.create(spec)
    status = await runtime.wait_exit(handle)
    assert status.oom_killed and status.exit_code == 137
    await runtime.remove(handle)


async def test_removal_behind_our_back(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify a container removed behind our back ends the wait; a later wait says removed=True."""
    handle = await runtime.create(scope.spec("gone"))
    result: dict[str, Any] = {}

    async def waiter() -> None:
        result["status"] = await runtime.wait_exit(handle)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        removed_at = trio.current_time()
        await docker_cli("rm", "-f", handle.id)
    status = result["status"]
    assert status.detected_at - removed_at < EVENT_DRIVEN_BOUND
    # Docker stops the container first (die), then destroys it: either may be what we saw first.
    assert status.removed or status.exit_code is not None
    print(f"\nrm -f seen as: exit_code={status.exit_code} removed={status.removed}")

    after = await runtime.wait_exit(handle)
    assert (after.exit_code, after.removed) == (None, True)
    with pytest.raises(InstanceGone):
        await runtime.address(handle)
    await runtime.remove(handle)  # idempotent on a vanished container


async def test_wait_exit_cancellation_releases_everything(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify cancelling wait_exit closes its pidfd and unregisters its waiter."""
    handle = await runtime.create(scope.spec("cancel"))
    fds_before = len(os.listdir("/proc/self/fd"))
    with trio.move_on_after(0.3) as cancel_scope:
        await runtime.wait_exit(handle)
    assert cancel_scope.cancelled_caught
    assert runtime._watches == {}
    assert len(os.listdir("/proc/self/fd")) <= fds_before
    await runtime.remove(handle)


# --------------------------------------------------------------------------- exec, logs, stats


async def test_exec_exit_codes_output_and_timeout(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify exec exit codes and output, a missing binary, and that a timeout kills the command."""
    handle = await runtime.create(scope.spec("exec"))
    result = await runtime.exec(handle, ["sh", "-c", "echo out; echo err >&2; exit 7"], 10)
    assert (result.exit_code, result.timed_out) == (7, False)
    assert sorted(result.output.splitlines()) == ["err", "out"]  # two pipes: no order between them
    assert (await runtime.exec(handle, ["true"], 10)).exit_code == 0
    missing = await runtime.exec(handle, ["/no/such/binary"], 10)
    assert missing.exit_code in (126, 127)

    started = trio.current_time()
    timed = await runtime.exec(handle, ["sleep", "37"], 0.5)
    assert timed.timed_out and timed.exit_code == -1
    assert trio.current_time() - started < 3

    async def sleep_gone() -> bool:
        ps = await runtime.exec(handle, ["ps"], 10)
        return "sleep 37" not in ps.output

    await wait_for(sleep_gone, within=5)
    await runtime.remove(handle)
    with pytest.raises(InstanceGone):
        await runtime.exec(handle, ["true"], 5)


async def test_logs_tail_since_and_follow(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify logs carry stdout/stderr with RFC 3339 engine timestamps, and tail/since/follow work."""
    script = "trap 'exit 0' TERM; echo one; sleep 0.2; echo two >&2; sleep 1.5; echo three; sleep 300 & wait"
    handle = await runtime.create(scope.spec("logs", command=("sh", "-c", script)))
    seen: list[str] = []
    with trio.fail_after(10):
        async for line in runtime.follow_logs(handle, tail=None):
            seen.append(line.message)
            if line.message == "three":
                break
    assert seen == ["one", "two", "three"]

    lines = await runtime.logs(handle, tail=None, since=None)
    assert [(line.message, line.stream) for line in lines] == [
        ("one", "stdout"),
        ("two", "stderr"),
        ("three", "stdout"),
    ]
    assert all(line.instance == handle.name for line in lines)
    for line in lines:
        assert line.timestamp and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line.timestamp)
    assert [line.message for line in await runtime.logs(handle, tail=1, since=None)] == ["three"]
    between = _rfc3339(lines[1].timestamp or "") + 0.5
    assert [line.message for line in await runtime.logs(handle, tail=None, since=between)] == ["three"]
    await runtime.remove(handle)


async def test_stats_are_sane(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify one stats sample: memory usage/limit, pids, CPU % of a busy loop (one core = 100)."""
    spec = scope.spec(
        "stats",
        command=("sh", "-c", "trap 'exit 0' TERM; while true; do :; done"),
        resources=Resources(limits=ResourceQuantities(memory="128Mi")),
    )
    handle = await runtime.create(spec)
    sample = await runtime.stats(handle)
    assert sample.instance_id == handle.id[:12] and sample.instance_name == handle.name
    assert sample.memory_usage > 0
    assert sample.memory_limit == 128 << 20
    assert sample.pids >= 1
    # A busy loop: clearly non-zero (two samples a second apart), never above all cores (other suites compete).
    assert 1 < sample.cpu_percent <= 100 * (os.cpu_count() or 1) + 5, sample
    assert sample.rx_packets >= 0 and sample.read_bytes >= 0
    assert sample.restart_count == 0
    await runtime.remove(handle)


# --------------------------------------------------------------------------- list, adopt, remove


async def test_list_adopt_and_idempotent_remove(runtime: DockerRuntime, scope: Scope, tmp_path: Path) -> None:
    """Verify list_instances/adopt round-trip (running and exited) and that remove leaves nothing."""
    deployment_id = str(uuid.uuid4())
    running = await runtime.create(scope.spec("adopt", deployment_id=deployment_id, server_id="test-server"))
    exited = await runtime.create(
        scope.spec(
            "adopt",
            deployment_id=deployment_id,
            command=("sh", "-c", "exit 4"),
            mounts=(Mount(kind="file", destination="/cfg", content=b"x", read_only=True),),
        )
    )
    assert (await runtime.wait_exit(exited)).exit_code == 4

    # wait_exit answers from the `die` event, before the engine has finished its own post-exit
    # bookkeeping (~100 ms): its listing may still say "running" for a moment.
    with trio.fail_after(10):
        while True:
            observed = {o.id: o for o in await runtime.list_instances() if o.deployment_id == deployment_id}
            if exited.id in observed and not observed[exited.id].running:
                break
            await trio.sleep(0.02)
    assert set(observed) == {running.id, exited.id}
    assert observed[running.id].running and observed[running.id].pid == running.pid
    assert observed[running.id].name == running.name
    assert (await inspect(running.id))["Config"]["Labels"][SERVER_LABEL] == "test-server"
    assert (observed[running.id].server_id, observed[exited.id].server_id) == ("test-server", None)
    assert not observed[exited.id].running and observed[exited.id].exit_code == 4
    assert observed[exited.id].pid is None
    assert abs(observed[running.id].created_at - running.created_at) < 2

    # A fresh runtime (as after a server restart) rebuilds equivalent handles.
    async with running_runtime(tmp_path) as restarted:
        adopted = await restarted.adopt(observed[running.id])
        assert (adopted.id, adopted.name, adopted.deployment_id) == (running.id, running.name, deployment_id)
        assert (adopted.pid, adopted.address, adopted.image_digest) == (
            running.pid,
            running.address,
            running.image_digest,
        )
        adopted_exit = await restarted.adopt(observed[exited.id])
        assert adopted_exit.pid is None
        assert (await restarted.wait_exit(adopted_exit)).exit_code == 4

        for handle in (running, exited):
            await restarted.remove(handle, timeout=1)
            await restarted.remove(handle, timeout=1)
        assert await containers_of(deployment_id) == []
        assert [o for o in await restarted.list_instances(details=False) if o.deployment_id == deployment_id] == []
        with pytest.raises(InstanceGone):
            await restarted.adopt(observed[running.id])
    assert not runtime.deployment_files_dir(deployment_id).exists()


async def test_remove_uses_grace_period(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify remove stops with SIGTERM first (a trapping process exits cleanly) within the grace."""
    script = "trap 'exit 0' TERM; while true; do sleep 0.1; done"
    handle = await runtime.create(scope.spec("graceful", command=("sh", "-c", script)))
    status: dict[str, Any] = {}

    async def waiter() -> None:
        status["exit"] = await runtime.wait_exit(handle)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        started = trio.current_time()
        await runtime.remove(handle, timeout=5)
        assert trio.current_time() - started < 4
    assert status["exit"].exit_code in (0, None)
    assert await containers_of(handle.deployment_id) == []
