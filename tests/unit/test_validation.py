"""Tests for ring_actors.schemas.validation (manifest.md §14, api.md §10, §12, §13)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from ring_actors.schemas.manifest import Deployment, DeploymentSpec, Volume
from ring_actors.schemas.validation import (
    normalize,
    parse_rfc3339,
    validate_deployment,
    validate_namespace_name,
    validate_token_request,
    validate_user,
)

BASE: dict[str, Any] = {"name": "web", "namespace": "prod", "runtime": "docker", "image": "nginx:1.25"}
CHECK: dict[str, Any] = {"type": "tcp", "port": 80, "interval": "10s", "timeout": "2s", "on_failure": "restart"}
HOST = {"network": {"mode": "host"}}
CH = {"runtime": "cloud-hypervisor", "image": "/var/lib/vm/disk.raw"}
INLINE = {"server": "registry.example.com", "username": "u", "password": "p"}
SCOPES = ["deployments:read", "deployments:write", "admin"]


def make(**fields: Any) -> DeploymentSpec:
    """Build a spec the way the API does: from plain JSON-like data."""
    return msgspec.convert({**BASE, **fields}, DeploymentSpec)


def found(spec: DeploymentSpec, **kwargs: Any) -> set[tuple[str, str]]:
    return {(v.property_path, v.code) for v in validate_deployment(spec, **kwargs)}


def vol(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "destination": "/data", **fields}


def port(published: int = 8080, target: int = 80, **fields: Any) -> dict[str, Any]:
    return {"published": published, "target": target, **fields}


def check(**fields: Any) -> dict[str, Any]:
    return {**CHECK, **fields}


# One row per rule: (fields, expected {(property_path, code)}): exactly these, no noise.
CATALOGUE: list[tuple[str, dict[str, Any], set[tuple[str, str]]]] = [
    # identity (ring-actors additions)
    ("name blank", {"name": "  "}, {("name", "deployment.name.required")}),
    ("name empty", {"name": ""}, {("name", "deployment.name.required")}),
    ("name uppercase", {"name": "Web"}, {("name", "deployment.name.format")}),
    ("name underscore", {"name": "my_app"}, {("name", "deployment.name.format")}),
    ("name trailing dash", {"name": "web-"}, {("name", "deployment.name.format")}),
    ("name too long", {"name": "a" * 64}, {("name", "deployment.name.length")}),
    ("namespace empty", {"namespace": ""},
     {("namespace", "deployment.namespace.length"), ("namespace", "deployment.namespace.format")}),
    ("namespace one char", {"namespace": "a"}, {("namespace", "deployment.namespace.length")}),
    ("namespace format", {"namespace": "Prod"}, {("namespace", "deployment.namespace.format")}),
    ("namespace too long", {"namespace": "n" * 64}, {("namespace", "deployment.namespace.length")}),
    ("image blank", {"image": " "}, {("image", "deployment.image.required")}),
    ("image blank on ch", {**CH, "image": ""}, {("image", "deployment.image.required")}),
    # 1-3 runtime
    ("runtime unknown", {"runtime": "kvm"}, {("runtime", "deployment.runtime.unsupported")}),
    ("runtime case", {"runtime": "Docker"}, {("runtime", "deployment.runtime.unsupported")}),
    ("ch command", {**CH, "command": ["/bin/app"]}, {("command", "deployment.command.cloud_hypervisor_unsupported")}),
    ("ch image ref", {**CH, "image": "nginx:latest"},
     {("image", "deployment.image.cloud_hypervisor_requires_absolute_path")}),
    ("fc image ref", {"runtime": "firecracker", "image": "rootfs.ext4"},
     {("image", "deployment.image.firecracker_requires_absolute_path")}),
    # 4-7 host network
    ("host on containerd", {**HOST, "runtime": "containerd"},
     {("network.mode", "deployment.network.host_runtime_unsupported")}),
    ("host on ch", {**HOST, **CH}, {("network.mode", "deployment.network.host_runtime_unsupported")}),
    ("host + ports", {**HOST, "ports": [port()]}, {("ports", "deployment.ports.host_network_conflict")}),
    ("host + replicas", {**HOST, "replicas": 2}, {("replicas", "deployment.replicas.host_network_conflict")}),
    ("host + autoscale", {**HOST, "autoscale": {"min": 1, "max": 3, "target_cpu": 60}},
     {("autoscale.max", "deployment.autoscale.host_network_conflict")}),
    # 8-11 ports
    ("published 0", {"ports": [port(published=0)]},
     {("ports[0].published", "deployment.ports.published.out_of_range")}),
    ("target 0", {"ports": [port(target=0)]}, {("ports[0].target", "deployment.ports.target.out_of_range")}),
    ("host_ip word", {"ports": [port(host_ip="localhost")]},
     {("ports[0].host_ip", "deployment.ports.host_ip.invalid")}),
    ("host_ip empty", {"ports": [port(host_ip="")]}, {("ports[0].host_ip", "deployment.ports.host_ip.invalid")}),
    ("host_ip scoped", {"ports": [port(host_ip="fe80::1%eth0")]},
     {("ports[0].host_ip", "deployment.ports.host_ip.invalid")}),
    ("host_ip 256", {"ports": [port(host_ip="10.0.0.256")]},
     {("ports[0].host_ip", "deployment.ports.host_ip.invalid")}),
    ("duplicate", {"ports": [port(), port(target=81)]},
     {("ports[1].published", "deployment.ports.published.duplicate")}),
    # 12 environment
    ("env dash", {"environment": {"bad-key": "v"}}, {("environment.bad-key", "deployment.environment.key.invalid")}),
    ("env digit", {"environment": {"1ABC": "v"}}, {("environment.1ABC", "deployment.environment.key.invalid")}),
    ("env newline", {"environment": {"A\n": "v"}}, {("environment.A\n", "deployment.environment.key.invalid")}),
    ("env secretRef key", {"environment": {"a.b": {"secretRef": "s"}}},
     {("environment.a.b", "deployment.environment.key.invalid")}),
    # 13 resources
    ("limits cpu", {"resources": {"limits": {"cpu": "lots"}}},
     {("resources.limits.cpu", "deployment.resources.limits.cpu.invalid")}),
    ("limits memory", {"resources": {"limits": {"memory": "512MB"}}},
     {("resources.limits.memory", "deployment.resources.limits.memory.invalid")}),
    ("requests cpu", {"resources": {"requests": {"cpu": "-1"}}},
     {("resources.requests.cpu", "deployment.resources.requests.cpu.invalid")}),
    ("requests memory", {"resources": {"requests": {"memory": "1.5"}}},
     {("resources.requests.memory", "deployment.resources.requests.memory.invalid")}),
    # 14-15 autoscale
    ("autoscale min 0", {"autoscale": {"min": 0, "max": 2, "target_cpu": 50}},
     {("autoscale", "deployment.autoscale.invalid")}),
    ("autoscale max < min", {"autoscale": {"min": 3, "max": 2, "target_cpu": 50}},
     {("autoscale", "deployment.autoscale.invalid")}),
    ("autoscale target 0", {"autoscale": {"min": 1, "max": 2, "target_cpu": 0}},
     {("autoscale", "deployment.autoscale.invalid")}),
    ("autoscale target 100", {"autoscale": {"min": 1, "max": 2, "target_cpu": 100}},
     {("autoscale", "deployment.autoscale.invalid")}),
    ("autoscale target nan", {"autoscale": {"min": 1, "max": 2, "target_cpu": float("nan")}},
     {("autoscale", "deployment.autoscale.invalid")}),
    ("autoscale containerd", {"runtime": "containerd", "autoscale": {"min": 1, "max": 2, "target_cpu": 50}},
     {("autoscale", "deployment.autoscale.runtime_unsupported")}),
    # 16-18 config
    ("pull policy case", {"config": {"image_pull_policy": "always"}},
     {("config.image_pull_policy", "deployment.config.image_pull_policy.unsupported")}),
    ("use_host_auth + inline", {"config": {**INLINE, "use_host_auth": True}},
     {("config.use_host_auth", "deployment.config.use_host_auth.conflict")}),
    ("pull secret + inline", {"config": {**INLINE, "image_pull_secret": "regcred"}},
     {("config.image_pull_secret", "deployment.config.image_pull_secret.conflict")}),
    ("pull secret + host auth", {"config": {"use_host_auth": True, "image_pull_secret": "regcred"}},
     {("config.image_pull_secret", "deployment.config.image_pull_secret.conflict")}),
    ("partial creds", {"config": {"server": "registry.example.com"}},
     {("config.username", "deployment.config.credentials.incomplete"),
      ("config.password", "deployment.config.credentials.incomplete")}),
    ("partial creds + host auth", {"config": {"username": "u", "password": "p", "use_host_auth": True}},
     {("config.use_host_auth", "deployment.config.use_host_auth.conflict"),
      ("config.server", "deployment.config.credentials.incomplete")}),
    # 19-23 cross-field
    ("ports + replicas", {"ports": [port()], "replicas": 2},
     {("ports", "deployment.ports.replicas_conflict"), ("replicas", "deployment.replicas.ports_conflict")}),
    ("shared rw volume", {"replicas": 2, "volumes": [vol("volume", source="data")]},
     {("volumes[0].permission", "deployment.volumes.shared_rw_replicas")}),
    ("job replicas", {"kind": "job", "replicas": 3}, {("replicas", "deployment.replicas.job_must_be_one")}),
    ("job autoscale", {"kind": "job", "autoscale": {"min": 1, "max": 1, "target_cpu": 50}},
     {("autoscale", "deployment.autoscale.job_unsupported")}),
    ("job readiness", {"kind": "job", "health_checks": [check(readiness=True)]},
     {("health_checks", "deployment.health_checks.job_readiness_unsupported")}),
    # 24 volumes (Ring's codes verbatim)
    ("destination empty", {"volumes": [vol("bind", source="/srv", destination="")]},
     {("volumes[0].destination", "destination cannot be empty")}),
    ("destination missing", {"volumes": [{"type": "bind", "source": "/srv"}]},
     {("volumes[0].destination", "destination cannot be empty")}),
    ("bind no source", {"volumes": [vol("bind")]}, {("volumes[0].source", "source is required for bind volumes")}),
    ("bind empty source", {"volumes": [vol("bind", source="")]}, {("volumes[0].source", "source cannot be empty")}),
    ("named no source", {"volumes": [vol("volume")]}, {("volumes[0].source", "source is required for named volumes")}),
    ("named empty source", {"volumes": [vol("volume", source="")]}, {("volumes[0].source", "source cannot be empty")}),
    ("secret no source", {"volumes": [vol("secret")]},
     {("volumes[0].source", "source is required for secret volumes")}),
    ("secret empty source", {"volumes": [vol("secret", source="")]}, {("volumes[0].source", "source cannot be empty")}),
    ("config missing both", {"volumes": [vol("config")]},
     {("volumes[0].source", "required"), ("volumes[0].key", "required")}),
    ("config empty both", {"volumes": [vol("config", source="", key="")]},
     {("volumes[0].source", "empty"), ("volumes[0].key", "empty")}),
    ("config rw", {"volumes": [vol("config", source="c", key="k", permission="rw")]},
     {("volumes[0].permission", "invalid_permission")}),
    ("secret rw", {"volumes": [vol("secret", source="s", permission="rw")]},
     {("volumes[0].permission", "invalid_permission")}),
    ("secret key", {"volumes": [vol("secret", source="s", key="k")]}, {("volumes[0].key", "unexpected_field")}),
    ("second volume", {"volumes": [vol("bind", source="/a"), vol("bind", source="")]},
     {("volumes[1].source", "source cannot be empty")}),
    # health checks (ring-actors additions)
    ("interval 1m", {"health_checks": [check(interval="1m")]},
     {("health_checks[0].interval", "deployment.health_checks.interval.invalid")}),
    ("timeout 1.5s", {"health_checks": [check(timeout="1.5s")]},
     {("health_checks[0].timeout", "deployment.health_checks.timeout.invalid")}),
    ("min_healthy_time", {"health_checks": [check(readiness=True, min_healthy_time="1h")]},
     {("health_checks[0].min_healthy_time", "deployment.health_checks.min_healthy_time.invalid")}),
    ("start_period", {"health_checks": [check(start_period="soon")]},
     {("health_checks[0].start_period", "deployment.health_checks.start_period.invalid")}),
    ("http url scheme", {"health_checks": [CHECK, {**check(type="http", url="ftp://x/health")}]},
     {("health_checks[1].url", "deployment.health_checks.url.invalid")}),
    ("http url no host", {"health_checks": [{**check(type="http", url="http:///health")}]},
     {("health_checks[0].url", "deployment.health_checks.url.invalid")}),
    ("http url relative", {"health_checks": [{**check(type="http", url="/health")}]},
     {("health_checks[0].url", "deployment.health_checks.url.invalid")}),
    ("tcp port 0", {"health_checks": [check(port=0)]},
     {("health_checks[0].port", "deployment.health_checks.port.out_of_range")}),
    ("command empty", {"health_checks": [check(type="command", command=" ")]},
     {("health_checks[0].command", "deployment.health_checks.command.empty")}),
]


@pytest.mark.parametrize(("fields", "expected"), [c[1:] for c in CATALOGUE], ids=[c[0] for c in CATALOGUE])
def test_each_rule_reports_its_code_at_its_path(fields: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    """Verify every catalogue rule yields exactly its code(s) at its property path."""
    assert found(make(**fields)) == expected


def test_runtime_not_enabled() -> None:
    """Verify a known but disabled runtime is rejected only when the server's set is given."""
    spec = make(runtime="podman")
    assert found(spec, enabled_runtimes={"docker"}) == {("runtime", "deployment.runtime.not_enabled")}
    assert found(spec, enabled_runtimes={"docker", "podman"}) == set()
    assert found(spec) == set()
    assert found(spec, enabled_runtimes=set()) == {("runtime", "deployment.runtime.not_enabled")}


