"""Wait for a process we did not spawn to exit, without polling (Linux pidfd).

`pidfd_open(2)` returns a file descriptor that becomes readable when the
process exits, even when it is not our child: the engine's container init
process, for example. trio waits on it like on a socket, so an instance actor
learns of a crash the moment the kernel does, before the engine has even
emitted its `die` event.

A pidfd names one process, not a PID number, so it cannot be fooled by PID
reuse once opened. Before the fd is open a PID is only a number: callers check
that the process really is the one they mean with `belongs_to_container()`
after opening (the check reads /proc while the pidfd pins the identity: if the
process is gone by then, the pidfd is already readable).
"""

from __future__ import annotations

import os
import select
import signal as _signal

import trio

__all__ = ["PidFd", "belongs_to_container", "pidfd_supported"]


def pidfd_supported() -> bool:
    """True when this Python and kernel offer `pidfd_open` (Linux ≥ 5.3)."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        fd = os.pidfd_open(os.getpid())
    except OSError:
        return False
    os.close(fd)
    return True


class PidFd:
    """An open pidfd. Use as a context manager, or call `close()`.

    Raises ProcessLookupError from `open()` when no process has that PID (it
    already exited and was reaped).
    """

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self._fd: int | None = fd

    @classmethod
    def open(cls, pid: int) -> PidFd:
        if pid <= 0:
            raise ProcessLookupError(f"invalid pid {pid}")
        return cls(pid, os.pidfd_open(pid))

    @property
    def fileno(self) -> int:
        if self._fd is None:
            raise trio.ClosedResourceError("pidfd already closed")
        return self._fd

    def exited(self) -> bool:
        """True if the process has exited (non-blocking check)."""
        poller = select.poll()
        poller.register(self.fileno, select.POLLIN)
        return bool(poller.poll(0))

    async def wait(self) -> None:
        """Return once the process has exited.

        Cancellation leaves the pidfd open (close it yourself, or use `with`).
        """
        await trio.lowlevel.wait_readable(self.fileno)

    def send_signal(self, sig: int = _signal.SIGKILL) -> None:
        """Signal the process this fd names (never a later process with a reused PID)."""
        _signal.pidfd_send_signal(self.fileno, sig)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            # Wake (with ClosedResourceError) any task still waiting on the fd before it is reused.
            trio.lowlevel.notify_closing(fd)
            os.close(fd)

    def __enter__(self) -> PidFd:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def belongs_to_container(pid: int, container_id: str) -> bool:
    """True when process `pid` lives in the cgroup of container `container_id`.

    Container engines name the container's cgroup after its full id
    (`/docker/<id>`, `docker-<id>.scope`, `libpod-<id>`), for cgroup v1 and v2
    alike. False when /proc cannot tell us (other PID namespace, no access).
    """
    if len(container_id) < 12:
        return False
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as file:
            return container_id in file.read()
    except OSError:
        return False
