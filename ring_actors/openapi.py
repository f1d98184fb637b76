"""The OpenAPI 3.1 document of the control API, generated from the msgspec Structs.

Paths come from `ROUTES` below; every path also appears in the route -> scope map
(`ring_actors.auth.scopes`), which gives each operation its security requirement.
Schemas come from `msgspec.json.schema_components`, so they cannot drift from what
the handlers decode and encode.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import msgspec

from ring_actors import __version__
from ring_actors.auth.scopes import AUTHENTICATED, PUBLIC, required_scope
from ring_actors.http import bodies as b
from ring_actors.http.configs import ConfigCreate, ConfigUpdate
from ring_actors.http.secrets import SecretCreate
from ring_actors.http.volumes import VolumeCreate
from ring_actors.schemas.manifest import Deployment, DeploymentSpec
from ring_actors.schemas.problem import Problem
from ring_actors.store.configs import Config
from ring_actors.store.secrets import Secret, SecretCreated
from ring_actors.store.volumes import Volume, VolumeCreated
from ring_actors.webhooks import bodies as wh

__all__ = ["ROUTES", "Operation", "Param", "build_document", "openapi_document"]


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    type: str = "string"
    repeated: bool = False


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    response: Any = None
    status: int = 200
    request: Any = None
    query: tuple[Param, ...] = ()
    stream: bool = False
    """The operation can answer `text/event-stream` (with `follow=true`)."""


_NS = Param("namespace", "Namespace filter (repeatable; also `namespace[]`)", repeated=True)
_LIMIT = Param("limit", "Maximum number of items", "integer")
_FOLLOW = Param("follow", "`true`: Server-Sent Events stream", "boolean")

ROUTES: tuple[Operation, ...] = (
    Operation("post", "/login", "Log in: mint a session token", "auth", b.LoginResponse, request=b.LoginRequest),
    Operation("post", "/logout", "Revoke the presented credential", "auth", None, 204),
    Operation("post", "/auth/stream-ticket", "Mint a 30 s single-use ticket for the logs stream", "auth",
              b.StreamTicketResponse, request=b.StreamTicketRequest),
    Operation("get", "/healthz", "Liveness, plus each runtime's reachability", "system", b.Healthz),
    Operation("get", "/metrics", "Prometheus text, or JSON with `Accept: application/json`", "system",
              b.MetricsSnapshot),
    Operation("get", "/node/get", "Host information", "system", b.NodeInfo),
    Operation("get", "/openapi.json", "This document", "system", dict),
    Operation("get", "/deployments", "List deployments", "deployments", list[Deployment], query=(
        _NS,
        Param("status", "Status filter (repeatable)", repeated=True),
        Param("kind", "`worker` or `job` (repeatable)", repeated=True),
        Param("label", "`key=value` or `key`; all must match (repeatable)", repeated=True),
        Param("instances", "`true`: include instance addresses", "boolean"),
    )),
    Operation("post", "/deployments", "Create (apply) a deployment", "deployments", Deployment, 201,
              request=DeploymentSpec,
              query=(Param("force", "`true`: replace immediately instead of a rolling update", "boolean"),)),
    Operation("get", "/deployments/{id}", "Get a deployment with its live instances", "deployments", Deployment),
    Operation("delete", "/deployments/{id}", "Delete a deployment", "deployments", None, 204),
    Operation("get", "/deployments/{id}/logs", "Logs (JSON), or a live SSE stream with follow=true",
              "deployments", list[b.LogLineView], stream=True, query=(
                  Param("tail", "Last N lines per instance, or `all` (default 100)"),
                  Param("since", "`<n>s|m|h` or an RFC 3339 instant"),
                  Param("container", "Instance id prefix or name substring"),
                  _FOLLOW,
                  Param("ticket", "Stream ticket (instead of a bearer token)"),
              )),
    Operation("get", "/deployments/{id}/events", "Events, newest first; live SSE stream with follow=true",
              "deployments", list[b.Event], stream=True,
              query=(Param("level", "`info`, `warning` or `error`"), _LIMIT, _FOLLOW)),
    Operation("get", "/events", "Events of every visible deployment; live SSE stream with follow=true",
              "deployments", list[dict], stream=True, query=(Param("level", "Level filter"), _LIMIT, _FOLLOW)),
    Operation("get", "/deployments/{id}/health-checks", "Health-check history, newest first", "deployments",
              list[b.HealthCheckResult],
              query=(_LIMIT, Param("latest", "`true`: newest row per check", "boolean"))),
    Operation("get", "/deployments/{id}/metrics", "Live resource usage per instance", "deployments",
              b.DeploymentMetrics),
    Operation("get", "/namespaces", "List namespaces", "namespaces", list[b.Namespace]),
    Operation("post", "/namespaces", "Create a namespace", "namespaces", b.Namespace, 201,
              request=b.NamespaceCreate),
    Operation("get", "/namespaces/{id}", "Get a namespace by id or name", "namespaces", b.Namespace),
    Operation("delete", "/namespaces/{id}", "Delete an empty namespace (by id or name)", "namespaces", None, 204),
    Operation("get", "/namespaces/{id}/audit", "Audit trail of a namespace, newest first", "namespaces",
              list[b.AuditEntry], query=(_LIMIT,)),
    Operation("get", "/secrets", "List secrets (metadata only: values are never returned)", "secrets",
              list[Secret], query=(_NS,)),
    Operation("post", "/secrets", "Create a secret (encrypted at rest) in an existing namespace", "secrets",
              SecretCreated, 201, request=SecretCreate),
    Operation("get", "/secrets/{id}", "Get a secret's metadata", "secrets", Secret),
    Operation("delete", "/secrets/{id}", "Delete a secret; 409 while deployments use it unless force=true",
              "secrets", None, 204,
              query=(Param("force", "`true`: delete even if active deployments reference it", "boolean"),)),
    Operation("get", "/configs", "List configs", "configs", list[Config],
              query=(_NS, Param("name", "Name filter (repeatable; also `name[]`)", repeated=True))),
    Operation("post", "/configs", "Create a config", "configs", Config, 201, request=ConfigCreate),
    Operation("get", "/configs/{id}", "Get a config", "configs", Config),
    Operation("put", "/configs/{id}", "Replace a config's name, data and labels", "configs", Config,
              request=ConfigUpdate),
    Operation("delete", "/configs/{id}", "Delete a config; 409 while deployments mount it unless force=true",
              "configs", None, 204,
              query=(Param("force", "`true`: delete even if active deployments mount it", "boolean"),)),
    Operation("get", "/volumes", "List registered named volumes", "volumes", list[Volume], query=(_NS,)),
    Operation("post", "/volumes", "Register a named volume (nothing is provisioned on the runtime)", "volumes",
              VolumeCreated, 201, request=VolumeCreate),
    Operation("get", "/volumes/{id}", "Get a registered volume", "volumes", Volume),
    Operation("delete", "/volumes/{id}",
              "Unregister a volume (its data stays); 409 while deployments mount it unless force=true",
              "volumes", None, 204,
              query=(Param("force", "`true`: delete even if active deployments mount it", "boolean"),)),
    Operation("get", "/users", "List users", "users", list[b.User]),
    Operation("post", "/users", "Create a user (role viewer)", "users", b.User, 201, request=b.UserCreate),
    Operation("get", "/users/me", "The authenticated user", "users", b.User),
    Operation("put", "/users/{id}", "Update username, password or role", "users", b.User, request=b.UserUpdate),
    Operation("delete", "/users/{id}", "Delete a user", "users", None, 204),
    Operation("get", "/tokens", "List your personal access tokens", "tokens", list[b.TokenView]),
    Operation("post", "/tokens", "Create a personal access token", "tokens", b.TokenCreated, 201,
              request=b.TokenCreate),
    Operation("get", "/tokens/{id}", "Get one of your tokens", "tokens", b.TokenView),
    Operation("delete", "/tokens/{id}", "Revoke one of your tokens", "tokens", None, 204),
    Operation("post", "/tokens/{id}/rotate", "Revoke a token and mint its replacement", "tokens",
              b.TokenCreated, 201),
    Operation("get", "/webhooks", "List webhooks (secrets are never returned)", "webhooks", list[wh.WebhookView]),
    Operation("post", "/webhooks", "Create a webhook (the signing secret is shown once)", "webhooks",
              wh.WebhookCreated, 201, request=wh.WebhookCreate),
    Operation("delete", "/webhooks/{id}", "Delete a webhook (soft: no further deliveries)", "webhooks", None, 204),
    Operation("get", "/webhooks/{id}/events", "The webhook's 50 most recent queued events", "webhooks",
              list[wh.QueueEntryView]),
)


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for segment in op.path.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            params.append({"name": segment[1:-1], "in": "path", "required": True, "schema": {"type": "string"}})
    for q in op.query:
        schema: dict[str, Any] = {"type": q.type}
        if q.repeated:
            schema = {"type": "array", "items": {"type": q.type}}
        params.append({
            "name": q.name,
            "in": "query",
            "required": False,
            "description": q.description,
            "schema": schema,
            **({"style": "form", "explode": True} if q.repeated else {}),
        })
    return params


def _security(op: Operation) -> tuple[list[dict[str, list]], str]:
    scope = required_scope(op.method.upper(), op.path)
    if scope == PUBLIC:
        return [], "Public."
    if scope == AUTHENTICATED:
        return [{"bearerAuth": []}], "Any valid credential (handler rules apply)."
    return [{"bearerAuth": []}], f"Requires scope `{scope}` (or `admin`)."


def build_document() -> dict[str, Any]:
    types: list[Any] = [Problem]
    for op in ROUTES:
        for t in (op.request, op.response):
            if t is not None and t not in types:
                types.append(t)
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    by_type = dict(zip(types, schemas, strict=True))
    problem_ref = by_type[Problem]
    paths: dict[str, dict[str, Any]] = {}
    for op in ROUTES:
        security, scope_text = _security(op)
        success: dict[str, Any] = {"description": "Success"}
        if op.response is not None:
            content: dict[str, Any] = {"application/json": {"schema": by_type[op.response]}}
            if op.path == "/metrics":
                content["text/plain; version=0.0.4"] = {"schema": {"type": "string"}}
            if op.stream:
                content["text/event-stream"] = {"schema": {"type": "string"}}
            success["content"] = content
        operation: dict[str, Any] = {
            "summary": op.summary,
            "description": scope_text,
            "tags": [op.tag],
            "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}"
            or "root",
            "security": security,
            "parameters": _parameters(op),
            "responses": {
                str(op.status): success,
                "default": {
                    "description": "Error (RFC 7807 problem)",
                    "content": {"application/problem+json": {"schema": problem_ref}},
                },
            },
        }
        if op.request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": by_type[op.request]}},
            }
        paths.setdefault(op.path, {})[op.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ring-actors control API",
            "version": __version__,
            "description": "Ring-compatible REST API of ring-actors. Errors are RFC 7807 problem+json.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "ring_pat_<64 hex>"},
            },
        },
    }


@functools.cache
def openapi_document() -> bytes:
    """The document as JSON bytes (built once)."""
    return msgspec.json.encode(build_document())
