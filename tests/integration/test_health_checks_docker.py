"""Health checks, the readiness gate and rolling updates on the REAL Docker engine (lifecycle.md §6–§8).

The supervision tree runs in-process (as in test_lifecycle.py); probes go
from this process to the containers' addresses on their namespace network, as
they do in the server. Busybox serves the traffic: `httpd` for 200/404, and
`nc -ll -e` for a 302 redirect and for a server that never answers.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
import trio

from ring_actors.runtimes.docker import DockerRuntime
from ring_actors.schemas.manifest import CommandCheck, HttpCheck, Network, TcpCheck
from ring_actors.store.health import HealthCheckRepo
from ring_actors.supervisors.policy import BackoffSettings
from tests.support.engines import IMAGE_V1, IMAGE_V2
from tests.support.runtimes import DOCKER, Engine
from tests.support.server import free_port
from tests.unit.actor_harness import running_tree

from .docker_probe import containers_of, docker, inspect

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_health_checks_docker")]

BACKOFF = BackoffSettings(base=0.1, maximum=0.5, healthy_window=30)
NAMESPACE = "hc-it"
HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]

# A shell script answering every connection with a 302 (never followed by the probe).
_REDIRECT = (
    'while read l; do case "$l" in "$(printf "\\r")"|"") break;; esac; done;'
    ' printf "HTTP/1.0 302 Found\\r\\nLocation: /index.html\\r\\nContent-Length: 0\\r\\n\\r\\n"'
)
SERVERS = [
    "sh",
    "-c",
    "cat > /tmp/redirect.sh <<'EOF'\n" + _REDIRECT + "\nEOF\n"
    "httpd -p 8080 -h /www\n"  # 200 for /index.html, 404 otherwise
    "nc -ll -p 8081 -e sh /tmp/redirect.sh &\n"  # 302
    "nc -ll -p 8082 -e sleep 3600 &\n"  # accepts, never answers
    "wait\n",
]


@pytest.fixture
def engine() -> Engine:
    """The engine of conftest.py's `cleanup` fixture (it also checks dockerd answers)."""
    return DOCKER.require()


def tcp(port: int, **fields) -> TcpCheck:
    return TcpCheck(port=port, **_common(fields))


def http(url: str, **fields) -> HttpCheck:
    return HttpCheck(url=url, **_common(fields))


def command(text: str, **fields) -> CommandCheck:
    return CommandCheck(command=text, **_common(fields))


def _common(fields: dict) -> dict:
    fields.setdefault("interval", "200ms")
    fields.setdefault("timeout", "1s")
    fields.setdefault("on_failure", "alert")
    return fields


async def wait_until(predicate, timeout: float = 30.0, step: float = 0.05):
    with trio.fail_after(timeout):
        while not (value := await predicate()):
            await trio.sleep(step)
        return value


async def results(tree, deployment_id: str, index: int = 0, status: str | None = None):
    rows = await HealthCheckRepo(tree.db).list(deployment_id, limit=1000)
    return [r for r in rows if r.check_index == index and (status is None or r.status == status)]


async def first_result(tree, deployment_id: str, status: str, index: int = 0):
    async def found():
        return (await results(tree, deployment_id, index, status)) or None

    return (await wait_until(found))[0]


async def deploy(tree, cleanup, *checks, command_line=HTTPD, **fields):
    fields.setdefault("name", f"hc{uuid.uuid4().hex[:6]}")
    deployment = await tree.apply(
        namespace=NAMESPACE,
        image=fields.pop("image", IMAGE_V1),
        command=command_line,
        health_checks=list(checks),
        **fields,
    )
    cleanup.append(deployment.id)
    return deployment


async def running(tree, deployment, timeout: float = 60):
    async with tree.watch(deployment.id) as until:
        await until("running", timeout=timeout)
    [instance] = tree.root.live_instances(deployment.id) or [None]
    return instance


def exec_in(container_id: str, *argv: str) -> None:
    """Run a command in a container through the engine API (test set-up only)."""
    with docker() as client:
        created = client.post(f"/containers/{container_id}/exec", json={"Cmd": list(argv)})
        created.raise_for_status()
        client.post(f"/exec/{created.json()['Id']}/start", json={"Detach": False}).raise_for_status()


# ---------------------------------------------------------------------------- tcp


async def test_tcp_probe_success_and_failure(cleanup) -> None:
    """Verify tcp probes reach <container IP>:<port>: an open port succeeds, a closed one fails."""
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        deployment = await deploy(tree, cleanup, tcp(8080, readiness=True, min_healthy_time="200ms"), tcp(9999))
        instance = await running(tree, deployment)
        good = await first_result(tree, deployment.id, "success", 0)
        assert good.message == f"TCP connection to {instance.address}:8080 successful"
        assert good.instance_id == instance.id and good.check_type == "tcp"
        bad = await first_result(tree, deployment.id, "failed", 1)
        assert bad.message.startswith("TCP connection failed: ")


