"""Tests for ring_actors.schemas.interpolation (manifest.md §2.2, §15)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ring_actors.schemas.interpolation import (
    ConfigDefinitionError,
    build_config_payload,
    interpolate,
    interpolate_deployment,
    load_env_file,
    make_lookup,
)
from ring_actors.schemas.manifest import ConfigDefinition

ENV = {"FOO": "foo", "FOOBAR": "foobar", "TAG": "1.25", "EMPTY": "", "DOLLAR": "$FOO"}


# ---- interpolate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$FOO", "foo"),
        ("${FOO}", "foo"),
        ("$FOOBAR", "foobar"),
        ("$FOO $FOOBAR", "foo foobar"),
        ("$FOOBAR$FOO", "foobarfoo"),
        ("${FOO}BAR", "fooBAR"),
        ("nginx:$TAG", "nginx:1.25"),
        ("x${TAG}y", "x1.25y"),
        ("$FOO_SUFFIX", "$FOO_SUFFIX"),  # longest name: FOO_SUFFIX is unresolved, FOO is not substituted
        ("$FOO-suffix", "foo-suffix"),
        ("$FOO.bar", "foo.bar"),
        ("$UNDEFINED", "$UNDEFINED"),
        ("${UNDEFINED}", "${UNDEFINED}"),
        ("$$", "$"),
        ("$$FOO", "$FOO"),
        ("$$$FOO", "$foo"),
        ("pa$$word", "pa$word"),
        ("$", "$"),
        ("cost: 5$", "cost: 5$"),
        ("$1FOO", "$1FOO"),
        ("$_FOO", "$_FOO"),
        ("${FOO", "${FOO"),
        ("${bad-name}", "${bad-name}"),
        ("${}", "${}"),
        ("$EMPTY|", "|"),
        ("$DOLLAR", "$FOO"),  # values are not re-scanned
        ("no variables", "no variables"),
        ("", ""),
    ],
)
def test_interpolate(text: str, expected: str) -> None:
    """Verify `$NAME`, `${NAME}`, `$$`, longest-name tokenisation and unresolved names."""
    assert interpolate(text, ENV) == expected


def test_interpolate_accepts_a_lookup_function() -> None:
    """Verify a callable lookup is used as is."""
    assert interpolate("$A-$B", lambda name: {"A": "1"}.get(name)) == "1-$B"


def test_lookup_prefers_process_environment() -> None:
    """Verify Ring's order: process environment first, then env-file values."""
    lookup = make_lookup({"A": "file", "B": "file"}, environ={"A": "process"})
    assert interpolate("$A $B $C", lookup) == "process file $C"


