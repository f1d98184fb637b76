"""Tests for ring_actors.schemas.decode: body errors become problem+json."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
import yaml

from ring_actors.schemas.decode import (
    INVALID_BODY,
    MALFORMED_JSON,
    BodyError,
    decode_body,
    decode_manifest_entry,
)
from ring_actors.schemas.manifest import DeploymentSpec, HttpCheck, NamespaceEntry
from ring_actors.schemas.problem import encode_problem

BASE: dict[str, Any] = {"name": "web", "namespace": "prod", "runtime": "docker", "image": "nginx:1.25"}


def body(**fields: Any) -> bytes:
    return json.dumps({**BASE, **fields}).encode()


def error_of(raw: bytes) -> BodyError:
    with pytest.raises(BodyError) as info:
        decode_body(raw, DeploymentSpec)
    return info.value


def test_valid_body_decodes_to_the_struct() -> None:
    """Verify a valid body decodes, including a tagged health check."""
    hc = {"type": "http", "url": "http://localhost/", "interval": "1s", "timeout": "1s", "on_failure": "alert"}
    spec = decode_body(body(health_checks=[hc], unknown_field=1), DeploymentSpec)
    assert isinstance(spec.health_checks[0], HttpCheck)
    assert spec.replicas == 1


@pytest.mark.parametrize("raw", [b"{", b"", b"not json", b'{"name": }', b"\xff\xfe"])
def test_malformed_json_is_a_400_problem(raw: bytes) -> None:
    """Verify syntax errors answer 400 `Bad Request` with one `$` violation."""
    problem = error_of(raw).problem
    assert (problem.status, problem.title) == (400, "Bad Request")
    assert [(v.property_path, v.code) for v in problem.violations] == [("$", MALFORMED_JSON)]
    assert problem.detail == problem.violations[0].message


@pytest.mark.parametrize(
    ("raw", "path", "needle"),
    [
        (body(ports=[{"published": 70000, "target": 80}]), "ports[0].published", "65535"),
        (body(ports=[{"published": 80, "target": -1}]), "ports[0].target", ">= 0"),
        (body(ports=[{"published": 80, "target": 80, "protocol": "sctp"}]), "ports[0].protocol", "sctp"),
        (body(health_checks=[{"type": "grpc"}]), "health_checks[0].type", "grpc"),
        (body(health_checks=[{"interval": "1s"}]), "health_checks[0].type", "missing required field 'type'"),
        (body(health_checks=[{"type": "tcp", "interval": "1s", "timeout": "1s", "on_failure": "restart"}]),
         "health_checks[0].port", "missing required field 'port'"),
        (body(volumes=[{"type": "nfs", "destination": "/x"}]), "volumes[0].type", "nfs"),
        (body(kind="cron"), "kind", "cron"),
        (body(replicas="2"), "replicas", "got `str`"),
        (body(replicas=-1), "replicas", ">= 0"),
        (body(command="sleep 1"), "command", "array"),
        (body(environment={"OK": "x", "PORT": 8080}), "environment.PORT", "got `int`"),
        (body(labels={"tier": True}), "labels.tier", "got `bool`"),
        (json.dumps({k: v for k, v in BASE.items() if k != "image"}).encode(), "image",
         "missing required field 'image'"),
        (b"[]", "$", "object"),
        (b"null", "$", "null"),
    ],
)
def test_shape_errors_are_422_problems_with_a_path(raw: bytes, path: str, needle: str) -> None:
    """Verify msgspec shape errors answer 422 problem+json pointing at the field."""
    problem = error_of(raw).problem
    assert (problem.status, problem.title) == (422, "Validation failed")
    (violation,) = problem.violations
    assert (violation.property_path, violation.code) == (path, INVALID_BODY)
    assert needle in violation.message
    assert problem.detail == f"{path}: {violation.message}"
    assert " - at `" not in violation.message


def test_port_70000_problem_body() -> None:
    """Verify the exact problem+json body for the classic out-of-range port."""
    err = error_of(body(ports=[{"published": 70000, "target": 80}]))
    assert err.status == 422
    encoded = json.loads(encode_problem(err.problem))
    assert encoded["violations"][0]["property_path"] == "ports[0].published"
    assert encoded["violations"][0]["code"] == "request.body.invalid"


def test_unrecoverable_map_key_keeps_a_placeholder() -> None:
    """Verify a hidden map key that cannot be found keeps msgspec's `[...]` marker."""
    raw = body(environment={"A": {"secretRef": 5}})
    (violation,) = error_of(raw).problem.violations
    assert violation.property_path == "environment[...].secretRef"