def test_unknown_runtime_is_unsupported_not_disabled() -> None:
    """Verify an unknown runtime reports `unsupported` only, even with an enabled set."""
    assert found(make(runtime="lxc"), enabled_runtimes={"docker"}) == {("runtime", "deployment.runtime.unsupported")}


def test_all_violations_are_reported_together() -> None:
    """Verify a manifest breaking many rules gets every violation in one list."""
    spec = make(
        name="Bad_Name",
        runtime="cloud-hypervisor",
        image="ubuntu:24.04",
        command=["sleep"],
        replicas=2,
        ports=[port(published=0), port(host_ip="nope")],
        environment={"bad-key": "x", "GOOD": "y"},
        resources={"limits": {"cpu": "x"}, "requests": {"memory": "y"}},
        config={"image_pull_policy": "never"},
        volumes=[vol("config", source="c")],
        health_checks=[check(interval="5m")],
    )
    assert found(spec) == {
        ("name", "deployment.name.format"),
        ("command", "deployment.command.cloud_hypervisor_unsupported"),
        ("image", "deployment.image.cloud_hypervisor_requires_absolute_path"),
        ("ports[0].published", "deployment.ports.published.out_of_range"),
        ("ports[1].host_ip", "deployment.ports.host_ip.invalid"),
        ("environment.bad-key", "deployment.environment.key.invalid"),
        ("resources.limits.cpu", "deployment.resources.limits.cpu.invalid"),
        ("resources.requests.memory", "deployment.resources.requests.memory.invalid"),
        ("config.image_pull_policy", "deployment.config.image_pull_policy.unsupported"),
        ("ports", "deployment.ports.replicas_conflict"),
        ("replicas", "deployment.replicas.ports_conflict"),
        ("volumes[0].key", "required"),
        ("health_checks[0].interval", "deployment.health_checks.interval.invalid"),
    }


