"""Tests for ring_actors.schemas.quantities (manifest.md §9, §10.1)."""

from __future__ import annotations

import pytest

from ring_actors.schemas.quantities import parse_cpu, parse_duration, parse_memory


@pytest.mark.parametrize(
    ("text", "nano"),
    [
        ("500m", 500_000_000),
        ("1500m", 1_500_000_000),
        ("0.5", 500_000_000),
        ("2", 2_000_000_000),
        ("1", 1_000_000_000),
        ("0.25m", 250_000),
        ("100.5m", 100_500_000),
        (" 250m ", 250_000_000),
    ],
)
def test_cpu_accepted(text: str, nano: int) -> None:
    """Verify cores and millicores convert to nanoCPUs."""
    assert parse_cpu(text) == nano


@pytest.mark.parametrize("text", ["", "m", "abc", "-1", "500M", "1e3", "1.", ".5", "0", "0m", "1 m", "2 cores", "0x10"])
def test_cpu_rejected(text: str) -> None:
    """Verify malformed, negative or zero CPU quantities raise ValueError naming the input."""
    with pytest.raises(ValueError, match="CPU quantity"):
        parse_cpu(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("536870912", 536_870_912),
        ("512Mi", 512 * 1024**2),
        ("1.5Gi", 3 * 1024**3 // 2),
        ("1G", 10**9),
        ("1K", 1000),
        ("1Ki", 1024),
        ("2Ti", 2 * 1024**4),
        ("3T", 3 * 10**12),
        ("0.5M", 500_000),
        ("64Mi", 64 * 1024**2),
    ],
)
def test_memory_accepted(text: str, size: int) -> None:
    """Verify binary and decimal suffixes and plain bytes."""
    assert parse_memory(text) == size


@pytest.mark.parametrize(
    "text", ["", "Mi", "512MB", "512mi", "512m", "1.5", "-1Gi", "0", "0Mi", "1 Gi", "1Pi", "Gi1", "1e9"]
)
def test_memory_rejected(text: str) -> None:
    """Verify unknown suffixes, fractional bytes, zero and negatives are rejected."""
    with pytest.raises(ValueError, match="memory quantity"):
        parse_memory(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30.0), ("0s", 0.0), ("0ms", 0.0), ("1000ms", 1.0), ("1s", 1.0), ("90s", 90.0)],
)
def test_duration_accepted(text: str, seconds: float) -> None:
    """Verify `<int>ms` and `<int>s` convert to seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1m", "1.5s", "1h", "", "s", "10", "-1s", "1 s", "1S", "1sec", "1ms5"])
def test_duration_rejected(text: str) -> None:
    """Verify Ring's narrow duration syntax: minutes, hours and fractions are invalid."""
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_cpu_below_one_nanocpu_is_rejected() -> None:
    """Verify a CPU quantity that rounds to 0 nanoCPUs is refused like `0`."""
    with pytest.raises(ValueError):
        parse_cpu("0.0000000001")


@pytest.mark.parametrize("parse", [parse_cpu, parse_memory, parse_duration])
def test_non_ascii_digits_are_rejected(parse: object) -> None:
    """Verify only ASCII digits are accepted, as Rust's number parsing does."""
    with pytest.raises(ValueError):
        parse("\u0663s" if parse is parse_duration else "\u0663")  # type: ignore[operator]
