"""The API app in-process, without an engine: `Services` over a simulated runtime, and a
test client logged in as the default admin.

    services = await simulated_services(tmp_path)
    async with admin_client(create_app(services)) as (client, token):
        response = await client.get("/deployments", headers={"Authorization": f"Bearer {token}"})

Plain helpers only; fixtures live in conftest.py files.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from quart import Quart
from quart.typing import TestClientProtocol

from ring_actors.bus import EventBus
from ring_actors.config import load_settings
from ring_actors.recorder import Recorder
from ring_actors.runtimes.simulated import SimulatedRuntime
from ring_actors.services import Services
from ring_actors.store.db import Database
from ring_actors.store.deployments import DeploymentRepo
from ring_actors.store.events import EventRepo
from ring_actors.store.users import seed_default_admin
from ring_actors.supervisors.context import ActorContext
from ring_actors.supervisors.root import RootSupervisor

__all__ = ["ADMIN_LOGIN", "SECRET_KEY", "admin_client", "simulated_services"]

ADMIN_LOGIN = {"username": "admin", "password": "changeme"}
"""The default admin that `seed_default_admin` creates."""

SECRET_KEY = b"k" * 32


async def simulated_services(
    config_dir: Path, *, database: Path | str = ":memory:", runtime_name: str = "simulated"
) -> Services:
    """What `ring-actors serve` wires together, over one simulated runtime and a seeded admin.

    Args:
        config_dir: the `RING_CONFIG_DIR` of the settings (usually `tmp_path`).
        database: the SQLite file; in memory unless a test needs it on disk.
        runtime_name: the key the runtime is registered under (e.g. `docker`, for manifests
            that name Ring's runtime; nothing runs unless the supervisor is started).
    """
    db = await Database.open(database)
    await seed_default_admin(db)
    runtimes = {runtime_name: SimulatedRuntime()}
    bus = EventBus()
    events = EventRepo(db)
    recorder = Recorder(events, bus)
    deployments = DeploymentRepo(db)
    ctx = ActorContext(runtimes=runtimes, deployments=deployments, recorder=recorder)
    return Services(
        settings=load_settings(env={"RING_CONFIG_DIR": str(config_dir)}),
        db=db,
        deployments=deployments,
        events=events,
        bus=bus,
        recorder=recorder,
        runtimes=runtimes,
        supervisor=RootSupervisor(ctx),
        secret_key=SECRET_KEY,
        started_at=time.time(),
    )


@asynccontextmanager
async def admin_client(app: Quart) -> AsyncIterator[tuple[TestClientProtocol, str]]:
    """A test client of `app` (started for the block) and the admin's bearer token.

    Add any test-only route before the block: the login is the app's first request.
    """
    async with app.test_app() as test_app:
        client = test_app.test_client()
        login = await client.post("/login", json=ADMIN_LOGIN)
        yield client, (await login.get_json())["token"]
