"""Health-check probes and their actions (lifecycle.md §6).

Probe execution is tested against tiny servers on loopback (real tcp/http) and a
fake exec; cadence, counters and `on_failure` actions run through the in-process
supervision tree on the SIMULATED runtime.
"""

from __future__ import annotations

from functools import partial

import pytest
import trio

from ring_actors.instances import messages as im
from ring_actors.instances.probes import HostNetwork, rewrite_url, run_check
from ring_actors.runtimes.base import ExecResult, InstanceHandle
from ring_actors.runtimes.simulated import SimulatedRuntime
from ring_actors.schemas.manifest import CommandCheck, HttpCheck, TcpCheck
from ring_actors.store.health import HealthCheckRepo

from .actor_harness import running_tree

# ---------------------------------------------------------------------------- helpers


class FakeExecRuntime:
    """Only what command probes need: records argv, answers a fixed exit code."""

    def __init__(self, exit_code: int = 0, delay: float = 0.0) -> None:
        self.exit_code = exit_code
        self.delay = delay
        self.calls: list[list[str]] = []

    async def exec(self, handle: InstanceHandle, argv: list[str], timeout: float) -> ExecResult:
        self.calls.append(argv)
        with trio.move_on_after(timeout):
            await trio.sleep(self.delay)
            return ExecResult(self.exit_code, "")
        return ExecResult(-1, "", timed_out=True)

    async def address(self, handle: InstanceHandle) -> str | None:
        return handle.address


class RecordingNetwork:
    """Records the targets tcp/http probes were sent to; answers 200."""

    def __init__(self) -> None:
        self.targets: list[str] = []

    async def tcp_connect(self, host: str, port: int) -> None:
        self.targets.append(f"{host}:{port}")

    async def http_get(self, url: str, timeout: float) -> int:
        self.targets.append(url)
        return 200


def handle(address: str | None = "127.0.0.1") -> InstanceHandle:
    return InstanceHandle(id="c0ffee" * 10, name="ns_web_1", deployment_id="d", address=address)


async def http_server(nursery: trio.Nursery, routes: dict[str, bytes], hits: list[str]) -> int:
    """A minimal HTTP/1.0 server on 127.0.0.1; returns its port. `routes` maps path -> raw response."""

    async def handler(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            data += chunk
        path = data.split(b" ", 2)[1].decode()
        hits.append(path)
        response = routes.get(path, b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        if response == b"hang":
            await trio.sleep_forever()
        await stream.send_all(response)
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return listeners[0].socket.getsockname()[1]


def ok(body: bytes = b"ok") -> bytes:
    return b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def check(kind: str, **fields):
    fields.setdefault("interval", "1s")
    fields.setdefault("timeout", "1s")
    fields.setdefault("on_failure", "alert")
    return {"tcp": TcpCheck, "http": HttpCheck, "command": CommandCheck}[kind](**fields)


# ---------------------------------------------------------------------------- URL rewriting


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:8080/health", "http://10.0.0.7:8080/health"),
        ("http://127.0.0.1/health", "http://10.0.0.7/health"),
        ("http://LOCALHOST:81/", "http://10.0.0.7:81/"),
        # Only the host: the same text in the path or query is left alone.
        (
            "http://localhost:8080/localhost?next=http://localhost/",
            "http://10.0.0.7:8080/localhost?next=http://localhost/",
        ),
        ("http://user:pw@localhost:9000/x", "http://user:pw@10.0.0.7:9000/x"),
        ("http://example.internal:8080/localhost", "http://example.internal:8080/localhost"),
        ("http://mylocalhost:8080/", "http://mylocalhost:8080/"),
    ],
)
def test_rewrite_url_replaces_only_a_local_host(url: str, expected: str) -> None:
    """Verify only a `localhost`/`127.0.0.1` host is replaced by the instance address."""
    assert rewrite_url(url, "10.0.0.7") == expected


def test_rewrite_url_brackets_ipv6_addresses() -> None:
    """Verify an IPv6 instance address becomes a valid URL host."""
    assert rewrite_url("http://localhost:8080/", "fd00::5") == "http://[fd00::5]:8080/"


