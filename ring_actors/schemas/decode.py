"""Typed decoding of request bodies and manifest entries into Structs.

Ring answers a JSON syntax error with a plain-text 400 and a shape error (missing
field, wrong type, unknown enum value, port > 65535) with a plain-text 422
(api.md §3.2). ring-actors does better (api.md §16): both are problem+json.

| Failure               | Status | Violation code                | property_path                |
|-----------------------|--------|-------------------------------|------------------------------|
| not JSON / truncated  | 400    | `request.body.malformed_json` | `$`                          |
| wrong shape (msgspec) | 422    | `request.body.invalid`        | from msgspec's `at $.x[0].y` |

`null` for an optional field means "absent", as for Ring's `Option<T>` fields
(Ring's CLI and dashboard send `"resources": null`, `"config": {"server": null}`):
such nulls are dropped before conversion, so the Structs keep using UNSET and
their defaults. A `null` for a required field is still an error.

The property path drops msgspec's leading `$.` (`$.ports[0].published` ->
`ports[0].published`), appends the field name of a "missing required field"
error, and, where msgspec hides a map key as `[...]`, recovers the key from the
input when it can (`environment[...]` -> `environment.PORT`).
"""

from __future__ import annotations

import functools
import re
from typing import Any, TypeVar, cast

import msgspec
import msgspec.inspect as mi

from ring_actors.schemas.problem import Problem, Violation, validation_problem

__all__ = [
    "INVALID_BODY",
    "MALFORMED_JSON",
    "BodyError",
    "decode_body",
    "decode_manifest_entry",
]

T = TypeVar("T")

MALFORMED_JSON = "request.body.malformed_json"
INVALID_BODY = "request.body.invalid"

