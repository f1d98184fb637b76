"""The instance actor: owns one instance slot's workload handle for its whole life.

Loop: create (or adopt) -> report Started -> await the exit (event-driven) or a
Stop -> report Exited -> wait for the deployment's decision (Restart after a
delay, Retire, Stop). A dead instance is removed during the back-off when there
is one; on an immediate restart, only once its replacement is running (or has
failed, or the actor is cancelled), so that its stop and removal do not compete
with the replacement's creation inside the engine.

While the instance is live the actor also runs its health-check probes: one
task per check the deployment asked for (`Probe`), each on its own interval,
concurrently and off any reconcile path; results go to the deployment as
`ProbeResult`. A `Replace` (health-check `restart`) removes the instance on
purpose and creates the next one at once.

Cancellation (server shutdown) leaves the workload alone: only a `Stop` message
removes it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import ClassVar

import trio

from ring_actors.actors import Mailbox
from ring_actors.instances import messages as msg
from ring_actors.instances import probes
from ring_actors.runtimes.base import ExitStatus, InstanceHandle, InstanceSpec, Runtime
from ring_actors.runtimes.errors import EngineUnavailable, FailureKind, RuntimeFailure
from ring_actors.schemas.manifest import HealthCheck
from ring_actors.store.db import utcnow

log = logging.getLogger(__name__)

SpecBuilder = Callable[[], Awaitable[InstanceSpec]]
Decision = msg.Restart | msg.Retire | msg.Stop
Inbound = Decision | msg.Vanished | msg.Probe | msg.Replace


class InstanceActor:
    remove_dead_after_replacement: ClassVar[bool] = True
    """On an immediate restart, remove the dead instance after its replacement is created.

    False removes it concurrently with the creation (the previous behaviour); a
    class attribute so that the crash-loop benchmark can compare both.
    """

    def __init__(
        self,
        slot: str,
        runtime: Runtime,
        build_spec: SpecBuilder,
        parent: Mailbox,
        *,
        handle: InstanceHandle | None = None,
        initial_delay: float = 0.0,
        stop_timeout: float = 10.0,
        replaced: bool = False,
        apply_timeout: float = 300.0,
    ) -> None:
        self.apply_timeout = apply_timeout
        self.slot = slot
        self.runtime = runtime
        self.build_spec = build_spec
        self.parent = parent
        self.inbox: Mailbox[Inbound] = Mailbox()
        self.handle = handle
        self.initial_delay = initial_delay
        self.stop_timeout = stop_timeout
        self._replaced = replaced or handle is not None
        self._probe = msg.Probe(())  # the checks the deployment wants run while live
        self._dead: InstanceHandle | None = None  # exited, removed once its replacement is created

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as cleanup:
                await self._loop(cleanup)
        except (trio.Cancelled, KeyboardInterrupt):
            raise
        except BaseException as exc:  # a bug here must not take the deployment down
            if isinstance(exc, BaseExceptionGroup):
                _, rest = exc.split((trio.Cancelled, KeyboardInterrupt))
                if rest is None:
                    raise  # only cancellation (shutdown) inside nested nurseries: not a failure
                exc = rest.exceptions[0] if len(rest.exceptions) == 1 else rest
            log.exception("instance actor %s failed", self.slot)
            self.parent.send_nowait(msg.ActorFailed(self.slot, self.handle, repr(exc)))

    async def _loop(self, cleanup: trio.Nursery) -> None:
        if self.initial_delay > 0 and await self._sleep_or_stop(self.initial_delay):
            self.parent.send_nowait(msg.Stopped(self.slot, None))
            return
        while True:
            if self.handle is None:
                try:
                    try:
                        spec = await self.build_spec()
                        with trio.move_on_after(self.apply_timeout):
                            self.handle = await self.runtime.create(spec)
                    finally:
                        # Created, failed or cancelled: the dead instance goes now in every case.
                        self._remove_dead(cleanup)
                    if self.handle is None:
                        # RING_APPLY_TIMEOUT: a half-made instance is found and removed by the
                        # safety net (a stray of this deployment that no slot owns).
                        raise RuntimeFailure(
                            FailureKind.APPLY_TIMEOUT,
                            f"Scheduler apply timed out after {self.apply_timeout:g} seconds",
                        )
                except RuntimeFailure as failure:
                    self.parent.send_nowait(msg.CreateFailed(self.slot, failure))
                    if await self._obey(await self._decision(), cleanup, None):
                        return
                    continue
                except EngineUnavailable as exc:
                    failure = RuntimeFailure(FailureKind.RUNTIME_ERROR, f"engine unavailable: {exc}")
                    self.parent.send_nowait(msg.CreateFailed(self.slot, failure))
                    if await self._obey(await self._decision(), cleanup, None):
                        return
                    continue
                self.parent.send_nowait(msg.Started(self.slot, self.handle, self._replaced))
            handle = self.handle
            outcome = await self._watch(handle)
            if isinstance(outcome, msg.Stop):
                await self._remove(handle)
                self.parent.send_nowait(msg.Stopped(self.slot, handle))
                return
            if isinstance(outcome, msg.Replace):
                # Intentional: the removal is ours, so it is never reported as an exit.
                if outcome.remove_first:
                    await self._remove(handle)
                else:
                    cleanup.start_soon(self._remove, handle)
                self.handle = None
                self._replaced = True
                continue
            self.parent.send_nowait(msg.Exited(self.slot, handle, outcome))
            if await self._obey(await self._decision(), cleanup, handle):
                return

    async def _obey(
        self, decision: Decision, cleanup: trio.Nursery, old: InstanceHandle | None
    ) -> bool:
        """Carry out the deployment's decision; True when the actor is done."""
        if isinstance(decision, msg.Restart):
            if old is not None:
                if decision.delay > 0 or not self.remove_dead_after_replacement:
                    cleanup.start_soon(self._remove, old)  # gone during the back-off
                else:
                    self._dead = old
            self.handle = None
            self._replaced = True
            if decision.delay > 0 and await self._sleep_or_stop(decision.delay):
                self.parent.send_nowait(msg.Stopped(self.slot, None))
                return True
            return False
        if isinstance(decision, msg.Retire):
            if old is not None and not decision.keep:
                await self._remove(old)
            return True
        # Stop
        if old is not None:
            await self._remove(old)
        self.parent.send_nowait(msg.Stopped(self.slot, old))
        return True

    async def _decision(self) -> Decision:
        while True:
            message = await self.inbox.receive()
            if isinstance(message, msg.Probe):
                self._probe = message
            elif isinstance(message, (msg.Restart, msg.Retire, msg.Stop)):
                return message

    async def _sleep_or_stop(self, delay: float) -> bool:
        """Back off for `delay`; True when a Stop arrived meanwhile."""
        with trio.move_on_after(delay):
            while True:
                message = await self.inbox.receive()
                if isinstance(message, (msg.Stop, msg.Retire)):
                    return True
                if isinstance(message, msg.Probe):
                    self._probe = message
        return False

    async def _watch(self, handle: InstanceHandle) -> ExitStatus | msg.Stop | msg.Replace:
        """Race the instance's exit against a Stop or Replace from the deployment; probe meanwhile."""
        result: ExitStatus | msg.Stop | msg.Replace | None = None

        async with trio.open_nursery() as race:
            probing = await race.start(self._probe_group, handle, self._probe)

            async def exit_watcher() -> None:
                nonlocal result
                result = await self._wait_exit(handle)
                race.cancel_scope.cancel()

            async def inbox_watcher() -> None:
                nonlocal result, probing
                while True:
                    message = await self.inbox.receive()
                    if isinstance(message, (msg.Stop, msg.Retire)):
                        result = msg.Stop()
                        race.cancel_scope.cancel()
                        return
                    if isinstance(message, msg.Replace):
                        result = message
                        race.cancel_scope.cancel()
                        return
                    if isinstance(message, msg.Vanished):
                        result = ExitStatus(None, removed=True, detected_at=trio.current_time())
                        race.cancel_scope.cancel()
                        return
                    if isinstance(message, msg.Probe) and message != self._probe:
                        self._probe = message
                        probing.cancel(reason="probe set changed")
                        probing = await race.start(self._probe_group, handle, message)

            race.start_soon(exit_watcher)
            race.start_soon(inbox_watcher)
        assert result is not None
        return result

    async def _probe_group(
        self,
        handle: InstanceHandle,
        probe: msg.Probe,
        *,
        task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """One task per check, all cancelled together through the scope handed back."""
        with trio.CancelScope() as scope:
            task_status.started(scope)
            if not probe.checks:
                return
            async with probes.open_probe_network(self.runtime) as network, trio.open_nursery() as group:
                for index, check in probe.checks:
                    group.start_soon(self._probe_loop, handle, index, check, probe.host_network, network)

    async def _probe_loop(
        self,
        handle: InstanceHandle,
        index: int,
        check: HealthCheck,
        host_network: bool,
        network: probes.ProbeNetwork,
    ) -> None:
        """Run one check at a fixed rate (its own `interval`), first right away.

        A probe that overruns its interval is followed at once by the next one;
        missed beats are skipped, never queued.
        """
        interval = probes.check_interval(check)
        due = trio.current_time()
        while True:
            try:
                outcome = await probes.run_check(
                    check, runtime=self.runtime, handle=handle, network=network, host_network=host_network
                )
            except Exception as exc:  # a probe bug must not take the instance actor down
                log.exception("probe %d of instance %s failed", index, handle.id[:12])
                now_text = utcnow()
                outcome = probes.ProbeOutcome("failed", f"probe error: {exc!r}", now_text, now_text)
            self.parent.send_nowait(
                msg.ProbeResult(
                    self.slot,
                    handle.id,
                    index,
                    type(check).__struct_config__.tag,
                    outcome.status,
                    outcome.message,
                    outcome.started_at,
                    outcome.finished_at,
                )
            )
            due = max(due + interval, trio.current_time())
            await trio.sleep_until(due)

    async def _wait_exit(self, handle: InstanceHandle) -> ExitStatus:
        """wait_exit, riding out engine restarts instead of inventing a crash."""
        delay = 0.2
        while True:
            try:
                return await self.runtime.wait_exit(handle)
            except EngineUnavailable:
                await trio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _remove_dead(self, cleanup: trio.Nursery) -> None:
        """Start removing the dead instance kept for after its replacement's creation, if any.

        Synchronous so that it also runs from a `finally` while cancelled: `_remove`
        shields itself before its first checkpoint, so the removal completes.
        """
        dead, self._dead = self._dead, None
        if dead is not None:
            cleanup.start_soon(self._remove, dead)

    async def _remove(self, handle: InstanceHandle) -> None:
        """Remove for good; shielded so a shutdown mid-removal cannot leave half a stop."""
        with trio.CancelScope(shield=True):
            with trio.move_on_after(self.stop_timeout + 30):
                for attempt in range(5):
                    try:
                        await self.runtime.remove(handle, timeout=self.stop_timeout)
                        return
                    except EngineUnavailable:
                        await trio.sleep(0.5 * (attempt + 1))
                    except Exception:
                        log.exception("removing instance %s failed", handle.id[:12])
                        await trio.sleep(0.5 * (attempt + 1))
