"""Deployments as JSON: fragments equal `render_deployment`, and are encoded again exactly when needed."""

from __future__ import annotations

import msgspec
import pytest
import trio

from ring_actors.http import render
from ring_actors.http.app import create_app
from ring_actors.http.render import (
    DeploymentFragments,
    encode_deployment,
    render_deployment,
)
from ring_actors.schemas.manifest import Deployment, Instance
from ring_actors.store.db import Database
from ring_actors.store.deployments import DeploymentRepo
from tests.support.inprocess import admin_client, simulated_services

TIMEOUT = 30
CHECK = {"type": "http", "url": "http://localhost/", "interval": "1s", "timeout": "1s", "on_failure": "restart"}


def _deployment(name: str, **fields: object) -> Deployment:
    base = {"name": name, "namespace": "ns", "runtime": "simulated", "image": "img", "id": f"id-{name}",
            "created_at": "2026-01-01T00:00:00.000000Z"}
    return msgspec.convert({**base, **fields}, Deployment)


SHAPES = [
    _deployment("plain"),
    _deployment("secret", config={"password": "hunter2", "username": "me", "server": "r.example"}),
    _deployment("empty-password", config={"password": ""}),
    _deployment("checked", health_checks=[CHECK], autoscale={"min": 1, "max": 3, "target_cpu": 0.5}),
    # Keys that look like the fields the encoding splits around.
    _deployment("tricky", labels={"instances": "[]", "health_checks": "x"}, environment={"instances": "\"[]\""},
                command=["sh", "-c", '"instances":[]'], status="running", restart_count=2, parent_id="id-p",
                updated_at="2026-01-01T00:00:01.000000Z", image_digest="sha256:0"),
    _deployment("unicode-é", labels={"ü": "ß"}),
]
LIVE = [Instance(id="i1", address="10.0.0.2", name="web-1"), Instance(id="i2", name="web-2")]


@pytest.mark.parametrize("deployment", SHAPES, ids=lambda d: d.name)
@pytest.mark.parametrize("instances", [[], LIVE], ids=["none", "live"])
@pytest.mark.parametrize("addresses", [True, False])
def test_encoded_deployment_is_render_deployment(deployment: Deployment, instances: list[Instance],
                                                 addresses: bool) -> None:
    """Verify the bytes equal encoding `render_deployment`'s dict (key order included)."""
    expected = msgspec.json.encode(render_deployment(deployment, instances, addresses=addresses))
    assert encode_deployment(deployment, instances, addresses=addresses) == expected


def test_render_masks_the_password_and_omits_empty_checks() -> None:
    """Verify the shape rules: password masked, empty health_checks omitted, addresses only on request."""
    [plain, secret, empty_password, checked, *_] = SHAPES
    body = msgspec.json.decode(encode_deployment(secret, LIVE, addresses=False))
    assert body["config"]["password"] == "********"
    assert "health_checks" not in body
    assert body["instances"] == [{"id": "i1", "name": "web-1"}, {"id": "i2", "name": "web-2"}]
    assert msgspec.json.decode(encode_deployment(plain, LIVE))["instances"][0] == {
        "id": "i1", "address": "10.0.0.2", "name": "web-1"}
    assert msgspec.json.decode(encode_deployment(empty_password, []))["config"]["password"] == ""
    assert len(msgspec.json.decode(encode_deployment(checked, []))["health_checks"]) == 1
    assert secret.config.password == "hunter2"  # the row itself is untouched


def test_desired_replicas_is_the_effective_target_with_autoscale() -> None:
    """Verify `desired_replicas` shows clamp(desired ?? replicas, min, max) whenever autoscale is set, else nothing."""
    scaled = {"min": 1, "max": 3, "target_cpu": 50}
    cases = [
        (_deployment("clamped", replicas=5, autoscale=scaled), 3),
        (_deployment("declared", replicas=2, autoscale=scaled), 2),
        (_deployment("decided", replicas=1, desired_replicas=3, autoscale=scaled), 3),
    ]
    for deployment, expected in cases:
        assert msgspec.json.decode(encode_deployment(deployment, []))["desired_replicas"] == expected, deployment.name
    assert "desired_replicas" not in msgspec.json.decode(encode_deployment(_deployment("fixed", replicas=5), []))
    assert cases[0][0].desired_replicas is msgspec.UNSET  # the row itself is untouched


class FakeActor:
    """What the root supervisor holds per deployment: a view version and the live instances."""

    def __init__(self, instances: list[Instance]) -> None:
        self.instances = instances
        self.view_version = 1
        self.asked = 0

    def live_instances(self) -> list[Instance]:
        self.asked += 1
        return list(self.instances)


class FakeSupervisor:
    def __init__(self) -> None:
        self.actors: dict[str, FakeActor] = {}

    def live_view(self, deployment_id: str) -> tuple[object | None, int]:
        actor = self.actors.get(deployment_id)
        return (actor, actor.view_version) if actor else (None, 0)

    def live_instances(self, deployment_id: str) -> list[Instance]:
        actor = self.actors.get(deployment_id)
        return actor.live_instances() if actor else []