def test_host_mode_rules_fire_together() -> None:
    """Verify host mode on the wrong runtime with ports and replicas reports each rule."""
    spec = make(**HOST, runtime="firecracker", image="/vm/rootfs.ext4", ports=[port()], replicas=2)
    assert found(spec) == {
        ("network.mode", "deployment.network.host_runtime_unsupported"),
        ("ports", "deployment.ports.host_network_conflict"),
        ("replicas", "deployment.replicas.host_network_conflict"),
        ("ports", "deployment.ports.replicas_conflict"),
        ("replicas", "deployment.replicas.ports_conflict"),
    }


def test_messages_are_specific_and_detail_ready() -> None:
    """Verify messages name the offending value and the expectation."""
    violations = validate_deployment(make(runtime="kvm", environment={"bad-key": "v"}, ports=[port(published=0)]))
    messages = {v.code: v.message for v in violations}
    assert "got 'kvm'" in messages["deployment.runtime.unsupported"]
    assert "docker, podman, containerd, cloud-hypervisor, firecracker" in messages["deployment.runtime.unsupported"]
    assert messages["deployment.environment.key.invalid"] == (
        "'bad-key' is not a valid env var name (must match [A-Za-z_][A-Za-z0-9_]*)"
    )
    assert messages["deployment.ports.published.out_of_range"] == "must be between 1 and 65535"
    assert all("\n" not in v.message for v in violations)