def test_manifest_entry_from_yaml_converts_strictly() -> None:
    """Verify YAML numbers where strings are expected fail with a field path (quote them)."""
    entry = yaml.safe_load(
        """
        name: web
        namespace: prod
        runtime: docker
        image: nginx
        environment:
          DEBUG: "true"
          WORKERS: 4
        """
    )
    with pytest.raises(BodyError) as info:
        decode_manifest_entry(entry, DeploymentSpec)
    (violation,) = info.value.problem.violations
    assert violation.property_path == "environment.WORKERS"
    assert info.value.status == 422


def test_manifest_entry_success_and_other_types() -> None:
    """Verify conversion of valid entries into any Struct."""
    spec = decode_manifest_entry({**BASE, "ports": [{"published": 80, "target": 8080}]}, DeploymentSpec)
    assert spec.ports[0].host_ip == "0.0.0.0"
    assert decode_manifest_entry({"name": "staging"}, NamespaceEntry).name == "staging"


def test_manifest_entry_wrong_map_key_type() -> None:
    """Verify a non-string map key is reported at its map."""
    with pytest.raises(BodyError) as info:
        decode_manifest_entry({**BASE, "labels": {1: "x"}}, DeploymentSpec)
    (violation,) = info.value.problem.violations
    assert violation.property_path == "labels"
    assert "map key" in violation.message


def test_nulls_on_optional_fields_mean_absent() -> None:
    """Verify Ring-style `null`s (as its CLI and GET output carry) decode like omitted fields."""
    hc = {"type": "tcp", "port": 80, "interval": "1s", "timeout": "1s", "on_failure": "stop", "start_period": None}
    raw = body(
        config={"image_pull_policy": "Always", "server": None, "username": None, "password": None, "user": None},
        resources=None, network=None, autoscale=None, health_checks=[hc],
        volumes=[{"type": "bind", "source": "/srv", "key": None, "destination": "/d", "driver": "local",
                  "permission": "rw"}],
    )
    spec = decode_body(raw, DeploymentSpec)
    assert spec == decode_body(
        body(config={"image_pull_policy": "Always"}, health_checks=[{k: v for k, v in hc.items() if v is not None}],
             volumes=[{"type": "bind", "source": "/srv", "destination": "/d", "permission": "rw"}]),
        DeploymentSpec,
    )
    assert spec.volumes[0].key is None


def test_yaml_empty_values_mean_absent() -> None:
    """Verify `key:` with no value in YAML (null) is treated as omitted for optional fields."""
    entry = yaml.safe_load("name: web\nnamespace: prod\nruntime: docker\nimage: nginx\nconfig:\nresources:\n")
    spec = decode_manifest_entry(entry, DeploymentSpec)
    assert spec.config.server is msgspec.UNSET and spec.resources is msgspec.UNSET


@pytest.mark.parametrize(
    ("fields", "path"),
    [({"name": None}, "name"), ({"environment": {"A": None}}, "environment.A"),
     ({"ports": [{"published": None, "target": 80}]}, "ports[0].published")],
)
def test_null_for_required_values_is_still_an_error(fields: dict[str, Any], path: str) -> None:
    """Verify a `null` where a value is required is reported at its path."""
    (violation,) = error_of(body(**fields)).problem.violations
    assert (violation.property_path, violation.code) == (path, INVALID_BODY)
    assert "got `null`" in violation.message