async def test_fragments_follow_row_writes_and_live_views() -> None:
    """Verify a fragment is reused until its row is written or its live view changes, and never stale."""
    with trio.fail_after(TIMEOUT):
        repo = DeploymentRepo(await Database.open(":memory:"))
        web = _deployment("web")
        await repo.insert(web)
        live = FakeSupervisor()
        actor = live.actors[web.id] = FakeActor(LIVE[:1])
        fragments = DeploymentFragments()

        async def render() -> dict:
            [snapshot] = await repo.snapshots()
            body = fragments.fragment(snapshot, live, addresses=True)
            assert body == encode_deployment(snapshot.deployment(), live.live_instances(web.id))
            return msgspec.json.decode(body)

        assert [i["id"] for i in (await render())["instances"]] == ["i1"]
        asked = actor.asked
        await render()
        assert actor.asked == asked + 1  # only the check inside render(): the fragment was reused

        actor.instances = LIVE  # changed but not announced: the cache may not know yet
        actor.view_version += 1  # announced
        assert [i["id"] for i in (await render())["instances"]] == ["i1", "i2"]

        await repo.set_status(web.id, "running")
        assert (await render())["status"] == "running"

        restarted = live.actors[web.id] = FakeActor([])  # a new actor whose version starts over
        restarted.view_version = actor.view_version
        assert (await render())["instances"] == []

        del live.actors[web.id]
        assert (await render())["instances"] == []


async def test_list_joins_fragments_in_order_and_prunes_purged_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify the list body is the JSON array of the rows in order, and purged rows leave the cache."""
    monkeypatch.setattr(render, "PRUNE_SLACK", 1)
    with trio.fail_after(TIMEOUT):
        repo = DeploymentRepo(await Database.open(":memory:"))
        rows = [_deployment(f"web-{i}", created_at=f"2026-01-01T00:00:{i:02d}.000000Z") for i in range(3)]
        for row in rows:
            await repo.insert(row)
        live = FakeSupervisor()
        live.actors[rows[1].id] = FakeActor(LIVE)
        fragments = DeploymentFragments()
        body = fragments.render_list(await repo.snapshots(), live, addresses=False)
        assert msgspec.json.decode(body) == [
            render_deployment(row, live.live_instances(row.id), addresses=False) for row in rows]
        assert fragments.render_list([], live, addresses=False) == b"[]"
        await repo.purge(rows[0].id)
        assert len(fragments) == 3 and fragments.should_prune()
        fragments.prune({s.id for s in await repo.snapshots()})
        assert len(fragments) == 2 and not fragments.should_prune()
        live.actors.clear()
        assert [d["id"] for d in msgspec.json.decode(
            fragments.render_list(await repo.snapshots(), live, addresses=False))] == [rows[1].id, rows[2].id]


async def test_api_list_and_get_show_what_render_deployment_shows(tmp_path) -> None:
    """Verify GET /deployments (with filters, with and without addresses) and GET /deployments/{id} over HTTP."""
    with trio.fail_after(TIMEOUT):
        services = await simulated_services(tmp_path)
        repo = services.deployments
        root = services.supervisor
        rows = [
            _deployment("a", config={"password": "p"}, labels={"tier": "web"}),
            _deployment("b", namespace="other", health_checks=[CHECK], created_at="2026-01-01T00:00:01.000000Z"),
        ]
        for row in rows:
            await repo.insert(row)
        actor = FakeActor(LIVE)
        root.actors[rows[0].id] = actor  # type: ignore[assignment]
        async with admin_client(create_app(services)) as (client, token):
            headers = {"Authorization": f"Bearer {token}"}

            async def get(path: str) -> object:
                response = await client.get(path, headers=headers)
                assert response.status_code == 200
                assert response.headers["content-type"] == "application/json"
                return msgspec.json.decode(await response.get_data())

            def shown(row: Deployment, addresses: bool) -> dict:
                return render_deployment(row, root.live_instances(row.id), addresses=addresses)

            assert await get("/deployments") == [shown(row, False) for row in rows]
            assert await get("/deployments?instances=true") == [shown(row, True) for row in rows]
            assert await get("/deployments?namespace=other") == [shown(rows[1], False)]
            assert await get("/deployments?label=tier=web&instances=true") == [shown(rows[0], True)]
            assert await get("/deployments?status=running") == []
            assert await get(f"/deployments/{rows[0].id}") == shown(rows[0], True)

            actor.instances = LIVE[1:]
            actor.view_version += 1
            await repo.set_status(rows[1].id, "running")
            stored = await repo.list()
            assert stored[1].status == "running"
            assert await get("/deployments?instances=true") == [shown(row, True) for row in stored]
            assert (await get("/deployments"))[0]["instances"] == [{"id": "i2", "name": "web-2"}]