# ---- autoscale: first failing rule only


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"kind": "job", "runtime": "containerd", "autoscale": {"min": 0, "max": 5, "target_cpu": 50}},
         "deployment.autoscale.invalid"),
        ({"kind": "job", "runtime": "containerd", "autoscale": {"min": 1, "max": 5, "target_cpu": 50}},
         "deployment.autoscale.job_unsupported"),
        ({**HOST, "runtime": "containerd", "autoscale": {"min": 1, "max": 5, "target_cpu": 50}},
         "deployment.autoscale.host_network_conflict"),
    ],
)
def test_autoscale_reports_only_the_first_failing_rule(fields: dict[str, Any], code: str) -> None:
    """Verify the autoscale block yields one violation, the first in Ring's order."""
    codes = [v.code for v in validate_deployment(make(**fields)) if v.code.startswith("deployment.autoscale.")]
    assert codes == [code]


def test_autoscale_min_checked_before_max() -> None:
    """Verify the invalid-bounds message explains the first broken bound."""
    (violation,) = validate_deployment(make(autoscale={"min": 0, "max": 0, "target_cpu": 500}))
    assert "autoscale.min must be at least 1" in violation.message


def test_autoscale_host_with_max_one_is_fine() -> None:
    """Verify host mode accepts autoscale whose max is 1."""
    assert found(make(**HOST, autoscale={"min": 1, "max": 1, "target_cpu": 50})) == set()


