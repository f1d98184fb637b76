"""Client-side `$VAR` interpolation for `ring apply` (spec: manifest.md §2.2, §15).

The server never interpolates; the CLI does, after parsing YAML and before any
HTTP request. Differences from Ring, all from manifest.md §16:

- `${NAME}` is substituted as well as `$NAME` (Ring documents it but leaves it literal).
- `$$` is an escape for a literal `$` (Ring has none), so `pa$$word` sends `pa$word`.
- Names are tokenised, longest first: with only `FOO` defined, `$FOOBAR` stays
  `$FOOBAR` (Ring's text replacement would produce `<foo>BAR`).
- Substituted values are not re-scanned, so a value containing `$X` stays as is.

Scope: we follow Ring's explicit field list rather than "every string" so that the
same manifest means the same thing under both tools: `namespace`, `name`, `image`,
plain `environment` values, `config.image_pull_policy`, `config.server`,
`config.username`, `config.password` and every `command` argument. Map keys,
`labels`, `volumes`, `ports`, `health_checks`, `resources`, `secretRef` names,
`autoscale`, `network`, `kind` and `runtime` are never interpolated.

Unresolved names are left unchanged and are not an error.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from ring_actors.schemas.manifest import ConfigDefinition

__all__ = [
    "ConfigDefinitionError",
    "Env",
    "Lookup",
    "build_config_payload",
    "interpolate",
    "interpolate_deployment",
    "load_env_file",
    "make_lookup",
]

Lookup = Callable[[str], "str | None"]
Env = Mapping[str, str] | Lookup

# `$$`, `${NAME}` or `$NAME`; the greedy name gives longest-name tokenisation.
_TOKEN = re.compile(r"\$(?:(?P<escape>\$)|\{(?P<braced>[a-zA-Z][0-9a-zA-Z_]*)\}|(?P<bare>[a-zA-Z][0-9a-zA-Z_]*))")
_CONFIG_FIELDS = ("image_pull_policy", "server", "username", "password")
_QUOTES = ('"', "'")


class ConfigDefinitionError(Exception):
    """An inline `configs:` entry cannot be turned into a payload (CLI exits 1)."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key


def _resolver(env: Env) -> Lookup:
    if callable(env):
        return env
    return env.get


def interpolate(text: str, env: Env) -> str:
    """Substitute `$NAME` and `${NAME}` from `env`, turn `$$` into `$`, keep unresolved names.

    `env` is a mapping or a lookup function (see `make_lookup`).
    """
    lookup = _resolver(env)

    def substitute(match: re.Match[str]) -> str:
        if match["escape"]:
            return "$"
        value = lookup(match["braced"] or match["bare"])
        return match[0] if value is None else value

    return _TOKEN.sub(substitute, text)


def make_lookup(file_values: Mapping[str, str], environ: Mapping[str, str] | None = None) -> Lookup:
    """Ring's lookup order: the process environment first, then `--env-file` values."""
    process = os.environ if environ is None else environ

    def lookup(name: str) -> str | None:
        if name in process:
            return process[name]
        return file_values.get(name)

    return lookup


def load_env_file(path: str | os.PathLike[str]) -> tuple[dict[str, str], list[str]]:
    """Parse an `--env-file`: `KEY=VALUE` lines, `#` comments, blank lines skipped.

    Split at the first `=`; key and value are trimmed; one matching pair of
    surrounding `"` or `'` is removed from the value. Bad lines and an unreadable
    file produce warnings, never an error (as Ring).

    Returns:
        (values, warnings): warnings are ready-to-print lines.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [f"Warning: Could not read env file '{path}': {_reason(exc)}"]
    values: dict[str, str] = {}
    warnings: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip():
            warnings.append(f"Warning: Invalid env line {number} in '{path}': expected KEY=VALUE, got '{line}'")
            continue
        values[key.strip()] = _unquote(value.strip())
    return values, warnings


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in _QUOTES:
        return value[1:-1]
    return value


def _reason(exc: BaseException) -> str:
    """An OSError's strerror without the repeated path; other errors as text."""
    return getattr(exc, "strerror", None) or str(exc)