def test_lookup_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify the default lookup reads the live process environment."""
    monkeypatch.setenv("RING_TEST_VAR", "live")
    assert interpolate("$RING_TEST_VAR", make_lookup({"RING_TEST_VAR": "file"})) == "live"


# ---- env file


def test_load_env_file(tmp_path: Path) -> None:
    """Verify the `--env-file` format: comments, blanks, first `=`, trimming, quotes."""
    path = tmp_path / ".env"
    path.write_text(
        "# a comment\n"
        "\n"
        "PLAIN=value\n"
        "  SPACED  =  padded  \n"
        'DQ="double quoted"\n'
        "SQ='single quoted'\n"
        "URL=postgres://u:p@h/db?sslmode=require&x=1\n"
        "EMPTY=\n"
        "MIXED=\"it's'\n"
        "   # indented comment\n"
        "export_ok=1\n",
        encoding="utf-8",
    )
    values, warnings = load_env_file(path)
    assert values == {
        "PLAIN": "value",
        "SPACED": "padded",
        "DQ": "double quoted",
        "SQ": "single quoted",
        "URL": "postgres://u:p@h/db?sslmode=require&x=1",
        "EMPTY": "",
        "MIXED": "\"it's'",
        "export_ok": "1",
    }
    assert warnings == []


def test_load_env_file_warns_on_bad_lines(tmp_path: Path) -> None:
    """Verify lines without `=` (or without a key) are skipped with a numbered warning."""
    path = tmp_path / "vars.env"
    path.write_text("A=1\nNOEQUALS\n=nokey\nB=2\n", encoding="utf-8")
    values, warnings = load_env_file(path)
    assert values == {"A": "1", "B": "2"}
    assert len(warnings) == 2
    assert warnings[0].startswith(f"Warning: Invalid env line 2 in '{path}': ")
    assert warnings[1].startswith(f"Warning: Invalid env line 3 in '{path}': ")


def test_load_env_file_unreadable(tmp_path: Path) -> None:
    """Verify a missing file warns and yields no values instead of failing."""
    values, warnings = load_env_file(tmp_path / "missing.env")
    assert values == {}
    assert len(warnings) == 1 and warnings[0].startswith("Warning: ")
    assert "missing.env" in warnings[0]


# ---- deployments


RAW: dict[str, Any] = {
    "name": "$APP",
    "namespace": "${NS}",
    "runtime": "$RUNTIME",
    "kind": "$KIND",
    "image": "nginx:$TAG",
    "command": ["sh", "-c", "echo $GREETING && echo $$HOME", 5],
    "environment": {"$KEY": "$VALUE", "SECRET": {"secretRef": "$SECRET_NAME"}, "N": 3},
    "config": {"image_pull_policy": "$POLICY", "server": "$REG", "username": "$USER_", "password": "$PASS",
               "image_pull_secret": "$SECRET_NAME"},
    "labels": {"app": "$APP"},
    "volumes": [{"type": "bind", "source": "$HOME_DIR", "destination": "/data"}],
    "ports": [{"published": 80, "target": 80, "host_ip": "$IP"}],
    "health_checks": [{"type": "http", "url": "http://localhost/$APP"}],
    "network": {"mode": "$MODE"},
}
VARS = {
    "APP": "web", "NS": "prod", "RUNTIME": "podman", "KIND": "job", "TAG": "1.25", "GREETING": "hi",
    "KEY": "K", "VALUE": "v", "SECRET_NAME": "s", "POLICY": "Never", "REG": "r.io", "USER_": "u", "PASS": "p",
    "HOME_DIR": "/home", "IP": "127.0.0.1", "MODE": "host",
}


def test_interpolate_deployment_follows_ring_field_list() -> None:
    """Verify exactly Ring's fields are interpolated and everything else is untouched."""
    original = copy.deepcopy(RAW)
    out = interpolate_deployment(RAW, VARS)
    assert original == RAW  # input not modified
    assert out["name"] == "web"
    assert out["namespace"] == "prod"
    assert out["image"] == "nginx:1.25"
    assert out["command"] == ["sh", "-c", "echo hi && echo $HOME", 5]
    assert out["environment"] == {"$KEY": "v", "SECRET": {"secretRef": "$SECRET_NAME"}, "N": 3}
    assert out["config"] == {"image_pull_policy": "Never", "server": "r.io", "username": "u", "password": "p",
                             "image_pull_secret": "$SECRET_NAME"}
    for untouched in ("runtime", "kind", "labels", "volumes", "ports", "health_checks", "network"):
        assert out[untouched] == RAW[untouched]


def test_interpolate_deployment_tolerates_missing_and_odd_fields() -> None:
    """Verify absent fields stay absent and non-string values are left for the decoder."""
    assert interpolate_deployment({"name": 5, "config": None, "environment": []}, VARS) == {
        "name": 5, "config": None, "environment": []}


# ---- configs


def write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return name


