"""Configs: validation (api.md §9), storage, update, entry selection for `type: config` volumes."""

from __future__ import annotations

import json

import pytest

from ring_actors.http.configs import validate_config
from ring_actors.store.configs import ConfigExists, ConfigRepo, config_entry
from ring_actors.store.db import Database


def test_validation_codes_on_create_and_update() -> None:
    """Verify api.md §9's codes, all at once; the namespace rules only apply on create (namespace given)."""
    codes = sorted(v.code for v in validate_config("A", "Bad_Name", "", "x" * 1001))
    assert codes == [
        "config.data.length", "config.labels.length", "config.name.format",
        "config.namespace.format", "config.namespace.length",
    ]
    assert [v.code for v in validate_config(None, "", "{}", None)] == ["config.name.length", "config.name.format"]
    assert validate_config("prod", "nginx.conf", '{"a": "b"}', "tier=edge") == []


@pytest.mark.parametrize("data", ["not json", "[1, 2]", '"text"'])
def test_data_must_be_a_json_object_on_create_too(data: str) -> None:
    """Verify invalid or non-object `data` is refused on create (Ring checks JSON on update only)."""
    assert [v.code for v in validate_config("prod", "app", data, None)] == ["config.data.invalid_json"]
    assert [v.code for v in validate_config(None, "app", data, None)] == ["config.data.invalid_json"]


def test_entry_selection() -> None:
    """Verify string entries are mounted as their text, other JSON values as JSON, missing keys as None."""
    data = json.dumps({"site.conf": "listen 80;\n", "n": 3, "obj": {"a": [1]}})
    assert config_entry(data, "site.conf") == b"listen 80;\n"
    assert config_entry(data, "n") == b"3"
    assert json.loads(config_entry(data, "obj") or b"") == {"a": [1]}
    assert config_entry(data, "missing") is None
    assert config_entry("[1]", "0") is None
    assert config_entry("garbage", "k") is None


async def test_create_list_update_delete() -> None:
    """Verify duplicates are 409-worthy, filters combine, PUT replaces and sets updated_at, rename clashes refuse."""
    repo = ConfigRepo(await Database.open(":memory:"))
    first = await repo.create("prod", "nginx", '{"a": "1"}', "tier=edge")
    assert first.updated_at is None and first.labels == "tier=edge"
    await repo.create("prod", "other", "{}")
    await repo.create("dev", "nginx", "{}")
    with pytest.raises(ConfigExists, match="configuration 'nginx' already exists in namespace 'prod'"):
        await repo.create("prod", "nginx", "{}")
    assert [(c.namespace, c.name) for c in await repo.list(["prod"], ["nginx"])] == [("prod", "nginx")]
    assert len(await repo.list(names=["nginx"])) == 2
    assert await repo.list([], None) == []
    updated = await repo.update(first.id, "nginx", '{"a": "2"}')
    assert updated is not None
    assert updated.data == '{"a": "2"}' and updated.labels == "" and updated.updated_at is not None
    assert updated.namespace == "prod" and updated.created_at == first.created_at
    assert await repo.value("prod", "nginx", "a") == b"2"
    with pytest.raises(ConfigExists):
        await repo.update(first.id, "other", "{}")
    assert await repo.update("no-such-id", "x", "{}") is None
    assert await repo.delete(first.id) is not None
    assert await repo.get(first.id) is None
    assert await repo.value("prod", "nginx", "a") is None
