"""A bash script written for Ring's CLI (`ring ...`) runs unchanged with `ring` = `ring-actors`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.engines import IMAGE_V1
from tests.support.server import RingServer

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_cli_user_script")]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("ring_user_script.sh")


def test_ring_user_script_succeeds(server: RingServer, api: httpx.Client) -> None:
    """Verify login, apply, waiting with `list -o json | jq`, logs, events, inspect and delete work from bash."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RING_")}
    env.update(
        RING_CONFIG_DIR=str(server.dir),
        NS="user-script",
        IMAGE=IMAGE_V1,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    console_script = Path(sys.executable).parent / "ring-actors"
    if console_script.exists():
        env["PATH"] = f"{console_script.parent}{os.pathsep}{env.get('PATH', '')}"
    else:
        env["RING_ACTORS_CMD"] = f"{sys.executable} -m ring_actors.cli.main"
    try:
        result = subprocess.run(
            ["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=170, stdin=subprocess.DEVNULL
        )
    finally:
        for deployment in api.get("/deployments", params={"namespace": "user-script"}).json():
            server.track(deployment["id"])  # cleaned up (and checked) by the fixture if the script stopped early
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.stdout.rstrip().endswith("OK")
    assert "Deployment 'web' created" in result.stdout
    assert "\x1b[" not in result.stdout  # piped: no colour