def interpolate_deployment(raw: Mapping[str, Any], lookup: Env) -> dict[str, Any]:
    """A copy of a raw deployment entry with Ring's field list interpolated.

    Non-string values are left alone (the decoder reports them); the input is not modified.
    """
    out = dict(raw)

    def sub(value: Any) -> Any:
        return interpolate(value, lookup) if isinstance(value, str) else value

    for field in ("namespace", "name", "image"):
        if field in out:
            out[field] = sub(out[field])
    if isinstance(out.get("environment"), Mapping):
        out["environment"] = {k: sub(v) for k, v in out["environment"].items()}  # secretRef dicts untouched
    if isinstance(out.get("config"), Mapping):
        config = dict(out["config"])
        for field in _CONFIG_FIELDS:
            if field in config:
                config[field] = sub(config[field])
        out["config"] = config
    if isinstance(out.get("command"), list):
        out["command"] = [sub(arg) for arg in out["command"]]
    return out


def build_config_payload(
    key: str,
    definition: ConfigDefinition | Mapping[str, Any],
    manifest_dir: str | os.PathLike[str],
    lookup: Env,
) -> dict[str, Any]:
    """The `POST /configs` body for one `configs:` entry (manifest.md §2.2).

    | `interpolate` | inline `data` | `files` contents |
    |---------------|---------------|------------------|
    | unset         | interpolated  | verbatim         |
    | `true`        | interpolated  | interpolated     |
    | `false`       | verbatim      | verbatim         |

    Raises:
        ConfigDefinitionError: with Ring's messages (neither data nor files, data
            not a JSON object when merging, a key in both, an unreadable file).
    """
    spec = _as_definition(key, definition)
    if spec.data is None and not spec.files:
        raise ConfigDefinitionError(f"config '{key}': either 'data' or 'files' must be set", key=key)
    if spec.files:
        data = _merged_data(key, spec, Path(manifest_dir), lookup)
    else:
        raw = spec.data or ""
        data = raw if spec.interpolate is False else interpolate(raw, lookup)
    payload: dict[str, Any] = {
        "namespace": interpolate(spec.namespace, lookup),
        "name": interpolate(spec.name, lookup),
        "data": data,
    }
    if spec.labels is not None:
        payload["labels"] = spec.labels
    return payload


def _as_definition(key: str, definition: ConfigDefinition | Mapping[str, Any]) -> ConfigDefinition:
    if isinstance(definition, ConfigDefinition):
        return definition
    try:
        return msgspec.convert(definition, ConfigDefinition)
    except msgspec.ValidationError as exc:
        raise ConfigDefinitionError(f"config '{key}': {exc}", key=key) from exc


def _merged_data(key: str, spec: ConfigDefinition, base: Path, lookup: Env) -> str:
    """Inline `data` object plus one entry per file, as a compact JSON object string."""
    merged = _data_object(key, spec, lookup)
    for entry, relative in spec.files.items():
        if entry in merged:
            raise ConfigDefinitionError(f"key '{entry}' is defined in both 'data' and 'files'", key=key)
        content = _read(key, entry, base / relative)
        merged[entry] = interpolate(content, lookup) if spec.interpolate is True else content
    return json.dumps(merged, ensure_ascii=False, separators=(",", ":"))


def _data_object(key: str, spec: ConfigDefinition, lookup: Env) -> dict[str, Any]:
    if spec.data is None:
        return {}
    try:
        parsed = json.loads(spec.data)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ConfigDefinitionError("'data' must be a JSON object to merge with 'files'", key=key)
    if spec.interpolate is False:
        return parsed
    return {k: interpolate(v, lookup) if isinstance(v, str) else v for k, v in parsed.items()}


def _read(key: str, entry: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigDefinitionError(
            f"failed to read file '{path}' for key '{entry}': {_reason(exc)}", key=key
        ) from exc
