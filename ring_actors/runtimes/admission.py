"""Host-memory admission (spec: runtimes.md §8, manifest.md §9).

Immediately before creating a container or booting a VM, every runtime checks
that the memory the instance asks for fits in what the host has available right
now. Point in time, not a reservation; CPU is never gated.
"""

from __future__ import annotations

from msgspec import UNSET

from ring_actors.runtimes.errors import FailureKind, RuntimeFailure
from ring_actors.schemas.manifest import Resources
from ring_actors.schemas.quantities import parse_memory

__all__ = ["MEMINFO_PATH", "check_host_memory", "mem_available", "required_memory"]

MEMINFO_PATH = "/proc/meminfo"
_MIB = 1024 * 1024


def required_memory(resources: Resources | None) -> int | None:
    """Bytes the instance needs: `requests.memory`, else `limits.memory`, else None (not gated).

    Raises RuntimeFailure(CONFIG_ERROR) for an unparseable quantity (validation
    normally rejects those before they get here).
    """
    if resources is None:
        return None
    for block in (resources.requests, resources.limits):
        if block is not UNSET and block.memory is not UNSET:
            try:
                return parse_memory(block.memory)
            except ValueError as exc:
                raise RuntimeFailure(FailureKind.CONFIG_ERROR, str(exc)) from exc
    return None


def mem_available(path: str = MEMINFO_PATH) -> int:
    """The host's currently available memory in bytes (`MemAvailable` of /proc/meminfo).

    Reading procfs does not block on I/O, so this is safe to call from the event loop.
    Raises OSError when the file cannot be read or has no MemAvailable line.
    """
    with open(path, encoding="ascii") as file:
        for line in file:
            if line.startswith("MemAvailable:"):
                fields = line.split()
                unit = fields[2].lower() if len(fields) > 2 else "b"
                return int(fields[1]) * (1024 if unit == "kb" else 1)
    raise OSError(f"no MemAvailable in {path}")


def check_host_memory(name: str, resources: Resources | None, *, available: int | None = None) -> None:
    """Raise RuntimeFailure(INSUFFICIENT_RESOURCES) if `name` needs more memory than the host has.

    Args:
        name: the deployment name, quoted in the message.
        resources: the deployment's `resources` block (None = not gated).
        available: bytes available (default: read from /proc/meminfo now).
    """
    required = required_memory(resources)
    if required is None:
        return
    if available is None:
        try:
            available = mem_available()
        except OSError:
            return  # cannot measure: do not block the deployment on our own blindness
    if required > available:
        raise RuntimeFailure(
            FailureKind.INSUFFICIENT_RESOURCES,
            f"insufficient host memory for '{name}': needs {required // _MIB} MiB but only "
            f"{available // _MIB} MiB is available — free memory on the host or lower "
            "resources.requests.memory / resources.limits.memory",
        )