# ---- ports


@pytest.mark.parametrize(
    ("first", "second", "duplicate"),
    [
        ("0.0.0.0", "10.0.0.1", True),
        ("10.0.0.1", "0.0.0.0", True),
        ("::", "10.0.0.1", True),
        ("0.0.0.0", "::", True),
        ("10.0.0.1", "10.0.0.1", True),
        ("::1", "0:0::1", True),
        ("10.0.0.1", "10.0.0.2", False),
        ("127.0.0.1", "::1", False),
    ],
)
def test_duplicate_ports_are_keyed_on_host_ip_with_wildcards(first: str, second: str, duplicate: bool) -> None:
    """Verify (host_ip, published, protocol) keys duplicates and wildcards overlap every address."""
    spec = make(ports=[port(host_ip=first), port(host_ip=second, target=81)])
    expected = {("ports[1].published", "deployment.ports.published.duplicate")} if duplicate else set()
    assert found(spec) == expected


def test_same_port_on_tcp_and_udp_is_not_a_duplicate() -> None:
    """Verify tcp and udp are separate port namespaces."""
    assert found(make(ports=[port(protocol="tcp"), port(protocol="udp")])) == set()


def test_duplicate_reported_once_per_later_entry_and_names_the_first() -> None:
    """Verify each later clash is reported once, pointing at the earlier entry."""
    violations = validate_deployment(make(ports=[port(), port(target=1), port(target=2)]))
    assert [v.property_path for v in violations] == ["ports[1].published", "ports[2].published"]
    assert "ports[0]" in violations[0].message