# ---------------------------------------------------------------------------- http


async def test_http_probe_success_404_redirect_and_timeout(cleanup) -> None:
    """Verify http probes: 200 succeeds; 404 fails; a 302 fails without being followed; a silent server times out."""
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        deployment = await deploy(
            tree,
            cleanup,
            http("http://localhost:8080/index.html", readiness=True, min_healthy_time="200ms"),
            http("http://localhost:8080/missing.html"),
            http("http://127.0.0.1:8081/moved"),
            http("http://localhost:8082/", timeout="300ms"),
            command_line=SERVERS,
        )
        instance = await running(tree, deployment)
        ip = instance.address
        ok = await first_result(tree, deployment.id, "success", 0)
        assert ok.message == f"HTTP check successful (200) for http://{ip}:8080/index.html"
        missing = await first_result(tree, deployment.id, "failed", 1)
        assert missing.message == f"HTTP check failed with status 404 for http://{ip}:8080/missing.html"
        moved = await first_result(tree, deployment.id, "failed", 2)
        assert moved.message == f"HTTP check failed with status 302 for http://{ip}:8081/moved"
        assert await results(tree, deployment.id, 2, "success") == [], "a redirect is never followed"
        silent = await first_result(tree, deployment.id, "timeout", 3)
        assert silent.message == "Health check timed out"


async def test_host_network_instance_is_probed_on_loopback(cleanup) -> None:
    """Verify a host-network container (no address of its own) passes an http readiness check on 127.0.0.1."""
    port = free_port()
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        deployment = await deploy(
            tree,
            cleanup,
            http(f"http://localhost:{port}/index.html", readiness=True, min_healthy_time="200ms"),
            command_line=["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"],
            network=Network(mode="host"),
        )
        await running(tree, deployment)
        ok = await first_result(tree, deployment.id, "success", 0)
        assert ok.message == f"HTTP check successful (200) for http://127.0.0.1:{port}/index.html"


# ---------------------------------------------------------------------------- command


async def test_command_probe_success_and_failure(cleanup) -> None:
    """Verify command probes exec in the container (split by shell-word rules) and judge the exit code."""
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        deployment = await deploy(
            tree,
            cleanup,
            command("test -f /www/index.html"),
            command("sh -c 'exit 3'"),
            command("sleep 5", timeout="300ms"),
        )
        await running(tree, deployment)
        assert (await first_result(tree, deployment.id, "success", 0)).message == "Command exited 0"
        assert (await first_result(tree, deployment.id, "failed", 1)).message == "Command exited 3"
        assert (await first_result(tree, deployment.id, "timeout", 2)).message == "Health check timed out"


# ---------------------------------------------------------------------------- actions


async def test_restart_replaces_the_failing_container(cleanup) -> None:
    """Verify on_failure restart removes the failing container and starts a new one at once, no crash counted."""
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        deployment = await deploy(
            tree,
            cleanup,
            command("test -f /tmp/alive", threshold=2, on_failure="restart"),
            command_line=["sh", "-c", "touch /tmp/alive; exec httpd -f -p 8080 -h /www"],
        )
        first = await running(tree, deployment)
        await first_result(tree, deployment.id, "success")
        exec_in(first.id, "rm", "/tmp/alive")

        async def replaced():
            live = tree.root.live_instances(deployment.id)
            return live and live[0].id != first.id and live

        [second] = await wait_until(replaced)
        row = await tree.repo.get(deployment.id)
        assert (row.status, row.restart_count) == ("running", 0)
        reasons = await tree.reasons(deployment.id)
        assert reasons.count("health_check_instance_restart") == 1
        assert "container_crashed" not in reasons

        async def old_gone():
            return all(c["Id"] != first.id for c in containers_of(deployment.id))

        await wait_until(old_gone)
        assert [c["Id"] for c in containers_of(deployment.id)] == [second.id]


async def test_stop_deletes_the_deployment(cleanup) -> None:
    """Verify on_failure stop tears the deployment down and purges it."""
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        deployment = await deploy(tree, cleanup, command("test -f /nope", threshold=2, on_failure="stop"))
        async with tree.watch(deployment.id) as until:
            await until("purged", timeout=60)
        assert containers_of(deployment.id) == []
        assert await tree.repo.get(deployment.id) is None


async def test_alert_only_records_an_event(cleanup) -> None:
    """Verify on_failure alert writes error events and leaves the container alone."""
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        deployment = await deploy(tree, cleanup, tcp(9999, threshold=2, on_failure="alert"))
        instance = await running(tree, deployment)

        async def alerted():
            events = await tree.events.list(deployment.id)
            return [e for e in events if e.reason == "health_check_alert"]

        [alert, *_] = await wait_until(alerted)
        assert alert.level == "error"
        assert alert.message.startswith(f"Health check failed for instance {instance.id}: TCP connection failed: ")
        assert [i.id for i in tree.root.live_instances(deployment.id)] == [instance.id]
        assert (await tree.repo.get(deployment.id)).status == "running"