_AT_PATH = re.compile(r"^(?P<msg>.*) - at `(?P<path>\$[^`]*)`$", re.DOTALL)
_AT_KEY = re.compile(r"^(?P<msg>.*) - at `key` in `(?P<path>\$[^`]*)`$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_GOT = re.compile(r"got `(?P<got>[a-z]+)`")
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


class BodyError(Exception):
    """The input could not be decoded; `problem` is the answer to send back."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem

    @property
    def status(self) -> int:
        return self.problem.status


@functools.cache
def _decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    """One decoder per target type, built on first use and reused (msgspec perf tip)."""
    return msgspec.json.Decoder(type_)


def decode_body(raw: bytes, type_: type[T]) -> T:
    """Decode a JSON request body into `type_`.

    Raises:
        BodyError: 400 problem for malformed JSON, 422 problem for a wrong shape.
    """
    try:
        return cast(T, _decoder(cast(Any, type_)).decode(raw))
    except msgspec.ValidationError as exc:
        if b"null" not in raw:  # fast path: nothing to forgive
            raise BodyError(_shape_problem(str(exc), lambda: _generic_json(raw))) from exc
        return _convert(_generic_json(raw), type_)
    except msgspec.DecodeError as exc:
        raise BodyError(_malformed_problem(str(exc))) from exc


def decode_manifest_entry(obj: Any, type_: type[T]) -> T:
    """Convert a parsed YAML/JSON value (the CLI's manifest entry) into `type_`.

    Strict like the API: a YAML number where a string is expected is an error
    (Ring: "quote numbers/bools in YAML").

    Raises:
        BodyError: 422 problem for a wrong shape.
    """
    return _convert(obj, type_)


def _convert(obj: Any, type_: type[T]) -> T:
    """Drop forgivable nulls, then convert; shape errors become a 422 BodyError."""
    cleaned = _drop_nulls(obj, _type_info(cast(Any, type_)))
    try:
        return msgspec.convert(cleaned, type_)
    except msgspec.ValidationError as exc:
        raise BodyError(_shape_problem(str(exc), lambda: cleaned)) from exc


@functools.cache
def _type_info(type_: Any) -> mi.Type:
    return mi.type_info(type_)


def _drop_nulls(obj: Any, info: mi.Type) -> Any:
    """A copy of `obj` without `null`s on optional Struct fields that cannot hold None."""
    if isinstance(info, mi.UnionType) and isinstance(obj, dict):
        info = _union_member(obj, info) or info
    if isinstance(info, mi.StructType) and isinstance(obj, dict):
        return _drop_struct_nulls(obj, info)
    if isinstance(info, mi.ListType) and isinstance(obj, list):
        return [_drop_nulls(item, info.item_type) for item in obj]
    if isinstance(info, mi.DictType) and isinstance(obj, dict):
        return {k: _drop_nulls(v, info.value_type) for k, v in obj.items()}
    return obj


def _drop_struct_nulls(obj: dict[Any, Any], info: mi.StructType) -> dict[Any, Any]:
    fields = {f.encode_name: f for f in info.fields}
    out: dict[Any, Any] = {}
    for key, value in obj.items():
        field = fields.get(key)
        if field is None:
            out[key] = value  # unknown keys are ignored by the Struct anyway
        elif value is None and not field.required and not _accepts_none(field.type):
            continue
        else:
            out[key] = _drop_nulls(value, field.type)
    return out


def _union_member(obj: dict[Any, Any], info: mi.UnionType) -> mi.Type | None:
    """The Struct a dict will decode to: the only Struct, or the one its tag selects."""
    structs = [t for t in info.types if isinstance(t, mi.StructType)]
    if len(structs) == 1:
        return structs[0]
    return next((t for t in structs if t.tag_field and obj.get(t.tag_field) == t.tag), None)


def _accepts_none(info: mi.Type) -> bool:
    if isinstance(info, mi.NoneType | mi.AnyType):
        return True
    return isinstance(info, mi.UnionType) and any(_accepts_none(t) for t in info.types)


def _malformed_problem(reason: str) -> Problem:
    message = f"request body is not valid JSON: {reason}"
    return Problem(
        title="Bad Request",
        status=400,
        detail=message,
        violations=[Violation("$", message, MALFORMED_JSON)],
    )


def _shape_problem(error: str, source: Any) -> Problem:
    """A 422 problem with one violation located from msgspec's error text."""
    path, message = _locate(error, source)
    return validation_problem([Violation(path, message, INVALID_BODY)])


def _locate(error: str, source: Any) -> tuple[str, str]:
    """Split a msgspec error into (property_path, message)."""
    message, json_path = error, "$"
    if match := _AT_KEY.match(error):
        message = f"{match['msg']} (for a map key)"
        json_path = match["path"]
    elif match := _AT_PATH.match(error):
        message, json_path = match["msg"], match["path"]
    segments = _segments(json_path)
    if missing := _MISSING.match(message):
        segments.append(missing["field"])
        message = f"missing required field '{missing['field']}'"
    if "..." in segments:
        segments = _recover_keys(segments, message, source)
    return _render(segments), message


def _segments(json_path: str) -> list[str]:
    """`$.ports[0].published` -> ['ports', '0', 'published'] (indices kept as digit strings)."""
    return [name or index for name, index in _SEGMENT.findall(json_path[1:])]


def _render(segments: list[str]) -> str:
    """['ports', '0', 'published'] -> `ports[0].published`; empty -> `$` (the whole body)."""
    out = ""
    for seg in segments:
        if seg.isdigit() or seg == "...":
            out += f"[{seg}]"
        else:
            out += f".{seg}" if out else seg
    return out or "$"


def _recover_keys(segments: list[str], message: str, source: Any) -> list[str]:
    """Replace the final `[...]` (a map value) by the first key whose value has the
    JSON type msgspec complained about. Only the simple, common case is handled
    (error on the map value itself); anything else keeps `[...]`.
    """
    got = _GOT.search(message)
    if segments[-1] != "..." or "..." in segments[:-1] or got is None:
        return segments
    try:
        container = _walk(_safe(source), segments[:-1])
    except (KeyError, IndexError, TypeError):
        return segments
    if not isinstance(container, dict):
        return segments
    for key, value in container.items():
        if _json_type(value) == got["got"]:
            return [*segments[:-1], str(key)]
    return segments


def _safe(source: Any) -> Any:
    """Evaluate a lazy source; never let recovery itself raise."""
    try:
        return source()
    except Exception:  # best-effort path recovery must never mask the real error
        return None


def _walk(obj: Any, segments: list[str]) -> Any:
    for seg in segments:
        obj = obj[int(seg)] if seg.isdigit() and isinstance(obj, list) else obj[seg]
    return obj


def _json_type(value: Any) -> str:
    """msgspec's name for the JSON type of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _generic_json(raw: bytes) -> Any:
    return msgspec.json.decode(raw)