def test_port_zero_and_invalid_ip_are_not_duplicates() -> None:
    """Verify entries already rejected do not also count as duplicates."""
    spec = make(ports=[port(published=0), port(published=0, target=1), port(host_ip="x"), port(host_ip="y")])
    codes = [v.code for v in validate_deployment(spec)]
    assert "deployment.ports.published.duplicate" not in codes


# ---- credentials


def test_complete_inline_credentials_are_valid() -> None:
    """Verify all three inline fields, host auth alone or a pull secret alone pass."""
    assert found(make(config=INLINE)) == set()
    assert found(make(config={"use_host_auth": True})) == set()
    assert found(make(config={"image_pull_secret": "regcred", "use_host_auth": False})) == set()


def test_blank_credential_fields_count_as_not_given() -> None:
    """Verify blank strings neither make credentials partial nor conflict."""
    assert found(make(config={"server": "", "username": " ", "use_host_auth": True})) == set()


# ---- valid manifests


VALID: list[tuple[str, dict[str, Any]]] = [
    ("minimal", {}),
    ("full docker worker", {
        "replicas": 1,
        "command": ["nginx", "-g", "daemon off;"],
        "environment": {"LOG_LEVEL": "info", "_X1": "y", "DB_PASSWORD": {"secretRef": "db-password"}},
        "volumes": [
            vol("bind", source="/srv/data"),
            vol("volume", source="cache", driver="nfs", destination="/cache"),
            vol("config", source="nginx-conf", key="site.conf", destination="/etc/nginx/conf.d/site.conf"),
            vol("secret", source="tls", destination="/etc/tls/key.pem", permission="ro", key=""),
        ],
        "ports": [port(8080, 80), port(8080, 80, protocol="udp"), port(8443, 443, host_ip="127.0.0.1")],
        "labels": {"app": "web"},
        "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "0.1", "memory": "128Mi"}},
        "health_checks": [
            check(readiness=True, min_healthy_time="10s", start_period="500ms"),
            {**check(type="http", url="https://localhost:8443/health")},
            {**check(type="command", command="pg_isready -U postgres")},
        ],
        "config": {"image_pull_policy": "IfNotPresent", **INLINE, "user": {"id": 1000, "group": 1000}},
        "network": {"mode": "bridge"},
    }),
    ("autoscaled", {"replicas": 2, "autoscale": {"min": 2, "max": 6, "target_cpu": 70.0}}),
    ("ro shared volume", {"replicas": 3, "volumes": [vol("volume", source="assets", permission="ro")]}),
    ("job", {"kind": "job", "replicas": 1, "health_checks": [check()]}),
    ("host network", {**HOST, "runtime": "podman"}),
    ("cloud-hypervisor", {**CH, "environment": {"A": "b"}, "autoscale": {"min": 1, "max": 3, "target_cpu": 50}}),
    ("firecracker", {"runtime": "firecracker", "image": "/vm/rootfs.ext4", "command": ["ignored"]}),
    ("containerd", {"runtime": "containerd", "image": "docker.io/library/redis:7"}),
    ("two-char namespace and 63-char name", {"namespace": "ab", "name": "a" * 63}),
    ("one-char name", {"name": "a"}),
    ("ipv6 host_ip", {"ports": [port(host_ip="::1")]}),
]