# ---------------------------------------------------------------------------- tcp


async def test_tcp_probe_success_and_failure_messages() -> None:
    """Verify tcp probes connect to <address>:<port> and word both outcomes as Ring does."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, lambda s: s.aclose(), 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        network = HostNetwork()
        good = await run_check(check("tcp", port=port), runtime=FakeExecRuntime(), handle=handle(), network=network)
        assert (good.status, good.message) == ("success", f"TCP connection to 127.0.0.1:{port} successful")
        nursery.cancel_scope.cancel()
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # bound, never listening: refused
        bad = await run_check(check("tcp", port=closed), runtime=FakeExecRuntime(), handle=handle(), network=network)
    assert bad.status == "failed"
    assert bad.message.startswith("TCP connection failed: ")
    await network.aclose()


async def test_host_network_instances_are_probed_on_loopback() -> None:
    """Verify an instance without an address of its own (host network) is probed on 127.0.0.1."""
    network = RecordingNetwork()
    runtime = FakeExecRuntime()
    tcp = await run_check(
        check("tcp", port=8080), runtime=runtime, handle=handle(None), network=network, host_network=True
    )
    http = await run_check(
        check("http", url="http://localhost:8080/health"),
        runtime=runtime,
        handle=handle(None),
        network=network,
        host_network=True,
    )
    assert tcp.status == http.status == "success"
    assert network.targets == ["127.0.0.1:8080", "http://127.0.0.1:8080/health"]


async def test_missing_address_fails_with_ring_message() -> None:
    """Verify a bridge instance whose address is unknown fails with `Could not resolve instance address`."""
    result = await run_check(
        check("tcp", port=80), runtime=FakeExecRuntime(), handle=handle(None), network=RecordingNetwork()
    )
    assert result.status == "failed"
    assert result.message == f"Could not resolve instance address for {'c0ffee' * 10}"


# ---------------------------------------------------------------------------- http


async def test_http_probe_statuses_redirects_and_timeouts() -> None:
    """Verify 2xx succeeds, 5xx fails, a 3xx fails WITHOUT being followed, and a hang times out."""
    hits: list[str] = []
    async with trio.open_nursery() as nursery:
        port = await http_server(
            nursery,
            {
                "/ok": ok(),
                "/created": b"HTTP/1.0 201 Created\r\nContent-Length: 0\r\n\r\n",
                "/boom": b"HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
                "/moved": b"HTTP/1.0 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n",
                "/hang": b"hang",
            },
            hits,
        )
        network = HostNetwork()
        runtime = FakeExecRuntime()

        async def probe(path: str, timeout: str = "1s"):
            return await run_check(
                check("http", url=f"http://localhost:{port}{path}", timeout=timeout),
                runtime=runtime,
                handle=handle("127.0.0.1"),
                network=network,
            )

        url = f"http://127.0.0.1:{port}"
        result = await probe("/ok")
        assert (result.status, result.message) == ("success", f"HTTP check successful (200) for {url}/ok")
        result = await probe("/created")
        assert (result.status, result.message) == ("success", f"HTTP check successful (201) for {url}/created")
        result = await probe("/boom")
        assert (result.status, result.message) == ("failed", f"HTTP check failed with status 500 for {url}/boom")
        hits.clear()
        result = await probe("/moved")
        assert (result.status, result.message) == ("failed", f"HTTP check failed with status 302 for {url}/moved")
        assert hits == ["/moved"], "the redirect must not be followed"
        started = trio.current_time()
        result = await probe("/hang", timeout="300ms")
        assert (result.status, result.message) == ("timeout", "Health check timed out")
        assert 0.25 < trio.current_time() - started < 1.0
        await network.aclose()
        nursery.cancel_scope.cancel()


async def test_http_probe_connection_refused_is_a_failure() -> None:
    """Verify a refused connection is `failed` (not `timeout`) and names the URL."""
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        network = HostNetwork()
        result = await run_check(
            check("http", url=f"http://localhost:{port}/"), runtime=FakeExecRuntime(), handle=handle(), network=network
        )
        await network.aclose()
    assert result.status == "failed"
    assert result.message.startswith(f"HTTP check failed for http://127.0.0.1:{port}/: ")


# ---------------------------------------------------------------------------- command


async def test_command_probe_splits_like_a_shell_and_reports_the_exit_code() -> None:
    """Verify the command is split by shell-word rules (no shell) and the exit code decides."""
    runtime = FakeExecRuntime(exit_code=0)
    result = await run_check(
        check("command", command="sh -c 'test -f /www/index.html && exit 0'"),
        runtime=runtime,
        handle=handle(),
        network=RecordingNetwork(),
    )
    assert (result.status, result.message) == ("success", "Command exited 0")
    assert runtime.calls == [["sh", "-c", "test -f /www/index.html && exit 0"]]
    runtime.exit_code = 3
    result = await run_check(
        check("command", command="false"), runtime=runtime, handle=handle(), network=RecordingNetwork()
    )
    assert (result.status, result.message) == ("failed", "Command exited 3")


async def test_command_probe_timeout() -> None:
    """Verify a command that outlives its timeout is recorded as `timeout`."""
    runtime = FakeExecRuntime(delay=5)
    result = await run_check(
        check("command", command="sleep 5", timeout="100ms"),
        runtime=runtime,
        handle=handle(),
        network=RecordingNetwork(),
    )
    assert (result.status, result.message) == ("timeout", "Health check timed out")


async def test_invalid_timeout_fails_every_probe() -> None:
    """Verify an unparseable timeout records `failed` with `Invalid timeout duration` (manifest.md §10.1)."""
    result = await run_check(
        check("command", command="true", timeout="1m"),
        runtime=FakeExecRuntime(),
        handle=handle(),
        network=RecordingNetwork(),
    )
    assert (result.status, result.message) == ("failed", "Invalid timeout duration")


# ---------------------------------------------------------------------------- cadence (tree, simulated runtime)


async def wait_for(predicate, timeout: float = 5.0, step: float = 0.01):
    with trio.fail_after(timeout):
        while not (value := await predicate()):
            await trio.sleep(step)
        return value


async def test_each_check_runs_on_its_own_interval_independent_of_the_tick() -> None:
    """Verify a 500ms check runs about twice a second while the reconcile tick is an hour,
    and a second check keeps its own, slower, cadence concurrently."""
    runtime = SimulatedRuntime()
    async with running_tree(runtime, tick=3600) as tree:
        deployment = await tree.apply(
            health_checks=[check("command", command="true", interval="500ms"), check("tcp", port=80, interval="1500ms")]
        )
        async with tree.watch(deployment.id) as until:
            await until("running")
        [instance] = runtime.running_for(deployment.id)
        repo = HealthCheckRepo(tree.db)
        await trio.sleep(0.1)
        before = await repo.list(deployment.id, limit=1000)
        start_fast = sum(1 for r in before if r.check_index == 0)
        start_slow = sum(1 for r in before if r.check_index == 1)
        await trio.sleep(3.0)
        rows = await repo.list(deployment.id, limit=1000)
        fast = sum(1 for r in rows if r.check_index == 0) - start_fast
        slow = sum(1 for r in rows if r.check_index == 1) - start_slow
        assert 5 <= fast <= 7, f"500ms check ran {fast} times in 3 s"
        assert 1 <= slow <= 3, f"1500ms check ran {slow} times in 3 s"
        assert tree.root.ticks == 0, "no reconcile tick was involved"
        assert {r.instance_id for r in rows} == {instance.id}
        assert {r.check_type for r in rows if r.check_index == 0} == {"command"}


# ---------------------------------------------------------------------------- counters and actions


def result(actor_slot: str, instance_id: str, status: str, index: int = 0) -> im.ProbeResult:
    return im.ProbeResult(
        actor_slot, instance_id, index, "command", status, f"Command exited {0 if status == 'success' else 1}", "", ""
    )


async def running_with(tree, *checks, **fields):
    deployment = await tree.apply(health_checks=list(checks), **fields)
    async with tree.watch(deployment.id) as until:
        await until("running")
    actor = tree.root.actors[deployment.id]
    [slot] = [s for s in actor.slots.values() if s.state == "live"]
    return deployment, actor, slot


async def test_failures_count_per_instance_and_fire_once_at_the_threshold() -> None:
    """Verify failed/timeout add one, success resets, and the action fires once at the threshold, then resets."""
    async with running_tree() as tree:
        # A one-hour interval: the test drives the results itself.
        deployment, actor, slot = await running_with(
            tree, check("command", command="true", interval="3600s", threshold=3)
        )
        iid = slot.handle.id

        repo = HealthCheckRepo(tree.db)

        async def feed(*statuses: str, instance: str = iid) -> None:
            """Send results one by one; each is processed once its history row exists."""
            for status in statuses:
                before = len(await repo.list(deployment.id, limit=1000))
                actor.inbox.send_nowait(result(slot.id, instance, status))
                if instance == iid:
                    await wait_for(partial(_more_rows, repo, deployment.id, before))

        async def alerts(expected: int) -> bool:
            async def reached() -> bool:
                return (await tree.reasons(deployment.id)).count("health_check_alert") >= expected

            await wait_for(reached, timeout=2)
            await trio.sleep(0.1)  # and no more than that
            return (await tree.reasons(deployment.id)).count("health_check_alert") == expected

        await feed("failed", "timeout", "success", "failed", "failed")
        assert await alerts(0), "success in between resets the counter"
        await feed("timeout")
        assert await alerts(1)
        await feed("failed", "failed")
        assert await alerts(1), "the counter restarted from zero after firing"
        await feed("failed")
        assert await alerts(2)
        # A result for another instance (or a stale one) is dropped: no row, no count.
        await feed("failed", "failed", "failed", instance="not-this-instance")
        assert await alerts(2)
        events = await tree.events.list(deployment.id, limit=100)
        alert = next(e for e in events if e.reason == "health_check_alert")
        assert (alert.level, alert.component) == ("error", "health_checker")
        assert alert.message == f"Health check failed for instance {iid}: Command exited 1"
        assert tree.runtime.running_for(deployment.id)[0].id == iid, "alert does nothing else"


async def test_results_go_to_the_history_with_instance_and_check_index() -> None:
    """Verify every probe result is stored with the instance id and the check index."""
    runtime = SimulatedRuntime()
    async with running_tree(runtime) as tree:
        deployment, _, slot = await running_with(
            tree, check("tcp", port=80, interval="50ms"), check("tcp", port=81, interval="50ms")
        )
        repo = HealthCheckRepo(tree.db)
        rows = await wait_for(lambda: _rows_with_both(repo, deployment.id))
        assert {(r.instance_id, r.check_index, r.check_type, r.status) for r in rows} == {
            (slot.handle.id, 0, "tcp", "success"),
            (slot.handle.id, 1, "tcp", "success"),
        }
        assert all(r.message.startswith(f"TCP connection to {slot.handle.address}:8") for r in rows)


async def _more_rows(repo: HealthCheckRepo, deployment_id: str, before: int) -> bool:
    return len(await repo.list(deployment_id, limit=1000)) > before


async def _rows_with_both(repo: HealthCheckRepo, deployment_id: str):
    rows = await repo.list(deployment_id, limit=1000)
    return rows if {r.check_index for r in rows} == {0, 1} else None


async def test_restart_replaces_that_instance_now_without_counting_a_crash() -> None:
    """Verify on_failure restart removes the failing instance, creates a new one at once, and leaves restart_count."""
    runtime = SimulatedRuntime()
    async with running_tree(runtime) as tree:
        deployment = await tree.apply(
            replicas=2, health_checks=[check("tcp", port=80, interval="50ms", threshold=2, on_failure="restart")]
        )
        async with tree.watch(deployment.id) as until:
            await until("running")
        victim, other = runtime.running_for(deployment.id)
        runtime.set_healthy(victim.id, False)
        await wait_for(lambda: _replaced(runtime, deployment.id, victim.id))
        row = await tree.repo.get(deployment.id)
        assert row.restart_count == 0
        assert row.status == "running"
        ids = {i.id for i in runtime.running_for(deployment.id)}
        assert other.id in ids and victim.id not in ids and len(ids) == 2
        reasons = await tree.reasons(deployment.id)
        assert reasons.count("health_check_instance_restart") == 1
        assert "container_crashed" not in reasons
        event = next(e for e in await tree.events.list(deployment.id) if e.reason == "health_check_instance_restart")
        assert event.level == "warning"
        assert event.message.startswith(f"Health check failed for instance {victim.id} (TCP connection failed: ")
        assert event.message.endswith("), triggering instance restart")


async def _replaced(runtime: SimulatedRuntime, deployment_id: str, old: str) -> bool:
    ids = {i.id for i in runtime.running_for(deployment_id)}
    return old not in ids and len(ids) == 2


async def test_probe_restarts_have_a_budget_that_ends_in_crash_loop_back_off() -> None:
    """Verify an instance that keeps failing its liveness check is restarted at most 5 times, then
    the deployment goes crash_loop_back_off with an explicit event (Ring restarts forever)."""
    runtime = SimulatedRuntime()
    runtime.unhealthy_images.add("sick")
    async with running_tree(runtime) as tree:
        deployment = await tree.apply(
            image="sick",
            health_checks=[check("command", command="true", interval="20ms", threshold=1, on_failure="restart")],
        )
        async with tree.watch(deployment.id) as until:
            await until("crash_loop_back_off", timeout=10)
        await trio.sleep(0.1)
        reasons = await tree.reasons(deployment.id)
        assert reasons.count("health_check_instance_restart") == 5
        assert reasons.count("health_check_restart_budget_exhausted") == 1
        assert runtime.created == 6
        assert runtime.running_for(deployment.id) == []


async def test_stop_deletes_the_deployment() -> None:
    """Verify on_failure stop sets the deployment deleted: every instance removed, the row purged."""
    runtime = SimulatedRuntime()
    async with running_tree(runtime) as tree:
        deployment = await tree.apply(
            replicas=2, health_checks=[check("tcp", port=80, interval="30ms", threshold=2, on_failure="stop")]
        )
        async with tree.bus.subscribe(lambda m: m.deployment_id == deployment.id and m.kind == "event") as events:
            async with tree.watch(deployment.id) as until:
                await until("running")
                runtime.set_healthy(runtime.running_for(deployment.id)[0].id, False)
                await until("purged")
            seen = []
            while events.buffer:
                seen.append(events.buffer.popleft().payload)
        assert runtime.running_for(deployment.id) == []
        assert await tree.repo.get(deployment.id) is None
        stop = [e for e in seen if e["reason"] == "health_check_stop"]
        assert len(stop) == 1 and stop[0]["level"] == "warning"
        assert stop[0]["message"].endswith("), triggering deployment stop")


async def test_creating_runs_only_readiness_checks_and_fires_nothing() -> None:
    """Verify a worker held in creating probes only its readiness checks and never acts on failures."""
    runtime = SimulatedRuntime()
    runtime.unhealthy_images.add("sick")
    async with running_tree(runtime) as tree:
        deployment = await tree.apply(
            image="sick",
            health_checks=[
                check("tcp", port=80, interval="20ms", threshold=1, on_failure="restart", readiness=True),
                check("command", command="true", interval="20ms", threshold=1, on_failure="stop"),
            ],
        )
        await trio.sleep(0.5)
        row = await tree.repo.get(deployment.id)
        assert row.status == "creating"
        rows = await HealthCheckRepo(tree.db).list(deployment.id, limit=1000)
        assert len(rows) >= 10
        assert {r.check_index for r in rows} == {0}, "only the readiness check runs while creating"
        assert {r.status for r in rows} == {"failed"}
        assert runtime.created == 1, "no restart fired while creating"
        reasons = await tree.reasons(deployment.id)
        assert not any(r.startswith("health_check_") for r in reasons)
