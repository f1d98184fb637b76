"""DockerRuntime and PodmanRuntime against the REAL engines and the local test registries (no mocks).

Every test here runs once per engine (ids `docker`, `podman`), each param in its engine's xdist group, so
the engines' tests run concurrently. What only one engine has lives in test_docker_runtime.py and
test_podman_runtime.py. Where the engines legitimately answer differently (names, bounds, messages) the
`Engine` profile (tests.support.runtimes) says what each may answer; assertions read the engine through
plain httpx (`engine.inspect`, `engine.get`), not through the client under test.

Every test works in its own namespace and deployment ids (uuids); the `scope` fixture removes every
container, network, volume and image tag the test made, and fails the test if a container labelled for it
is still there afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from ring_actors.runtimes.base import (
    OWNER_LABEL,
    SERVER_LABEL,
    InstanceHandle,
    Mount,
    RegistryAuth,
    Runtime,
)
from ring_actors.runtimes.docker import DockerRuntime
from ring_actors.runtimes.errors import FailureKind, InstanceGone, RuntimeFailure
from ring_actors.schemas.manifest import (
    CommandCheck,
    Port,
    ResourceQuantities,
    Resources,
    RunAsUser,
)
from tests.support.engines import (
    AUTH_PASSWORD,
    AUTH_REGISTRY,
    AUTH_USER,
    HUB_IMAGE,
    IMAGE_REPO,
    IMAGE_V1,
    PRIVATE_IMAGE,
    REGISTRY,
)
from tests.support.runtimes import (
    EVENT_DRIVEN_BOUND,
    Engine,
    Scope,
    engine_params,
    registry_digest,
    rfc3339,
    running_runtime,
    wait_for,
    watching_exit,
)
from tests.support.server import free_port

pytestmark = [
    pytest.mark.parametrize(
        "engine", engine_params({"docker": "docker-runtime", "podman": "podman-runtime"}), indirect=True
    ),
    pytest.mark.usefixtures("registries", "deadline"),
]


async def version_of(runtime: DockerRuntime, handle: InstanceHandle) -> str:
    return (await runtime.exec(handle, ["cat", "/VERSION"], 10)).output.strip()


# --------------------------------------------------------------------------- create


async def test_runtime_satisfies_protocol(engine: Engine, runtime: DockerRuntime) -> None:
    """Verify the runtime is a `Runtime` named after its engine, records events as `docker`, and ping answers."""
    assert isinstance(runtime, Runtime)
    assert (runtime.name, runtime.component) == (engine.name, "docker")
    await runtime.ping()


async def test_create_names_labels_env_command_network_aliases(
    engine: Engine, runtime: DockerRuntime, scope: Scope
) -> None:
    """Verify name pattern, owner label (not overridable), env, Cmd, the ring_<ns> network with DNS aliases."""
    spec = scope.spec(
        "web",
        command=("httpd", "-f", "-p", "80", "-h", "/www"),
        env={"GREETING": "hello world", "EMPTY": ""},
        labels={"app": "web", OWNER_LABEL: "someone-else"},
    )
    handle = await runtime.create(spec)
    assert re.fullmatch(rf"{scope.namespace}_web_[0-9a-f]{{8}}", handle.name)
    assert handle.deployment_id == spec.deployment_id
    info = await engine.inspect(handle.id)
    assert info["Name"] in engine.inspect_names(handle.name)
    assert info["State"]["Running"] is True
    assert handle.pid == info["State"]["Pid"] > 0
    assert info["Config"]["Labels"] == {"app": "web", OWNER_LABEL: spec.deployment_id}
    assert "GREETING=hello world" in info["Config"]["Env"] and "EMPTY=" in info["Config"]["Env"]
    assert info["Config"]["Cmd"] == ["httpd", "-f", "-p", "80", "-h", "/www"]
    assert info["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
    networks = info["NetworkSettings"]["Networks"]
    ring_net = engine.network_name(scope.namespace)
    if runtime.attach_network_at_create:
        # Only the namespace network: never the default network shared by every namespace (Ring joins both).
        assert set(networks) == {ring_net}
        address_network = ring_net
    else:  # Ring's way: the engine's default network, then ring_<ns> connected
        assert set(networks) == {engine.default_network, ring_net}
        address_network = engine.default_network
    assert {"web", handle.name} <= set(networks[ring_net]["Aliases"])
    assert handle.address == networks[address_network]["IPAddress"] == await runtime.address(handle)
    assert len(await engine.networks_named(ring_net)) == 1
    assert handle.image_digest and handle.image_digest.startswith("sha256:")
    await runtime.remove(handle, timeout=0)  # httpd as PID 1 ignores SIGTERM


async def test_concurrent_creates_share_one_namespace_network(
    engine: Engine, runtime: DockerRuntime, scope: Scope
) -> None:
    """Verify concurrent creations in a new namespace make exactly one `ring_<ns>` network."""
    handles: list[InstanceHandle] = []
    spec = scope.spec("many")

    async def create_one() -> None:
        handles.append(await runtime.create(spec))

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(create_one)
    assert len(await engine.networks_named(engine.network_name(scope.namespace))) == 1
    assert len({h.name for h in handles}) == 4
    for handle in handles:
        await runtime.remove(handle)


async def test_ports_are_bound_and_reachable(engine: Engine, runtime: DockerRuntime, scope: Scope) -> None:
    """Verify PortBindings carry host_ip and protocol, the port answers on 127.0.0.1, and a clash fails cleanly."""
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
    info = await engine.inspect(handle.id)
    bindings = info["HostConfig"]["PortBindings"]
    assert set(bindings) == {"80/tcp", "5353/udp"}
    assert bindings["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(tcp_port)}]
    [udp] = bindings["5353/udp"]
    assert udp["HostPort"] == str(udp_port) and udp["HostIp"] in engine.wildcard_host_ips, udp
    assert set(udp) == {"HostIp", "HostPort"}, udp
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
    assert any(text in failure.value.message for text in engine.port_clash_messages), failure.value.message
    assert await engine.containers_of(clash.deployment_id) == []
    await runtime.remove(handle, timeout=0)  # httpd as PID 1 ignores SIGTERM


async def test_bind_volume_and_file_mounts(
    engine: Engine, runtime: DockerRuntime, scope: Scope, tmp_path: Path
) -> None:
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

    mounts = {m["Destination"]: m for m in (await engine.inspect(handle.id))["Mounts"]}
    assert mounts["/bind"]["Type"] == "bind" and mounts["/bind"]["RW"] is True
    assert mounts["/data"]["Type"] == "volume" and mounts["/data"]["Name"] == volume
    assert mounts["/etc/app/app.conf"]["Type"] == "bind" and mounts["/etc/app/app.conf"]["RW"] is False

    labels = (await engine.get(f"/volumes/{volume}"))["Labels"]
    assert labels == {"ring.managed": "true", "ring.namespace": scope.namespace, "ring.deployment": "mounts"}

    host_file = trio.Path(mounts["/etc/app/app.conf"]["Source"])
    assert await host_file.read_bytes() == payload
    assert stat.S_IMODE((await host_file.stat()).st_mode) == 0o600
    assert stat.S_IMODE((await host_file.parent.stat()).st_mode) == 0o700
    assert Path(host_file.parent) == runtime.deployment_files_dir(spec.deployment_id)

    await runtime.remove(handle)
    assert not await host_file.parent.exists(), "payload dir must go with the deployment's last container"
    assert await engine.status(f"/volumes/{volume}") == 200, "named volumes are never removed"


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


async def test_missing_bind_source_fails_and_creates_nothing(
    engine: Engine, runtime: DockerRuntime, scope: Scope
) -> None:
    """Verify a missing bind source is instance_creation_failed (permanent), no container remains, and the
    engine does not create the source."""
    source = f"/nonexistent-ring-test-{uuid.uuid4().hex[:8]}/dir"
    spec = scope.spec("badbind", mounts=(Mount(kind="bind", source=source, destination="/x"),))
    with pytest.raises(RuntimeFailure) as failure:
        await runtime.create(spec)
    assert failure.value.kind is FailureKind.INSTANCE_CREATION_FAILED
    assert failure.value.disposition.permanent
    assert f"bind source path does not exist: {source}" in failure.value.message
    assert await engine.containers_of(spec.deployment_id) == []
    assert not Path(source).parent.exists()


NATIVE_HEALTHCHECK = {
    "Test": ["CMD-SHELL", "test -f /VERSION"],
    "Interval": 1_000_000_000,
    "Timeout": 2_000_000_000,
    "StartPeriod": 500_000_000,
    "Retries": 2,
}
"""What the engine's inspect shows for the CommandCheck of test_resources_user_privileged_healthcheck."""


