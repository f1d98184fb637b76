"""Configs (api.md §9; resources.md §3).

Beyond Ring (api.md §16, resources.md §11): `data` must be a JSON object on create
as well as on update, every error is problem+json, and a config mounted by an active
deployment is protected from deletion like a secret (`409` listing the deployments,
`?force=true` to delete anyway).
"""

from __future__ import annotations

import json
import re

import msgspec
from quart import Blueprint, Response

from ring_actors.http.common import (
    forbid_namespace,
    json_response,
    principal,
    query_list,
    read_json,
    state,
)
from ring_actors.http.errors import ApiError, encode
from ring_actors.http.named_resources import delete_unless_used, find_visible
from ring_actors.schemas.problem import Violation, validation_problem
from ring_actors.schemas.validation import validate_dns_label
from ring_actors.store.configs import Config, ConfigExists, ConfigRepo

__all__ = ["ConfigCreate", "ConfigUpdate", "blueprint", "validate_config"]

blueprint = Blueprint("configs", __name__)

MAX_DATA_BYTES = 1024 * 1024
MAX_LABELS = 1000
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


class ConfigCreate(msgspec.Struct, kw_only=True):
    """Body of `POST /configs`."""

    namespace: str
    name: str
    data: str
    labels: str | None = None


class ConfigUpdate(msgspec.Struct, kw_only=True):
    """Body of `PUT /configs/{id}`: a full replacement (the namespace cannot change)."""

    name: str
    data: str
    labels: str | None = None


def validate_config(namespace: str | None, name: str, data: str, labels: str | None) -> list[Violation]:
    """`POST` (with `namespace`) and `PUT` (namespace None) rules of api.md §9, all reported together."""
    out: list[Violation] = []
    if namespace is not None:
        out.extend(validate_dns_label(namespace, path="namespace", code_prefix="config.namespace"))
    if not 1 <= len(name) <= 253:
        out.append(Violation("name", f"must be 1 to 253 characters (got {len(name)})", "config.name.length"))
    if not _NAME.fullmatch(name):
        out.append(Violation(
            "name",
            "must contain only lowercase letters, digits, '-' and '.', and start and end with a letter or digit",
            "config.name.format",
        ))
    size = len(data.encode())
    if not 1 <= size <= MAX_DATA_BYTES:
        out.append(Violation("data", f"must be 1 byte to 1 MiB (got {size} bytes)", "config.data.length"))
    elif not _is_json_object(data):
        out.append(Violation(
            "data",
            'must be a JSON object serialised as a string, e.g. {"app.conf": "key = value"}',
            "config.data.invalid_json",
        ))
    if labels is not None and len(labels) > MAX_LABELS:
        out.append(Violation("labels", f"must be at most {MAX_LABELS} characters (got {len(labels)})",
                             "config.labels.length"))
    return out


def _is_json_object(data: str) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


def _repo() -> ConfigRepo:
    return ConfigRepo(state().services.db)


def _not_found(ref: str) -> ApiError:
    return ApiError(404, f"configuration '{ref}' does not exist")


async def _find(config_id: str) -> Config:
    return await find_visible(_repo(), config_id, _not_found)


@blueprint.get("/configs")
async def list_configs() -> Response:
    who = principal()
    return json_response(await _repo().list(who.visible(query_list("namespace")), query_list("name")))


@blueprint.post("/configs")
async def create_config() -> Response:
    st = state()
    who = principal()
    body = await read_json(ConfigCreate)
    violations = validate_config(body.namespace, body.name, body.data, body.labels)
    if violations:
        return encode(validation_problem(violations))
    if not who.may_access(body.namespace):
        raise forbid_namespace(body.namespace)
    try:
        created = await _repo().create(body.namespace, body.name, body.data, body.labels or "")
    except ConfigExists as exc:
        raise ApiError(409, str(exc)) from None
    await st.audit.record(who.user_id, "create", "config", created.name, created.namespace)
    return json_response(created, 201)


@blueprint.get("/configs/<id>")
async def get_config(id: str) -> Response:
    return json_response(await _find(id))


@blueprint.put("/configs/<id>")
async def update_config(id: str) -> Response:
    st = state()
    who = principal()
    body = await read_json(ConfigUpdate)
    violations = validate_config(None, body.name, body.data, body.labels)
    if violations:
        return encode(validation_problem(violations))
    await _find(id)
    try:
        updated = await _repo().update(id, body.name, body.data, body.labels or "")
    except ConfigExists as exc:
        raise ApiError(409, str(exc)) from None
    if updated is None:
        raise _not_found(id)
    await st.audit.record(who.user_id, "update", "config", updated.name, updated.namespace)
    return json_response(updated)


@blueprint.delete("/configs/<id>")
async def delete_config(id: str) -> Response:
    return await delete_unless_used(_repo(), id, kind="config", used_as="mounted", not_found=_not_found)
