"""`apply` without a server: manifest loading, CLI defaults, interpolation wiring, configs, client checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ring_actors.cli.apply import (
    ManifestError,
    build_plan,
    normalize_labels,
    parse_manifest,
    prepare_deployment,
)
from ring_actors.cli.main import run
from ring_actors.schemas.interpolation import load_env_file, make_lookup

IMAGE = "127.0.0.1:5000/ring-test/busybox:v1"


def _lookup(file_values: dict[str, str] | None = None, environ: dict[str, str] | None = None):
    return make_lookup(file_values or {}, environ or {})


def test_defaults_filled_like_ring_but_replicas_one() -> None:
    """Verify runtime docker, kind worker, empty namespace, replicas 1 (not Ring's 0), empty config object."""
    item = prepare_deployment("web", {"name": "web", "image": IMAGE}, _lookup())
    assert item.ok
    body = item.body
    assert body["runtime"] == "docker"
    assert body["kind"] == "worker"
    assert body["namespace"] == ""
    assert body["replicas"] == 1
    assert body["config"] == {}
    assert "network" not in body and "autoscale" not in body


def test_volume_defaults_and_forced_read_only() -> None:
    """Verify driver local, permission rw by default, and ro forced on config/secret volumes even when rw is written."""
    raw = {
        "name": "web",
        "namespace": "prod",
        "image": IMAGE,
        "volumes": [
            {"type": "bind", "source": "/srv", "destination": "/data"},
            {"type": "config", "source": "conf", "key": "a", "destination": "/a", "permission": "rw"},
            {"type": "secret", "source": "pw", "destination": "/pw"},
        ],
    }
    volumes = prepare_deployment("web", raw, _lookup()).body["volumes"]
    assert [(v["driver"], v["permission"]) for v in volumes] == [("local", "rw"), ("local", "ro"), ("local", "ro")]


def test_client_checks_use_rings_messages() -> None:
    """Verify blank name/image and an unknown runtime are skipped before sending, with Ring's wording."""
    assert prepare_deployment("a", {"name": " ", "image": IMAGE}, _lookup()).skip == "Deployment name cannot be empty"
    assert prepare_deployment("a", {"name": "a", "image": ""}, _lookup()).skip == "Deployment image cannot be empty"
    skip = prepare_deployment("a", {"name": "a", "image": IMAGE, "runtime": "lxc"}, _lookup()).skip
    assert skip.startswith("Runtime 'lxc' not supported. Supported runtimes: docker, podman, containerd")


def test_shape_errors_become_a_local_problem() -> None:
    """Verify a wrong type (a YAML number as env value) is reported with its property path before sending."""
    item = prepare_deployment("a", {"name": "a", "image": IMAGE, "environment": {"PORT": 8080}}, _lookup())
    assert not item.ok
    assert item.problem["status"] == 422
    assert item.problem["violations"][0]["property_path"] == "environment.PORT"


@pytest.mark.parametrize(
    ("raw", "labels"),
    [
        ({"app": "web", "tier": "front"}, {"app": "web", "tier": "front"}),
        ([{"app": "web"}, {"tier": "front"}], {"app": "web", "tier": "front"}),
        ({"app": "web", "n": 1, "ok": True}, {"app": "web"}),
        ([], {}),
        (None, {}),
        ("app=web", {}),
    ],
)
def test_normalize_labels(raw: object, labels: dict) -> None:
    """Verify Ring's label shapes: mapping, list of single-key mappings, empty; non-string entries dropped."""
    assert normalize_labels(raw) == labels


def test_interpolation_uses_environment_then_env_file(tmp_path: Path) -> None:
    """Verify the process environment wins over --env-file, `${X}` works, and unlisted fields stay literal."""
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nTAG=v1\nNS='from-file'\nbroken line\n")
    values, warnings = load_env_file(env_file)
    assert warnings and "Invalid env line 4" in warnings[0]
    lookup = make_lookup(values, {"NS": "prod"})
    raw = {
        "name": "web",
        "namespace": "$NS",
        "image": "127.0.0.1:5000/ring-test/busybox:${TAG}",
        "environment": {"GREETING": "hi $NS", "DB": {"secretRef": "$NS"}},
        "command": ["echo", "$TAG", "$$HOME"],
        "labels": {"ns": "$NS"},
    }
    body = prepare_deployment("web", raw, lookup).body
    assert body["namespace"] == "prod"
    assert body["image"].endswith(":v1")
    assert body["environment"] == {"GREETING": "hi prod", "DB": {"secretRef": "$NS"}}
    assert body["command"] == ["echo", "v1", "$HOME"]
    assert body["labels"] == {"ns": "$NS"}


def test_plan_keeps_file_order_and_builds_configs(tmp_path: Path) -> None:
    """Verify namespaces, configs (data merged with files) and deployments are planned in file order."""
    (tmp_path / "site.conf").write_text("listen $PORT;")
    doc = parse_manifest(
        """
namespaces:
  one: {name: $NS}
configs:
  site:
    namespace: $NS
    name: site
    data: '{"motd": "hello $NS"}'
    files: {site.conf: site.conf}
deployments:
  zeta: {name: zeta, namespace: $NS, image: img}
  alpha: {name: alpha, namespace: $NS, image: img}
"""
    )
    plan = build_plan(doc, tmp_path, _lookup(environ={"NS": "prod", "PORT": "80"}))
    assert plan.namespaces == ["prod"]
    key, payload = plan.configs[0]
    assert key == "site" and payload["namespace"] == "prod"
    assert json.loads(payload["data"]) == {"motd": "hello prod", "site.conf": "listen $PORT;"}
    assert [d.key for d in plan.deployments] == ["zeta", "alpha"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [", "invalid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("namespaces: {}\n", "no 'deployments' key"),
        ("deployments: [a, b]\n", "'deployments' must be a mapping"),
    ],
)
def test_unusable_manifests_are_rejected(text: str, message: str) -> None:
    """Verify malformed manifests stop apply before anything is sent."""
    with pytest.raises(ManifestError, match=message):
        parse_manifest(text)


def test_config_without_data_or_files_is_fatal(tmp_path: Path) -> None:
    """Verify a bad configs entry aborts the whole plan with Ring's message."""
    doc = parse_manifest("configs:\n  c: {namespace: a, name: c}\ndeployments: {}\n")
    with pytest.raises(ManifestError, match="config 'c': either 'data' or 'files' must be set"):
        build_plan(doc, tmp_path, _lookup())


def test_dry_run_needs_no_server_nor_credentials(tmp_path: Path, monkeypatch, capsys) -> None:
    """Verify --dry-run prints Ring's preview lines, validates locally and exits 1 on the first invalid entry."""
    monkeypatch.setenv("RING_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("RING_TOKEN", raising=False)
    manifest = tmp_path / "ring.yaml"
    manifest.write_text(
        f"""
namespaces:
  ns: {{name: prod}}
deployments:
  web: {{name: web, namespace: prod, image: "{IMAGE}"}}
  bad: {{name: bad, namespace: prod, image: "{IMAGE}", ports: [{{published: 0, target: 80}}]}}
"""
    )
    code = run(["apply", "-f", str(manifest), "--dry-run", "--force"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "DRY RUN - Would create namespace 'prod'" in out
    assert "DRY RUN - Deployment 'web'" in out
    assert "Would POST to: http://127.0.0.1:3030/deployments?force=true" in out
    assert "Force mode enabled" in out
    assert "Summary:\n  Successful: 1\n  Failed: 1" in out
    assert out.rstrip().endswith("To deploy for real, remove the --dry-run flag")
    assert "Unable to apply deployment 'bad': Validation failed (422)" in err
    assert "  * ports[0].published: must be between 1 and 65535 [deployment.ports.published.out_of_range]" in err


def test_manifest_from_stdin(tmp_path: Path, monkeypatch, capsys) -> None:
    """Verify `-f -` reads the manifest from standard input."""
    import io

    monkeypatch.setenv("RING_CONFIG_DIR", str(tmp_path))
    monkeypatch.setattr(
        "sys.stdin", io.StringIO(f"deployments:\n  w: {{name: w, namespace: prod, image: '{IMAGE}'}}\n")
    )
    assert run(["apply", "-f", "-", "--dry-run"]) == 0
    assert "DRY RUN - Deployment 'w'" in capsys.readouterr().out


def test_missing_manifest_exits_1(tmp_path: Path, monkeypatch, capsys) -> None:
    """Verify an unreadable manifest is a general error with the file name."""
    monkeypatch.setenv("RING_CONFIG_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert run(["apply"]) == 1
    assert "error: cannot read manifest 'ring.yaml'" in capsys.readouterr().err


def test_real_apply_without_credentials_exits_2(tmp_path: Path, monkeypatch, capsys) -> None:
    """Verify apply refuses to start without RING_TOKEN or a login, before any request."""
    monkeypatch.setenv("RING_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("RING_TOKEN", raising=False)
    manifest = tmp_path / "ring.yaml"
    manifest.write_text(f"deployments:\n  w: {{name: w, namespace: prod, image: '{IMAGE}'}}\n")
    assert run(["apply", "-f", str(manifest)]) == 2
    assert "not logged in to context 'default'" in capsys.readouterr().err