@pytest.mark.parametrize("fields", [v[1] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_manifests_have_no_violations(fields: dict[str, Any]) -> None:
    """Verify well-formed manifests for every runtime and kind pass."""
    assert validate_deployment(make(**fields), enabled_runtimes=None) == []


# ---- normalize


def test_normalize_fills_volume_permissions() -> None:
    """Verify omitted permissions become ro for config/secret and rw otherwise."""
    spec = make(volumes=[vol("bind", source="/a"), vol("volume", source="v"), vol("config", source="c", key="k"),
                         vol("secret", source="s"), vol("bind", source="/b", permission="ro")])
    assert [v.permission for v in normalize(spec).volumes] == ["rw", "rw", "ro", "ro", "ro"]
    assert [v.permission for v in spec.volumes] == [None, None, None, None, "ro"]


def test_normalize_force_read_only_rewrites_config_and_secret() -> None:
    """Verify the CLI mode forces ro on config/secret even when rw was written."""
    spec = make(volumes=[vol("config", source="c", key="k", permission="rw"),
                         vol("bind", source="/a", permission="rw")])
    assert [v.permission for v in normalize(spec, force_read_only=True).volumes] == ["ro", "rw"]
    assert [v.permission for v in normalize(spec).volumes] == ["rw", "rw"]


def test_normalize_keeps_the_struct_type() -> None:
    """Verify a stored Deployment stays a Deployment."""
    dep = Deployment(**{**BASE, "volumes": [Volume(type="secret", source="s", destination="/s")]},
                     id="x", created_at="now")
    out = normalize(dep)
    assert isinstance(out, Deployment)
    assert out.id == "x" and out.volumes[0].permission == "ro"


def test_validation_matches_before_and_after_normalize() -> None:
    """Verify validation treats an omitted permission as its default."""
    spec = make(replicas=2, volumes=[vol("volume", source="v"), vol("config", source="c", key="k")])
    assert found(spec) == found(normalize(spec)) == {("volumes[0].permission", "deployment.volumes.shared_rw_replicas")}


# ---- namespaces, users, tokens


@pytest.mark.parametrize(
    ("name", "codes"),
    [
        ("staging", []),
        ("ab", []),
        ("a1-b2", []),
        ("9" * 63, []),
        ("a", ["namespace.name.length"]),
        ("-", ["namespace.name.length", "namespace.name.format"]),
        ("", ["namespace.name.length", "namespace.name.format"]),
        ("x" * 64, ["namespace.name.length"]),
        ("Staging", ["namespace.name.format"]),
        ("-staging", ["namespace.name.format"]),
        ("staging-", ["namespace.name.format"]),
        ("my_ns", ["namespace.name.format"]),
        ("my.ns", ["namespace.name.format"]),
        ("staging\n", ["namespace.name.format"]),
    ],
)
def test_namespace_name(name: str, codes: list[str]) -> None:
    """Verify namespace names follow the 2-63 lowercase DNS-label rule at path `name`."""
    violations = validate_namespace_name(name)
    assert [v.code for v in violations] == codes
    assert all(v.property_path == "name" for v in violations)


@pytest.mark.parametrize(
    ("username", "password", "expected"),
    [
        ("alice", "correct-horse", set()),
        ("a.b_c-d", "x" * 128, set()),
        ("A1", "x" * 8, set()),
        ("a", "correct-horse", {("username", "user.username.length")}),
        ("a" * 51, "correct-horse", {("username", "user.username.length")}),
        ("_alice", "correct-horse", {("username", "user.username.format")}),
        ("al ice", "correct-horse", {("username", "user.username.format")}),
        ("", "correct-horse", {("username", "user.username.length"), ("username", "user.username.format")}),
        ("alice", "short", {("password", "user.password.length")}),
        ("alice", "x" * 129, {("password", "user.password.length")}),
        (None, None, set()),
        (None, "short", {("password", "user.password.length")}),
    ],
)
def test_user(username: str | None, password: str | None, expected: set[tuple[str, str]]) -> None:
    """Verify api.md §12 user rules; None means the field was not sent (PUT)."""
    assert {(v.property_path, v.code) for v in validate_user(username, password)} == expected


def test_user_password_is_never_echoed() -> None:
    """Verify the password value never appears in a violation message."""
    (violation,) = validate_user("alice", "hunter2")
    assert "hunter2" not in violation.message


@pytest.mark.parametrize(
    ("name", "scopes", "expire_at", "expected"),
    [
        ("ci-read", ["deployments:read"], None, []),
        ("CI.read_1", ["admin"], "2026-09-01T00:00:00Z", []),
        ("ci", ["admin"], "2026-09-01T00:00:00.123+02:00", []),
        ("c", ["admin"], None, [("name", "token.name.length")]),
        ("x" * 64, ["admin"], None, [("name", "token.name.length")]),
        ("ci-", ["admin"], None, [("name", "token.name.format")]),
        ("ci read", ["admin"], None, [("name", "token.name.format")]),
        ("ci", [], None, [("scopes", "token.scopes.empty")]),
        ("ci", ["deployments:read", "deploy:all", "root"], None,
         [("scopes", "token.scopes.unknown"), ("scopes", "token.scopes.unknown")]),
        ("ci", ["admin"], "2026-09-01", [("expire_at", "token.expire_at.format")]),
        ("ci", ["admin"], "2026-09-01T00:00:00", [("expire_at", "token.expire_at.format")]),
        ("ci", ["admin"], "tomorrow", [("expire_at", "token.expire_at.format")]),
        ("ci", ["admin"], "", [("expire_at", "token.expire_at.format")]),
        ("c", [], "x", [("name", "token.name.length"), ("scopes", "token.scopes.empty"),
                        ("expire_at", "token.expire_at.format")]),
    ],
)
def test_token_request(name: str, scopes: list[str], expire_at: str | None, expected: list[tuple[str, str]]) -> None:
    """Verify api.md §13 token rules, all reported together."""
    violations = validate_token_request(name, scopes, expire_at, SCOPES)
    assert [(v.property_path, v.code) for v in violations] == expected


def test_unknown_scope_message_lists_known_scopes() -> None:
    """Verify the unknown-scope message names the scope and the known ones."""
    (violation,) = validate_token_request("ci", ["root"], None, SCOPES)
    assert violation.message == "unknown scope 'root' (known: deployments:read, deployments:write, admin)"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2026-09-01T00:00:00Z", True),
        ("2026-09-01t00:00:00z", True),
        ("2026-09-01 00:00:00+00:00", True),
        ("2026-09-01T00:00:00.123456789-05:30", True),
        ("2026-02-30T00:00:00Z", False),
        ("2026-09-01T25:00:00Z", False),
        ("2026-09-01T00:00Z", False),
        ("2026-09-01T00:00:00+0000", False),
        ("2026-09-01T00:00:00Z\n", False),
        ("\u0662026-09-01T00:00:00Z", False),
    ],
)
def test_parse_rfc3339(text: str, ok: bool) -> None:
    """Verify strict RFC 3339 parsing returns an aware datetime or None."""
    parsed = parse_rfc3339(text)
    assert (parsed is not None) == ok
    if parsed is not None:
        assert parsed.tzinfo is not None
