"""Business-rule validation: deployments, namespaces, users, tokens.

Every rule is evaluated and every violation returned together (manifest.md §14,
api.md §3.1), so a user fixes a manifest in one round trip. Shape errors (wrong
type, unknown enum value) never reach this module: `decode.py` turns them into a
422 first. Codes are Ring's, verbatim, because scripts branch on them.

Deployment codes (manifest.md §14 numbering; `+` = ring-actors addition, §16):

| #  | Code                                                         | Property path                      |
|----|--------------------------------------------------------------|------------------------------------|
| +  | `deployment.name.required` / `.length` / `.format`           | `name`                             |
| +  | `deployment.namespace.length` / `.format`                    | `namespace`                        |
| +  | `deployment.image.required`                                  | `image`                            |
| 1  | `deployment.runtime.unsupported`                             | `runtime`                          |
| +  | `deployment.runtime.not_enabled` (config.md §4)              | `runtime`                          |
| 2  | `deployment.command.cloud_hypervisor_unsupported`            | `command`                          |
| 3  | `deployment.image.cloud_hypervisor_requires_absolute_path`   | `image`                            |
| +  | `deployment.image.firecracker_requires_absolute_path`        | `image`                            |
| 4  | `deployment.network.host_runtime_unsupported`                | `network.mode`                     |
| 5  | `deployment.ports.host_network_conflict`                     | `ports`                            |
| 6  | `deployment.replicas.host_network_conflict`                  | `replicas`                         |
| 7  | `deployment.autoscale.host_network_conflict`                 | `autoscale.max`                    |
| 8  | `deployment.ports.published.out_of_range`                    | `ports[i].published`               |
| 9  | `deployment.ports.target.out_of_range`                       | `ports[i].target`                  |
| 10 | `deployment.ports.host_ip.invalid`                           | `ports[i].host_ip`                 |
| 11 | `deployment.ports.published.duplicate` (host_ip-aware)       | `ports[i].published`               |
| 12 | `deployment.environment.key.invalid`                         | `environment.<KEY>`                |
| 13 | `deployment.resources.<limits|requests>.<cpu|memory>.invalid`| `resources.<kind>.<leaf>`          |
| 14 | `deployment.autoscale.invalid`                               | `autoscale`                        |
| 15 | `deployment.autoscale.runtime_unsupported`                   | `autoscale`                        |
| 16 | `deployment.config.image_pull_policy.unsupported`            | `config.image_pull_policy`         |
| 17 | `deployment.config.use_host_auth.conflict`                   | `config.use_host_auth`             |
| 18 | `deployment.config.image_pull_secret.conflict`               | `config.image_pull_secret`         |
| +  | `deployment.config.credentials.incomplete`                   | `config.<missing field>`           |
| 19 | `deployment.ports.replicas_conflict` + `deployment.replicas.ports_conflict` | `ports` + `replicas` |
| 20 | `deployment.volumes.shared_rw_replicas`                      | `volumes[i].permission`            |
| 21 | `deployment.replicas.job_must_be_one`                        | `replicas`                         |
| 22 | `deployment.autoscale.job_unsupported`                       | `autoscale`                        |
| 23 | `deployment.health_checks.job_readiness_unsupported`         | `health_checks`                    |
| +  | `deployment.health_checks.<field>.invalid` (duration fields) | `health_checks[i].<field>`         |
| +  | `deployment.health_checks.url.invalid`                       | `health_checks[i].url`             |
| +  | `deployment.health_checks.port.out_of_range`                 | `health_checks[i].port`            |
| +  | `deployment.health_checks.command.empty`                     | `health_checks[i].command`         |
| 24 | volume codes, below                                          | `volumes[i].<field>`               |

Duration fields: `interval`, `timeout`, and when present `min_healthy_time`, `start_period`.
Autoscale reports at most one violation, the first failing of: invalid bounds,
job, host network, containerd (manifest.md §8).

Volume codes (manifest.md §5.3). Some of Ring's codes are English sentences;
they are kept verbatim for compatibility (a violation has one code), and this
table gives the stable slug each one stands for, for documentation:

| Ring code (emitted)                      | Meaning / slug it stands for               |
|------------------------------------------|--------------------------------------------|
| `destination cannot be empty`            | `deployment.volumes.destination.required`  |
| `source is required for bind volumes`    | `deployment.volumes.source.required`       |
| `source is required for named volumes`   | `deployment.volumes.source.required`       |
| `source is required for secret volumes`  | `deployment.volumes.source.required`       |
| `source cannot be empty`                 | `deployment.volumes.source.empty`          |
| `required` (config `source` / `key`)     | `deployment.volumes.<source|key>.required` |
| `empty` (config `source` / `key`)        | `deployment.volumes.<source|key>.empty`    |
| `invalid_permission`                     | `deployment.volumes.permission.invalid`    |
| `unexpected_field` (secret `key`)        | `deployment.volumes.key.unexpected`        |
| `deployment.volumes.shared_rw_replicas`  | (already a slug)                           |

Where ring-actors deliberately differs from Ring (manifest.md §16):
- `name`/`namespace` are validated as lowercase DNS labels (name 1-63, namespace 2-63)
  because they become DNS aliases, container and network names.
- A blank `image` is `deployment.image.required` only (no VM path violation on top).
- Duplicate ports are keyed on (host_ip, published, protocol); `0.0.0.0` and `::`
  overlap every address, so they clash with any host_ip on the same port/protocol.
- Partial inline registry credentials are rejected instead of silently ignored;
  blank strings count as "not given" for credential rules.
- Firecracker images must be absolute paths, like cloud-hypervisor's.
- Health-check durations and http URLs are checked up front (Ring fails at probe time).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET

from ring_actors.schemas.manifest import (
    RUNTIMES,
    Autoscale,
    CommandCheck,
    DeploymentSpec,
    HttpCheck,
    Port,
    TcpCheck,
    Volume,
)
from ring_actors.schemas.problem import Violation
from ring_actors.schemas.quantities import parse_cpu, parse_duration, parse_memory

__all__ = [
    "HOST_NETWORK_RUNTIMES",
    "PULL_POLICIES",
    "normalize",
    "parse_rfc3339",
    "validate_deployment",
    "validate_dns_label",
    "validate_namespace_name",
    "validate_token_request",
    "validate_user",
]

S = TypeVar("S", bound=DeploymentSpec)
Checks = Iterator[Violation]

HOST_NETWORK_RUNTIMES = ("docker", "podman")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
READ_ONLY_TYPES = ("config", "secret")
CREDENTIAL_FIELDS = ("server", "username", "password")

# Patterns are used with fullmatch: `$` would also accept a trailing newline.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USERNAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")
_TOKEN_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_DNS_FORMAT_MESSAGE = (
    "must contain only lowercase letters, digits and '-', "
    "and start and end with an alphanumeric character"
)


# --------------------------------------------------------------------------- normalize


def normalize(spec: S, *, force_read_only: bool = False) -> S:
    """Fill defaults the Structs cannot express, so every consumer sees one shape.

    `Volume.permission` becomes `ro` for config/secret volumes and `rw` otherwise
    when it was omitted. `force_read_only=True` (what Ring's CLI does) also turns an
    explicit `rw` on config/secret volumes into `ro`. Returns a new Struct.
    """
    volumes = [_normalize_volume(v, force_read_only) for v in spec.volumes]
    return msgspec.structs.replace(spec, volumes=volumes)


def _normalize_volume(volume: Volume, force_read_only: bool) -> Volume:
    if volume.type in READ_ONLY_TYPES and force_read_only:
        return msgspec.structs.replace(volume, permission="ro")
    if volume.permission is None:
        return msgspec.structs.replace(volume, permission=_default_permission(volume))
    return volume


def _default_permission(volume: Volume) -> str:
    return "ro" if volume.type in READ_ONLY_TYPES else "rw"


def _permission(volume: Volume) -> str:
    """Effective permission, so validation also works on a non-normalized spec."""
    return volume.permission or _default_permission(volume)


# --------------------------------------------------------------------------- deployment


def validate_deployment(
    spec: DeploymentSpec, *, enabled_runtimes: Collection[str] | None = None
) -> list[Violation]:
    """Every violation of manifest.md §14 (plus ring-actors' additions), in one list.

    Args:
        spec: the decoded deployment (normalized or not).
        enabled_runtimes: runtimes registered on this server; `None` skips the
            `deployment.runtime.not_enabled` rule (e.g. client-side validation).

    Returns:
        The violations, empty when the deployment is valid.
    """
    checks: list[Callable[[DeploymentSpec], Checks]] = [
        _check_name,
        _check_namespace,
        _check_image,
        lambda s: _check_runtime(s, enabled_runtimes),
        _check_volumes,
        _check_vm_runtime,
        _check_host_network,
        _check_ports,
        _check_environment,
        _check_resources,
        _check_config,
        _check_cross_fields,
        _check_autoscale,
        _check_health_checks,
    ]
    return [violation for check in checks for violation in check(spec)]


def _check_name(spec: DeploymentSpec) -> Checks:
    if not spec.name.strip():
        yield Violation("name", "must not be empty", "deployment.name.required")
        return
    yield from validate_dns_label(spec.name, path="name", code_prefix="deployment.name", min_len=1)


def _check_namespace(spec: DeploymentSpec) -> Checks:
    yield from validate_dns_label(spec.namespace, path="namespace", code_prefix="deployment.namespace")


def _check_image(spec: DeploymentSpec) -> Checks:
    if not spec.image.strip():
        yield Violation(
            "image",
            "must not be empty: give an image reference (e.g. 'nginx:1.25') "
            "or, for VM runtimes, an absolute disk image path",
            "deployment.image.required",
        )


def _check_runtime(spec: DeploymentSpec, enabled: Collection[str] | None) -> Checks:
    if spec.runtime not in RUNTIMES:
        yield Violation(
            "runtime",
            f"runtime must be one of: {', '.join(RUNTIMES)}, got '{spec.runtime}'",
            "deployment.runtime.unsupported",
        )
    elif enabled is not None and spec.runtime not in enabled:
        listed = ", ".join(sorted(enabled)) or "none"
        yield Violation(
            "runtime",
            f"runtime '{spec.runtime}' is not enabled on this server (enabled: {listed}); "
            "enable it in the server's config.toml or pick an enabled runtime",
            "deployment.runtime.not_enabled",
        )


def _check_vm_runtime(spec: DeploymentSpec) -> Checks:
    """VM runtimes boot a host disk image, not an OCI reference; CH cannot override argv."""
    if spec.runtime == "cloud-hypervisor" and spec.command:
        yield Violation(
            "command",
            "custom commands are not supported on the cloud-hypervisor runtime; "
            "the VM boots whatever its image is configured to run",
            "deployment.command.cloud_hypervisor_unsupported",
        )
    if not spec.image.strip() or spec.image.startswith("/"):
        return
    if spec.runtime == "cloud-hypervisor":
        yield Violation(
            "image",
            "cloud-hypervisor runtime expects an absolute path to a raw disk image, "
            f"got '{spec.image}' (image references are not supported)",
            "deployment.image.cloud_hypervisor_requires_absolute_path",
        )
    elif spec.runtime == "firecracker":
        yield Violation(
            "image",
            "firecracker runtime expects an absolute path to an ext4 root filesystem image, "
            f"got '{spec.image}' (image references are not supported)",
            "deployment.image.firecracker_requires_absolute_path",
        )


def _check_host_network(spec: DeploymentSpec) -> Checks:
    """`network.mode: host` shares the host's ports: one instance, no publishing, D/P only."""
    if spec.network_mode != "host":
        return
    if spec.runtime not in HOST_NETWORK_RUNTIMES:
        yield Violation(
            "network.mode",
            f"host networking is only supported on the docker and podman runtimes, got '{spec.runtime}'",
            "deployment.network.host_runtime_unsupported",
        )
    if spec.ports:
        yield Violation(
            "ports",
            "host networking bypasses port publishing; remove `ports` and let the "
            "workload bind directly on the host",
            "deployment.ports.host_network_conflict",
        )
    if spec.replicas > 1:
        yield Violation(
            "replicas",
            f"host networking is incompatible with replicas > 1 (got {spec.replicas}): "
            "all replicas would compete for the same host ports",
            "deployment.replicas.host_network_conflict",
        )


# ---- ports


def _check_ports(spec: DeploymentSpec) -> Checks:
    for idx, port in enumerate(spec.ports):
        yield from _check_port(idx, port)
    yield from _check_port_duplicates(spec.ports)


def _check_port(idx: int, port: Port) -> Checks:
    for field in ("published", "target"):
        if getattr(port, field) == 0:
            yield Violation(
                f"ports[{idx}].{field}",
                "must be between 1 and 65535",
                f"deployment.ports.{field}.out_of_range",
            )
    if _parse_ip(port.host_ip) is None:
        yield Violation(
            f"ports[{idx}].host_ip",
            f"'{port.host_ip}' is not a valid IP address (e.g. '0.0.0.0', '127.0.0.1' or '::')",
            "deployment.ports.host_ip.invalid",
        )


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP literal, or None. Scoped IPv6 (`fe80::1%eth0`) is refused, as Rust's IpAddr does."""
    if "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _check_port_duplicates(ports: list[Port]) -> Checks:
    """Each host address binds a port once per protocol; a wildcard covers every address."""
    seen: list[tuple[int, Port, ipaddress.IPv4Address | ipaddress.IPv6Address]] = []
    for idx, port in enumerate(ports):
        address = _parse_ip(port.host_ip)
        if port.published == 0 or address is None:
            continue  # already reported by the per-port rules
        clash = next((s for s in seen if _ports_clash(port, address, s[1], s[2])), None)
        if clash is not None:
            yield _duplicate_port(idx, port, clash[0], clash[1])
        seen.append((idx, port, address))


def _ports_clash(a: Port, a_ip: Any, b: Port, b_ip: Any) -> bool:
    if (a.published, a.protocol) != (b.published, b.protocol):
        return False
    return bool(a_ip == b_ip or a_ip.is_unspecified or b_ip.is_unspecified)


def _duplicate_port(idx: int, port: Port, prev_idx: int, prev: Port) -> Violation:
    return Violation(
        f"ports[{idx}].published",
        f"{port.host_ip}:{port.published}/{port.protocol} duplicates ports[{prev_idx}] "
        f"({prev.host_ip}:{prev.published}/{prev.protocol}); a host address can bind a port "
        "once per protocol, and 0.0.0.0 or :: covers every address",
        "deployment.ports.published.duplicate",
    )


# ---- environment, resources, config


def _check_environment(spec: DeploymentSpec) -> Checks:
    for key in spec.environment:
        if not _ENV_KEY.fullmatch(key):
            yield Violation(
                f"environment.{key}",
                f"'{key}' is not a valid env var name (must match [A-Za-z_][A-Za-z0-9_]*)",
                "deployment.environment.key.invalid",
            )


_QUANTITY_PARSERS: dict[str, Callable[[str], int]] = {"cpu": parse_cpu, "memory": parse_memory}


def _check_resources(spec: DeploymentSpec) -> Checks:
    if not _given(spec.resources):
        return
    for kind in ("limits", "requests"):
        quantities = getattr(spec.resources, kind)
        if not _given(quantities):
            continue
        for leaf, parse in _QUANTITY_PARSERS.items():
            value = getattr(quantities, leaf)
            if _given(value):
                yield from _parsed(value, parse, f"resources.{kind}.{leaf}",
                                   f"deployment.resources.{kind}.{leaf}.invalid")


def _parsed(value: str, parse: Callable[[str], Any], path: str, code: str) -> Checks:
    """One violation carrying the parser's own explanation when `value` does not parse."""
    try:
        parse(value)
    except ValueError as exc:
        yield Violation(path, str(exc), code)


def _check_config(spec: DeploymentSpec) -> Checks:
    config = spec.config
    if not _given(config):
        return
    policy = config.image_pull_policy
    if _given(policy) and policy not in PULL_POLICIES:
        yield Violation(
            "config.image_pull_policy",
            f"'{policy}' is not a supported pull policy "
            "(must be one of: Always, IfNotPresent, Never; case-sensitive)",
            "deployment.config.image_pull_policy.unsupported",
        )
    yield from _check_credentials(config)


def _check_credentials(config: Any) -> Checks:
    """Credential sources are exclusive, and inline credentials are all-or-nothing."""
    inline = [f for f in CREDENTIAL_FIELDS if _filled(getattr(config, f))]
    host_auth = config.use_host_auth is True
    named = ", ".join(f"config.{f}" for f in inline)
    if host_auth and inline:
        yield Violation(
            "config.use_host_auth",
            f"use_host_auth cannot be combined with inline credentials ({named}); "
            "pick one credential source",
            "deployment.config.use_host_auth.conflict",
        )
    if _filled(config.image_pull_secret) and (inline or host_auth):
        others = ", ".join([*(f"config.{f}" for f in inline), *(["config.use_host_auth"] if host_auth else [])])
        yield Violation(
            "config.image_pull_secret",
            f"image_pull_secret cannot be combined with other credential sources ({others}); "
            "pick one credential source",
            "deployment.config.image_pull_secret.conflict",
        )
    if inline and len(inline) < len(CREDENTIAL_FIELDS):
        for missing in (f for f in CREDENTIAL_FIELDS if f not in inline):
            yield Violation(
                f"config.{missing}",
                f"required because {named} is set: inline registry credentials need all of "
                "server, username and password (partial credentials would pull anonymously)",
                "deployment.config.credentials.incomplete",
            )


# ---- volumes


def _check_volumes(spec: DeploymentSpec) -> Checks:
    for idx, volume in enumerate(spec.volumes):
        yield from _check_volume(f"volumes[{idx}]", volume)


def _check_volume(path: str, volume: Volume) -> Checks:
    if not volume.destination.strip():
        yield Violation(
            f"{path}.destination",
            "destination cannot be empty: give the path inside the instance to mount at",
            "destination cannot be empty",
        )
    if volume.type == "config":
        yield from _check_config_volume(path, volume)
    else:
        yield from _check_volume_source(path, volume)
    if volume.type == "secret" and volume.key:
        yield Violation(
            f"{path}.key",
            "secret volumes have no key (a secret holds a single opaque value); remove `key`",
            "unexpected_field",
        )
    if volume.type in READ_ONLY_TYPES and _permission(volume) != "ro":
        yield Violation(
            f"{path}.permission",
            f"{volume.type} volumes must be read-only (ro); remove `permission` or set it to ro",
            "invalid_permission",
        )


_SOURCE_REQUIRED = {
    "bind": ("bind", "the absolute host path to mount"),
    "volume": ("named", "the name of the volume"),
    "secret": ("secret", "the name of a secret in the same namespace"),
}


def _check_volume_source(path: str, volume: Volume) -> Checks:
    label, hint = _SOURCE_REQUIRED[volume.type]
    if volume.source is None:
        code = f"source is required for {label} volumes"
        yield Violation(f"{path}.source", f"{code}: give {hint}", code)
    elif not volume.source.strip():
        yield Violation(f"{path}.source", f"source cannot be empty: give {hint}", "source cannot be empty")


_CONFIG_FIELD_HINTS = {
    "source": "the name of a config in the same namespace",
    "key": "the entry of the config's JSON object to mount",
}


def _check_config_volume(path: str, volume: Volume) -> Checks:
    for field, hint in _CONFIG_FIELD_HINTS.items():
        value = getattr(volume, field)
        if value is None:
            yield Violation(f"{path}.{field}", f"{field} is required for config volumes: give {hint}", "required")
        elif not value.strip():
            yield Violation(f"{path}.{field}", f"{field} cannot be empty: give {hint}", "empty")


# ---- cross-field rules


def _check_cross_fields(spec: DeploymentSpec) -> Checks:
    """Rules a single field cannot break; both fields get a violation when either fix works."""
    if spec.ports and spec.replicas > 1:
        yield Violation(
            "ports",
            f"publishing host ports with replicas > 1 ({spec.replicas}) causes port conflicts "
            "between replicas; drop `ports` or reduce `replicas` to 1",
            "deployment.ports.replicas_conflict",
        )
        yield Violation(
            "replicas",
            f"replicas > 1 ({spec.replicas}) is incompatible with `ports`; "
            "drop `ports` or reduce `replicas` to 1",
            "deployment.replicas.ports_conflict",
        )
    yield from _check_shared_volumes(spec)
    yield from _check_job(spec)


def _check_shared_volumes(spec: DeploymentSpec) -> Checks:
    if spec.replicas <= 1:
        return
    for idx, volume in enumerate(spec.volumes):
        if volume.type == "volume" and _permission(volume) == "rw":
            yield Violation(
                f"volumes[{idx}].permission",
                f"named volume '{volume.source or '<unnamed>'}' is mounted read-write with replicas > 1 "
                f"({spec.replicas}); replicas would share it with no write coordination and corrupt "
                "data; reduce `replicas` to 1 or mount the volume `ro`",
                "deployment.volumes.shared_rw_replicas",
            )


def _check_job(spec: DeploymentSpec) -> Checks:
    if spec.kind != "job":
        return
    if spec.replicas > 1:
        yield Violation(
            "replicas",
            f"kind=job runs once and exits; replicas must be 1, got {spec.replicas}",
            "deployment.replicas.job_must_be_one",
        )
    if any(check.readiness for check in spec.health_checks):
        yield Violation(
            "health_checks",
            "kind=job is incompatible with readiness health checks (readiness gates rollouts, "
            "which do not apply to one-shot jobs); set readiness: false",
            "deployment.health_checks.job_readiness_unsupported",
        )


# ---- autoscale


def _check_autoscale(spec: DeploymentSpec) -> Checks:
    """At most one violation: the first failing rule, in Ring's order (manifest.md §8)."""
    autoscale = spec.autoscale
    if not isinstance(autoscale, Autoscale):
        return
    for rule in (_autoscale_bounds, _autoscale_job, _autoscale_host, _autoscale_runtime):
        violation = rule(spec, autoscale)
        if violation is not None:
            yield violation
            return


def _autoscale_bounds(spec: DeploymentSpec, a: Autoscale) -> Violation | None:
    if a.min < 1:
        reason = f"autoscale.min must be at least 1 (no scale-to-zero), got {a.min}"
    elif a.max < a.min:
        reason = f"autoscale.max ({a.max}) must be greater than or equal to autoscale.min ({a.min})"
    elif not (math.isfinite(a.target_cpu) and 0 < a.target_cpu < 100):
        reason = (
            "autoscale.target_cpu must be a number strictly between 0 and 100 "
            f"(average CPU % per instance), got {a.target_cpu}"
        )
    else:
        return None
    return Violation("autoscale", reason, "deployment.autoscale.invalid")


def _autoscale_job(spec: DeploymentSpec, a: Autoscale) -> Violation | None:
    if spec.kind != "job":
        return None
    return Violation(
        "autoscale",
        "kind=job runs exactly one instance; remove `autoscale` or use kind=worker",
        "deployment.autoscale.job_unsupported",
    )


def _autoscale_host(spec: DeploymentSpec, a: Autoscale) -> Violation | None:
    if spec.network_mode != "host" or a.max <= 1:
        return None
    return Violation(
        "autoscale.max",
        f"host networking is incompatible with autoscale.max > 1 (got {a.max}): "
        "instances would compete for the same host ports",
        "deployment.autoscale.host_network_conflict",
    )


def _autoscale_runtime(spec: DeploymentSpec, a: Autoscale) -> Violation | None:
    if spec.runtime != "containerd":
        return None
    return Violation(
        "autoscale",
        "autoscale is not supported on the containerd runtime; remove `autoscale` "
        "or use docker, podman, cloud-hypervisor or firecracker",
        "deployment.autoscale.runtime_unsupported",
    )


# ---- health checks


_DURATION_FIELDS = ("interval", "timeout", "min_healthy_time", "start_period")


def _check_health_checks(spec: DeploymentSpec) -> Checks:
    for idx, check in enumerate(spec.health_checks):
        path = f"health_checks[{idx}]"
        for field in _DURATION_FIELDS:
            value = getattr(check, field)
            if _given(value):
                yield from _parsed(value, parse_duration, f"{path}.{field}",
                                   f"deployment.health_checks.{field}.invalid")
        yield from _check_probe_target(path, check)


def _check_probe_target(path: str, check: TcpCheck | HttpCheck | CommandCheck) -> Checks:
    if isinstance(check, HttpCheck) and not _is_http_url(check.url):
        yield Violation(
            f"{path}.url",
            f"'{check.url}' is not an http(s) URL with a host (e.g. 'http://localhost:8080/health')",
            "deployment.health_checks.url.invalid",
        )
    elif isinstance(check, TcpCheck) and check.port == 0:
        yield Violation(f"{path}.port", "must be between 1 and 65535",
                        "deployment.health_checks.port.out_of_range")
    elif isinstance(check, CommandCheck) and not check.command.strip():
        yield Violation(f"{path}.command", "must not be empty: give the command to run in the instance",
                        "deployment.health_checks.command.empty")


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # bad port or bracketed host
        return False


def _given(value: Any) -> bool:
    """Present in the input: not omitted (UNSET) and not null."""
    return value is not UNSET and value is not None


def _filled(value: Any) -> bool:
    """Present and non-blank: a blank credential field counts as not given."""
    return isinstance(value, str) and bool(value.strip())


# --------------------------------------------------------------------------- other resources


def validate_dns_label(
    value: str, *, path: str, code_prefix: str, min_len: int = 2, max_len: int = 63
) -> list[Violation]:
    """Lowercase DNS label rule shared by namespaces and deployment names.

    Both `<code_prefix>.length` and `<code_prefix>.format` are reported when both
    fail, as Ring does for namespaces.
    """
    out: list[Violation] = []
    if not min_len <= len(value) <= max_len:
        out.append(Violation(path, f"must be {min_len} to {max_len} characters (got {len(value)})",
                             f"{code_prefix}.length"))
    if not _DNS_LABEL.fullmatch(value):
        out.append(Violation(path, f"{_DNS_FORMAT_MESSAGE}, got '{value}'", f"{code_prefix}.format"))
    return out


def validate_namespace_name(name: str) -> list[Violation]:
    """`POST /namespaces` rules (api.md §10): 2-63 chars, lowercase DNS label."""
    return validate_dns_label(name, path="name", code_prefix="namespace.name")


def validate_user(username: str | None, password: str | None) -> list[Violation]:
    """`POST /users` / `PUT /users/{id}` rules (api.md §12); `None` = field not sent."""
    out: list[Violation] = []
    if username is not None:
        if not 2 <= len(username) <= 50:
            out.append(Violation("username", f"must be 2 to 50 characters (got {len(username)})",
                                 "user.username.length"))
        if not _USERNAME.fullmatch(username):
            out.append(Violation(
                "username",
                "must start with a letter or digit and contain only letters, digits, '.', '_' and '-'",
                "user.username.format",
            ))
    if password is not None and not 8 <= len(password) <= 128:
        out.append(Violation("password", f"must be 8 to 128 characters (got {len(password)})",
                             "user.password.length"))
    return out


def validate_token_request(
    name: str, scopes: Iterable[str], expire_at: str | None, known_scopes: Iterable[str]
) -> list[Violation]:
    """`POST /tokens` rules (api.md §13). `namespaces` entries are not validated (as Ring)."""
    out: list[Violation] = []
    if not 2 <= len(name) <= 63:
        out.append(Violation("name", f"must be 2 to 63 characters (got {len(name)})", "token.name.length"))
    if not _TOKEN_NAME.fullmatch(name):
        out.append(Violation(
            "name",
            "must contain only letters, digits, '_', '.' and '-', "
            "and start and end with a letter or digit",
            "token.name.format",
        ))
    out.extend(_check_scopes(list(scopes), list(known_scopes)))
    if expire_at is not None and parse_rfc3339(expire_at) is None:
        out.append(Violation(
            "expire_at",
            f"'{expire_at}' is not an RFC 3339 timestamp (e.g. '2026-09-01T00:00:00Z')",
            "token.expire_at.format",
        ))
    return out


def _check_scopes(scopes: list[str], known: list[str]) -> list[Violation]:
    if not scopes:
        return [Violation("scopes", "at least one scope is required", "token.scopes.empty")]
    return [
        Violation("scopes", f"unknown scope '{scope}' (known: {', '.join(known)})", "token.scopes.unknown")
        for scope in scopes
        if scope not in known
    ]


def parse_rfc3339(text: str) -> datetime | None:
    """A timezone-aware datetime for an RFC 3339 timestamp, else None.

    Stricter than `datetime.fromisoformat`, which also accepts dates without a time
    or an offset; the auth layer treats an unparseable expiry as expired.
    """
    if not _RFC3339.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:  # e.g. month 13, Feb 30
        return None