async def test_resources_user_privileged_healthcheck(engine: Engine, runtime: DockerRuntime, scope: Scope) -> None:
    """Verify NanoCpus/Memory/MemoryReservation, User id:group, Privileged and the native HEALTHCHECK rule.

    Podman runs HEALTHCHECKs from systemd timers: with systemd the check is set and turns healthy;
    without it is left out rather than stuck in `starting` (`Engine.native_healthcheck`).
    """
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
    info = await engine.inspect(handle.id)
    host = info["HostConfig"]
    assert (host["NanoCpus"], host["Memory"], host["MemoryReservation"]) == (500_000_000, 64 << 20, 32 << 20)
    assert host["Privileged"] is True
    assert info["Config"]["User"] == "65534:65534"
    result = await runtime.exec(handle, ["id", "-u"], 10)
    assert (result.exit_code, result.output.strip()) == (0, "65534")
    healthcheck = info["Config"].get("Healthcheck")
    if engine.native_healthcheck == "absent":
        assert not healthcheck, healthcheck
    else:
        if engine.native_healthcheck == "exact":
            assert healthcheck == NATIVE_HEALTHCHECK
        else:
            assert healthcheck["Test"] == NATIVE_HEALTHCHECK["Test"]

        async def healthy() -> bool:
            return bool((await engine.inspect(handle.id))["State"]["Health"]["Status"] == "healthy")

        await wait_for(healthy, within=15)
    await runtime.remove(handle)

    only_id = await runtime.create(scope.spec("uidonly", user=RunAsUser(id=1234)))
    assert (await engine.inspect(only_id.id))["Config"]["User"] == "1234"
    await runtime.remove(only_id)


