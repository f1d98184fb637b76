"""The actor core: mailbox and one_for_one supervision."""

import pytest
import trio

from ring_actors.actors import IntensityExceeded, Mailbox, supervise


async def test_supervise_restarts_a_crashing_child_then_succeeds() -> None:
    attempts = []

    async def child() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("bug")

    await supervise("child", child, max_restarts=5)
    assert len(attempts) == 3


async def test_supervise_gives_up_past_the_intensity() -> None:
    async def child() -> None:
        raise RuntimeError("always")

    crashes = []

    async def on_crash(exc: BaseException, attempt: int) -> None:
        crashes.append(attempt)

    with pytest.raises(IntensityExceeded):
        await supervise("child", child, max_restarts=2, on_crash=on_crash)
    assert crashes == [1, 2, 3]


async def test_a_crash_does_not_cancel_siblings() -> None:
    sibling_done = trio.Event()

    async def sibling() -> None:
        await trio.sleep(0.05)
        sibling_done.set()

    async def bad() -> None:
        raise RuntimeError("x")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sibling)
        nursery.start_soon(lambda: _swallow(supervise("bad", bad, max_restarts=1)))
    assert sibling_done.is_set()


async def _swallow(coro) -> None:
    try:
        await coro
    except IntensityExceeded:
        pass


async def test_cancellation_is_not_a_crash() -> None:
    runs = []

    async def child() -> None:
        runs.append(1)
        await trio.sleep_forever()

    with trio.move_on_after(0.05):
        await supervise("child", child)
    assert runs == [1]


async def test_mailbox_drops_after_close() -> None:
    box: Mailbox[int] = Mailbox()
    box.send_nowait(1)
    box.close()
    box.send_nowait(2)
    assert box.receive_nowait() == 1
