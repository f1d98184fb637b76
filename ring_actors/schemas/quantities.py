"""Parsing of CPU, memory and duration strings (spec: manifest.md §9, §10.1)."""

from __future__ import annotations

import math
import re

_MEMORY_SUFFIXES = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
}
_MEMORY_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_CPU_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m)?$")
_DURATION_RE = re.compile(r"^([0-9]+)(ms|s)$")


def parse_cpu(text: str) -> int:
    """`500m` or `0.5` -> nanoCPUs. Raises ValueError on anything else (or zero)."""
    match = _CPU_RE.match(text.strip())
    if not match:
        raise ValueError(f"invalid CPU quantity {text!r} (expected e.g. '500m' or '0.5')")
    value = float(match.group(1))
    nano = value * (10**6 if match.group(2) else 10**9)
    if not math.isfinite(nano) or int(nano) <= 0:
        raise ValueError(f"invalid CPU quantity {text!r}: must be greater than zero")
    return int(nano)


def parse_memory(text: str) -> int:
    """`512Mi`, `1.5Gi`, `1G` or plain bytes -> bytes. Raises ValueError otherwise."""
    match = _MEMORY_RE.match(text.strip())
    if not match:
        raise ValueError(f"invalid memory quantity {text!r} (expected e.g. '512Mi', '1G' or bytes)")
    number, suffix = match.groups()
    if suffix is None and "." in number:
        raise ValueError(f"invalid memory quantity {text!r}: plain bytes must be an integer")
    value = int(float(number) * _MEMORY_SUFFIXES.get(suffix or "", 1))
    if value <= 0:
        raise ValueError(f"invalid memory quantity {text!r}: must be greater than zero")
    return value


def parse_duration(text: str) -> float:
    """`500ms` or `30s` -> seconds. `1m`, `1.5s` and `1h` are invalid, as in Ring."""
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise ValueError(f"invalid duration {text!r} (expected e.g. '500ms' or '30s')")
    value, unit = match.groups()
    return int(value) / 1000 if unit == "ms" else float(value)