async def test_host_network_mode(engine: Engine, runtime: DockerRuntime, scope: Scope) -> None:
    """Verify host mode (Ring allows it only on Docker; ring-actors on Podman too): NetworkMode host, the
    host's network namespace, no ring_<ns> network, no address, a port served on the host's loopback."""
    port = free_port()
    handle = await runtime.create(
        scope.spec("hostnet", network_mode="host", command=("httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"))
    )
    info = await engine.inspect(handle.id)
    assert info["HostConfig"]["NetworkMode"] == "host"
    assert tuple(info["NetworkSettings"]["Networks"]) == engine.host_mode_networks
    assert handle.address is None and await runtime.address(handle) is None
    assert await engine.networks_named(engine.network_name(scope.namespace)) == []
    assert os.readlink(f"/proc/{handle.pid}/ns/net") == os.readlink("/proc/self/ns/net")

    async def fetch() -> str | None:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{port}/index.html", timeout=2)).text
        except httpx.HTTPError:
            return None

    assert (await wait_for(fetch)).strip() == "v1"
    await runtime.remove(handle, timeout=0)  # httpd as PID 1 ignores SIGTERM


async def test_insufficient_host_memory(engine: Engine, runtime: DockerRuntime, scope: Scope) -> None:
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
    assert await engine.containers_of(spec.deployment_id) == []
    assert await engine.networks_named(engine.network_name(scope.namespace)) == []


