"""Secrets (api.md §8; resources.md §2). Values go in, never come out.

Beyond Ring: every error is problem+json (Ring's `error`, `deployments` and `hint`
keys are kept as extension members), and delete protection sees every use of a
secret (env `secretRef`, `type: secret` volumes, `config.image_pull_secret`),
listed structurally in an extra `references` member.
"""

from __future__ import annotations

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
from ring_actors.store.secrets import NamespaceMissing, Secret, SecretExists, SecretRepo

__all__ = ["MAX_VALUE_BYTES", "SecretCreate", "blueprint", "validate_secret"]

blueprint = Blueprint("secrets", __name__)

MAX_VALUE_BYTES = 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
NOT_FOUND = "Secret not found"


class SecretCreate(msgspec.Struct, kw_only=True):
    """Body of `POST /secrets`."""

    namespace: str
    name: str
    value: str


def validate_secret(namespace: str, name: str, value: str) -> list[Violation]:
    """`POST /secrets` rules (api.md §8), all reported together."""
    out = validate_dns_label(namespace, path="namespace", code_prefix="secret.namespace")
    if not 2 <= len(name) <= 253:
        out.append(Violation("name", f"must be 2 to 253 characters (got {len(name)})", "secret.name.length"))
    if not _NAME.fullmatch(name):
        out.append(Violation(
            "name",
            "must contain only letters, digits, '-', '_' and '.', and start and end with a letter or digit",
            "secret.name.format",
        ))
    size = len(value.encode())
    if not 1 <= size <= MAX_VALUE_BYTES:
        out.append(Violation("value", f"must be 1 byte to 1 MiB (got {size} bytes)", "secret.value.length"))
    return out


def _repo() -> SecretRepo:
    services = state().services
    return SecretRepo(services.db, services.secret_key)


def _not_found(_secret_id: str) -> ApiError:
    """Ring's 404 for a secret, which does not name the id."""
    return ApiError(404, NOT_FOUND, extra={"error": NOT_FOUND})


async def _find(secret_id: str) -> Secret:
    return await find_visible(_repo(), secret_id, _not_found)


@blueprint.get("/secrets")
async def list_secrets() -> Response:
    who = principal()
    return json_response(await _repo().list(who.visible(query_list("namespace"))))


@blueprint.post("/secrets")
async def create_secret() -> Response:
    st = state()
    who = principal()
    body = await read_json(SecretCreate)
    violations = validate_secret(body.namespace, body.name, body.value)
    if violations:
        return encode(validation_problem(violations))
    if not who.may_access(body.namespace):
        raise forbid_namespace(body.namespace)
    try:
        created = await _repo().create(body.namespace, body.name, body.value)
    except NamespaceMissing as exc:
        raise ApiError(404, str(exc)) from None
    except SecretExists as exc:
        raise ApiError(409, str(exc)) from None
    await st.audit.record(who.user_id, "create", "secret", created.name, created.namespace)
    return json_response(created, 201)


@blueprint.get("/secrets/<id>")
async def get_secret(id: str) -> Response:
    return json_response(await _find(id))


@blueprint.delete("/secrets/<id>")
async def delete_secret(id: str) -> Response:
    return await delete_unless_used(_repo(), id, kind="secret", used_as="referenced", not_found=_not_found)