def payload(tmp_path: Path, lookup: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    definition = {"namespace": "$NS", "name": "$NAME", **fields}
    return build_config_payload("site", definition, tmp_path, lookup or {"NS": "prod", "NAME": "nginx", "PORT": "80"})


def test_config_requires_data_or_files(tmp_path: Path) -> None:
    """Verify the exact error when neither `data` nor `files` is set."""
    with pytest.raises(ConfigDefinitionError) as info:
        payload(tmp_path)
    assert str(info.value) == "config 'site': either 'data' or 'files' must be set"
    assert info.value.key == "site"
    with pytest.raises(ConfigDefinitionError):
        payload(tmp_path, files={})


@pytest.mark.parametrize(
    ("interpolate_flag", "expected"),
    [(None, '{"site.conf":"listen 80;"}'), (True, '{"site.conf":"listen 80;"}'),
     (False, '{"site.conf":"listen $PORT;"}')],
)
def test_inline_data_only(tmp_path: Path, interpolate_flag: bool | None, expected: str) -> None:
    """Verify inline data alone is sent as the raw string, interpolated unless `interpolate: false`."""
    fields: dict[str, Any] = {"data": '{"site.conf":"listen $PORT;"}', "labels": "tier=edge"}
    if interpolate_flag is not None:
        fields["interpolate"] = interpolate_flag
    assert payload(tmp_path, **fields) == {"namespace": "prod", "name": "nginx", "data": expected,
                                           "labels": "tier=edge"}


def test_inline_data_is_sent_raw_even_if_not_json(tmp_path: Path) -> None:
    """Verify without `files` the data string is not parsed client-side."""
    assert payload(tmp_path, data="not json $PORT")["data"] == "not json 80"


@pytest.mark.parametrize(
    ("interpolate_flag", "inline", "from_file"),
    [(None, "port 80", "listen $PORT;\n"), (True, "port 80", "listen 80;\n"),
     (False, "port $PORT", "listen $PORT;\n")],
)
def test_files_merge_with_data_per_interpolate_table(
    tmp_path: Path, interpolate_flag: bool | None, inline: str, from_file: str
) -> None:
    """Verify the merge and the interpolate table: data per string value, files only when true."""
    conf = write(tmp_path, "site.conf", "listen $PORT;\n")
    fields: dict[str, Any] = {"data": '{"inline": "port $PORT", "n": 1}', "files": {"site.conf": conf}}
    if interpolate_flag is not None:
        fields["interpolate"] = interpolate_flag
    out = payload(tmp_path, **fields)
    assert "labels" not in out
    assert json.loads(out["data"]) == {"inline": inline, "n": 1, "site.conf": from_file}


def test_files_without_data(tmp_path: Path) -> None:
    """Verify files alone become a compact JSON object, non-ASCII kept as is."""
    write(tmp_path, "a.txt", "héllo")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "b.txt", "b")
    out = payload(tmp_path, files={"a": "a.txt", "b": "sub/b.txt"})
    assert out["data"] == '{"a":"héllo","b":"b"}'


@pytest.mark.parametrize("data", ['["a"]', '"text"', "not json", "42"])
def test_data_must_be_an_object_when_merging(tmp_path: Path, data: str) -> None:
    """Verify the exact error when `data` cannot be merged with `files`."""
    conf = write(tmp_path, "x", "x")
    with pytest.raises(ConfigDefinitionError) as info:
        payload(tmp_path, data=data, files={"x": conf})
    assert str(info.value) == "'data' must be a JSON object to merge with 'files'"


def test_key_in_both_data_and_files(tmp_path: Path) -> None:
    """Verify the exact error for a key defined twice."""
    conf = write(tmp_path, "x", "x")
    with pytest.raises(ConfigDefinitionError) as info:
        payload(tmp_path, data='{"site.conf": "a"}', files={"site.conf": conf})
    assert str(info.value) == "key 'site.conf' is defined in both 'data' and 'files'"


def test_unreadable_file(tmp_path: Path) -> None:
    """Verify the exact error prefix for a file that cannot be read."""
    with pytest.raises(ConfigDefinitionError) as info:
        payload(tmp_path, files={"site.conf": "missing.conf"})
    expected = f"failed to read file '{tmp_path / 'missing.conf'}' for key 'site.conf': "
    assert str(info.value).startswith(expected)
    assert str(info.value) != expected


def test_config_definition_struct_is_accepted(tmp_path: Path) -> None:
    """Verify a decoded ConfigDefinition works like the raw mapping."""
    definition = ConfigDefinition(namespace="prod", name="c", data='{"k":"v"}')
    assert build_config_payload("c", definition, tmp_path, {}) == {"namespace": "prod", "name": "c",
                                                                    "data": '{"k":"v"}'}


def test_malformed_config_definition(tmp_path: Path) -> None:
    """Verify a wrongly shaped entry is a ConfigDefinitionError naming the entry."""
    with pytest.raises(ConfigDefinitionError, match="config 'bad'"):
        build_config_payload("bad", {"namespace": "p", "name": "n", "files": ["x"]}, tmp_path, {})