# --------------------------------------------------------------------------- images


async def test_pull_policies(engine: Engine, runtime: DockerRuntime, scope: Scope) -> None:
    """Verify Always pulls (registry content wins), IfNotPresent uses the local image, Never never pulls."""
    # The registry holds v1 content under a fresh tag; the local store holds v2 content under the same tag.
    tag = f"{engine.pull_test_repo}-{uuid.uuid4().hex[:8]}:t"
    scope.image_tags.append(tag)
    manifest_digest = await engine.stage_pull_test(tag)

    local = await runtime.create(scope.spec("ifnp", image=tag, pull_policy="IfNotPresent"))
    assert await version_of(runtime, local) == "v2"
    never = await runtime.create(scope.spec("never", image=tag, pull_policy="Never"))
    assert await version_of(runtime, never) == "v2"

    async with engine.image_pull_events() as pulls:
        always = await runtime.create(scope.spec("always", image=tag, pull_policy="Always"))
    assert await version_of(runtime, always) == "v1"
    assert tag in pulls, pulls
    assert always.image_digest == manifest_digest

    missing = f"{engine.pull_test_repo}-{uuid.uuid4().hex[:8]}:absent"
    with pytest.raises(RuntimeFailure) as failure:
        await runtime.create(scope.spec("nevermissing", image=missing, pull_policy="Never"))
    assert failure.value.kind is FailureKind.IMAGE_NOT_FOUND
    assert failure.value.disposition.permanent
    assert "image_pull_policy=Never forbids pulling" in failure.value.message

    for handle in (local, never, always):
        await runtime.remove(handle)


async def test_digest_pinned_always_uses_cache_and_hub_names(
    engine: Engine, runtime: DockerRuntime, scope: Scope
) -> None:
    """Verify Always does not re-pull a digest-pinned image already present, and docker.io names resolve."""
    first = await runtime.create(scope.spec("first", image=IMAGE_V1, pull_policy="Always"))
    assert first.image_digest == await registry_digest(REGISTRY, IMAGE_V1)
    pinned_ref = f"{IMAGE_REPO}@{first.image_digest}"
    async with engine.image_pull_events() as pulls:
        pinned = await runtime.create(scope.spec("pinned", image=pinned_ref, pull_policy="Always"))
    assert engine.digest_pulls(pulls, first.image_digest) == [], pulls
    assert pinned.image_digest == first.image_digest
    assert (await engine.inspect(pinned.id))["Config"]["Image"] in engine.pinned_image_names(pinned_ref, IMAGE_V1)

    hub = await runtime.create(scope.spec("hub", image=HUB_IMAGE.split(":")[0], pull_policy="IfNotPresent"))
    assert (await engine.inspect(hub.id))["Config"]["Image"] in engine.hub_image_names
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


async def test_host_registry_auth(engine: Engine, scope: Scope, tmp_path: Path) -> None:
    """Verify `use_host_auth` pulls with the host's credentials file, and never falls back to anonymous."""
    credentials = tmp_path / "host-auth.json"  # Docker's config.json and Podman's auth.json share this shape
    token = base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode()
    credentials.write_text(json.dumps({"auths": {AUTH_REGISTRY: {"auth": token}}}))

    async with running_runtime(
        engine, tmp_path, use_host_registry_auth=True, host_registry_config=credentials
    ) as allowed:
        handle = await allowed.create(
            scope.spec("hostauth", image=PRIVATE_IMAGE, pull_policy="Always", use_host_auth=True)
        )
        assert await version_of(allowed, handle) == "v1"
        await allowed.remove(handle)

        # No entry for the registry: an actionable pull failure, no anonymous fallback.
        other = f"{REGISTRY}/ring-test/busybox:v1"
        with pytest.raises(RuntimeFailure) as failure:
            await allowed.create(scope.spec("noentry", image=other, pull_policy="Always", use_host_auth=True))
        assert failure.value.kind is FailureKind.IMAGE_PULL_FAILED
        assert f"no host registry credentials for '{REGISTRY}' in {credentials}" in failure.value.message
        assert f"{engine.name} login {REGISTRY}" in failure.value.message

    async with running_runtime(engine, tmp_path, host_registry_config=credentials) as refused:
        with pytest.raises(RuntimeFailure) as failure:
            await refused.create(scope.spec("refused", image=PRIVATE_IMAGE, pull_policy="Always", use_host_auth=True))
        assert failure.value.kind is FailureKind.IMAGE_PULL_FAILED
        assert f"use_host_registry_auth = true under [server.runtime.{engine.name}]" in failure.value.message


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