# ---------------------------------------------------------------------------- readiness gate


async def test_readiness_gate_holds_then_opens(cleanup) -> None:
    """Verify a container whose server starts late keeps the deployment creating (and unlisted) until its
    http readiness check has been green for min_healthy_time."""
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        deployment = await deploy(
            tree,
            cleanup,
            http("http://localhost:8080/index.html", readiness=True, min_healthy_time="1s"),
            command_line=["sh", "-c", "sleep 3; exec httpd -f -p 8080 -h /www"],
        )
        await wait_until(lambda: _containers(deployment.id, 1))
        await first_result(tree, deployment.id, "failed")
        assert (await tree.repo.get(deployment.id)).status == "creating"
        assert tree.root.live_instances(deployment.id) == []
        await running(tree, deployment)
        rows = await results(tree, deployment.id)
        first_ok = min(r.finished_at for r in rows if r.status == "success")
        promoted = next(e for e in await tree.events.list(deployment.id) if e.reason == "state_transition")
        assert promoted.timestamp > first_ok
        assert len(tree.root.live_instances(deployment.id)) == 1


async def _containers(deployment_id: str, n: int) -> bool:
    return len(containers_of(deployment_id, all_states=False)) >= n


async def test_readiness_deadline_fails_the_deployment(cleanup) -> None:
    """Verify a deployment never ready within start_period + rollout deadline goes failed and its container goes."""
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        tree.ctx.rollout_deadline = 2.0
        deployment = await deploy(tree, cleanup, tcp(9999, readiness=True, start_period="500ms"))
        async with tree.watch(deployment.id) as until:
            await until("failed", timeout=60)
        events = await tree.events.list(deployment.id)
        assert [e.level for e in events if e.reason == "readiness_deadline_exceeded"] == ["error"]

        async def gone():
            return not containers_of(deployment.id, all_states=False)

        await wait_until(gone)


async def test_native_healthcheck_is_installed_from_the_first_command_readiness_check(cleanup) -> None:
    """Verify the container carries Docker's HEALTHCHECK (CMD-SHELL, interval, timeout, retries, start period)
    and the engine reports it healthy."""
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        deployment = await deploy(
            tree,
            cleanup,
            tcp(8080),
            command(
                "test -f /www/index.html",
                readiness=True,
                interval="500ms",
                threshold=4,
                start_period="1s",
                min_healthy_time="200ms",
            ),
        )
        instance = await running(tree, deployment)
        healthcheck = inspect(instance.id)["Config"]["Healthcheck"]
        assert healthcheck["Test"] == ["CMD-SHELL", "test -f /www/index.html"]
        assert healthcheck["Interval"] == 500_000_000 and healthcheck["Timeout"] == 1_000_000_000
        assert healthcheck["Retries"] == 4 and healthcheck["StartPeriod"] == 1_000_000_000

        async def healthy():
            return inspect(instance.id)["State"].get("Health", {}).get("Status") == "healthy"

        await wait_until(healthy)


# ---------------------------------------------------------------------------- rolling update


async def test_rolling_update_v1_to_v2(cleanup) -> None:
    """Verify a child on v2 drains its v1 parent one container at a time, oldest first; at the end only v2
    containers exist, they serve v2, and the parent is purged."""
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        tree.ctx.drain_grace = 0.2
        check = http("http://localhost:8080/index.html", readiness=True, min_healthy_time="500ms")
        parent = await deploy(tree, cleanup, check, name="web", replicas=2)
        async with tree.watch(parent.id) as until:
            await until("running", timeout=60)
        old = sorted(containers_of(parent.id, all_states=False), key=lambda c: c["Created"])
        child = await deploy(tree, cleanup, check, name="web", replicas=2, image=IMAGE_V2, parent_id=parent.id)

        async def complete():
            return "rolling_update_complete" in await tree.reasons(child.id)

        await wait_until(complete, timeout=90)
        steps = [e.message for e in reversed(await tree.events.list(child.id)) if e.reason == "rolling_update_step"]
        assert len(steps) == 2
        assert steps[1].endswith(f"from parent {parent.id} (0 remaining)")
        assert {s.split()[4] for s in steps} == {c["Id"] for c in old}

        async def parent_gone():
            return await tree.repo.get(parent.id) is None and not containers_of(parent.id)

        await wait_until(parent_gone)
        row = await tree.repo.get(child.id)
        assert row.status == "running" and not row.parent_id
        live = tree.root.live_instances(child.id)
        assert len(live) == 2
        async with httpx.AsyncClient(trust_env=False) as client:
            for instance in live:
                response = await client.get(f"http://{instance.address}:8080/index.html")
                assert response.text.strip() == "v2"