async def test_wait_exit_reports_exit_code(engine: Engine, runtime: DockerRuntime, scope: Scope) -> None:
    """Verify a container exiting with 3 reports 3, within the event-driven bound of its real exit."""
    handle = await runtime.create(scope.spec("job", command=("sh", "-c", "sleep 0.3; exit 3")))
    status = await runtime.wait_exit(handle)
    wall_minus_trio = time.time() - trio.current_time()
    assert (status.exit_code, status.oom_killed, status.removed) == (3, False, False)
    finished_at = rfc3339((await engine.inspect(handle.id))["State"]["FinishedAt"])
    latency = status.detected_at + wall_minus_trio - finished_at
    print(f"\nself-exit detection vs the engine's FinishedAt: {latency * 1000:+.1f} ms")
    assert abs(latency) < EVENT_DRIVEN_BOUND
    if engine.exit_code_source is not None:
        assert runtime.exit_code_sources == {engine.exit_code_source: 1}  # type: ignore[attr-defined]
    again = await runtime.wait_exit(handle)  # already exited: answered at once from the engine's state
    assert again.exit_code == 3
    await runtime.remove(handle)


async def test_wait_exit_without_event_stream_uses_engine_wait(engine: Engine, scope: Scope, tmp_path: Path) -> None:
    """Verify the last fallback (no pidfd, no event watcher): the engine's `/wait` still reports the exit code."""
    async with running_runtime(engine, tmp_path, serve=False, use_pidfd=False) as bare:
        handle = await bare.create(scope.spec("fallback", command=("sh", "-c", "sleep 0.3; exit 5")))
        started = trio.current_time()
        status = await bare.wait_exit(handle)
        assert status.exit_code == 5
        print(f"\ncreate -> exit seen through /wait: {(status.detected_at - started) * 1000:.0f} ms")
        assert status.detected_at - started < 0.3 + engine.compat_wait_bound
        await bare.remove(handle)


async def test_concurrent_waits_share_the_event_stream(engine: Engine, scope: Scope, tmp_path: Path) -> None:
    """Verify several waiters on one events-only runtime each get their own container's exit code."""
    async with running_runtime(engine, tmp_path, use_pidfd=False) as events_only:
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
        assert events_only.statistics().events_routed >= 3
        for handle in handles:
            await events_only.remove(handle)


async def test_oom_kill_is_reported(engine: Engine, runtime: DockerRuntime, scope: Scope) -> None:
    """Verify a container exceeding limits.memory reports oom_killed, and a plain kill -9 does not."""
    spec = scope.spec(
        "oom",
        resources=Resources(limits=ResourceQuantities(memory="16Mi")),
        command=("sh", "-c", "sleep 0.2; x=a; while true; do x=$x$x; done"),
    )
    handle = await runtime.create(spec)
    with engine.oom_marker(handle):
        status = await runtime.wait_exit(handle)
    assert status.oom_killed and status.exit_code == 137
    print(f"\nthe engine's own State.OOMKilled: {(await engine.inspect(handle.id))['State']['OOMKilled']}")
    plain = await runtime.create(scope.spec("plain"))
    assert plain.pid
    os.kill(plain.pid, signal.SIGKILL)
    status = await runtime.wait_exit(plain)
    assert (status.exit_code, status.oom_killed) == (137, False)
    for done in (handle, plain):
        await runtime.remove(done)


async def test_removal_behind_our_back(engine: Engine, runtime: DockerRuntime, scope: Scope) -> None:
    """Verify a container removed behind our back ends the wait; a later wait says removed=True."""
    handle = await runtime.create(scope.spec("gone"))
    async with watching_exit(runtime, handle) as result:
        removed_at = trio.current_time()
        await engine.cli(*engine.rm_force, handle.id)
    status = result["status"]
    assert status.detected_at - removed_at < engine.cli_removal_bound
    # The engine stops the container first (died), then removes it: either may be what we saw first.
    if engine.forced_removal_exit_code is None:
        assert status.removed or status.exit_code is not None
    else:
        assert status.removed or status.exit_code == engine.forced_removal_exit_code
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


# --------------------------------------------------------------------------- exec, logs


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


async def test_logs_tail_since_and_follow(engine: Engine, runtime: DockerRuntime, scope: Scope) -> None:
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
        assert line.timestamp and re.fullmatch(engine.log_timestamp, line.timestamp), line.timestamp
    assert [line.message for line in await runtime.logs(handle, tail=1, since=None)] == ["three"]
    between = rfc3339(lines[1].timestamp or "") + engine.log_since_step
    assert [line.message for line in await runtime.logs(handle, tail=None, since=between)] == ["three"]
    await runtime.remove(handle)


# --------------------------------------------------------------------------- list, adopt, remove


async def test_list_adopt_and_idempotent_remove(
    engine: Engine, runtime: DockerRuntime, scope: Scope, tmp_path: Path
) -> None:
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

    # wait_exit may answer (from the pidfd or the `die` event) before the engine has finished its own
    # post-exit bookkeeping (~100 ms): its listing may still say "running" for a moment.
    with trio.fail_after(10):
        while True:
            observed = {o.id: o for o in await runtime.list_instances() if o.deployment_id == deployment_id}
            if exited.id in observed and not observed[exited.id].running:
                break
            await trio.sleep(0.02)
    assert set(observed) == {running.id, exited.id}
    assert observed[running.id].running and observed[running.id].pid == running.pid
    assert observed[running.id].name == running.name
    assert (await engine.inspect(running.id))["Config"]["Labels"][SERVER_LABEL] == "test-server"
    assert (observed[running.id].server_id, observed[exited.id].server_id) == ("test-server", None)
    assert not observed[exited.id].running and observed[exited.id].exit_code == 4
    assert observed[exited.id].pid is None
    assert abs(observed[running.id].created_at - running.created_at) < 2

    # A fresh runtime (as after a server restart) rebuilds equivalent handles and watches them as before.
    async with running_runtime(engine, tmp_path) as restarted:
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
        assert await engine.containers_of(deployment_id) == []
        assert [o for o in await restarted.list_instances(details=False) if o.deployment_id == deployment_id] == []
        with pytest.raises(InstanceGone):
            await restarted.adopt(observed[running.id])
    assert not runtime.deployment_files_dir(deployment_id).exists()


async def test_remove_uses_grace_period(engine: Engine, runtime: DockerRuntime, scope: Scope) -> None:
    """Verify remove stops with SIGTERM first (a trapping process exits cleanly) within the grace."""
    script = "trap 'exit 0' TERM; while true; do sleep 0.1; done"
    handle = await runtime.create(scope.spec("graceful", command=("sh", "-c", script)))
    async with watching_exit(runtime, handle) as status:
        started = trio.current_time()
        await runtime.remove(handle, timeout=5)
        assert trio.current_time() - started < 4
    assert status["status"].exit_code in (0, None)
    assert await engine.containers_of(handle.deployment_id) == []
