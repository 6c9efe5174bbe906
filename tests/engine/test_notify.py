"""The notifier and the read that the waiters of one change share."""

from __future__ import annotations

import asyncio

import pytest

from atoll.engine.notify import Notifier, SharedLook


class State:
    """A key's value, and a read of it that takes its value at the start and then blocks
    until released, as a store read on a worker thread would."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0
        self.release = asyncio.Event()
        self.fail = False

    async def read(self, key: str) -> int:
        self.reads += 1
        seen = self.value
        await self.release.wait()
        if self.fail:
            raise LookupError(key)
        return seen


async def settle() -> None:
    """Let every task that can run do so (a look, then the read it starts)."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_waiters_woken_by_one_change_share_one_read() -> None:
    async def scenario() -> tuple[list[int], int]:
        notifier, state = Notifier(), State()
        look = SharedLook(notifier, state.read)
        state.release.set()
        first = await asyncio.gather(*(look.look("job") for _ in range(5)))
        state.release.clear()
        state.value = 1
        notifier.notify("job")
        for listener, _ in first:
            assert await listener.wait(1.0)
        reads_before = state.reads
        woken = asyncio.gather(*(look.look("job") for _ in range(5)))
        await settle()
        state.release.set()
        again = await woken
        for listener, _ in again:
            listener.close()
        return [value for _, value in again], state.reads - reads_before

    values, reads = asyncio.run(scenario())
    assert values == [1] * 5
    assert reads == 1


def test_a_read_started_before_a_change_does_not_serve_a_later_listener() -> None:
    async def scenario() -> tuple[int, int, int, bool]:
        notifier, state = Notifier(), State()
        look = SharedLook(notifier, state.read)
        early = asyncio.ensure_future(look.look("job"))
        await settle()  # its read has started and taken the old value
        state.value = 1
        notifier.notify("job")
        late = asyncio.ensure_future(look.look("job"))
        await settle()
        state.release.set()
        (early_listener, early_value), (late_listener, late_value) = await asyncio.gather(
            early, late
        )
        # the early one missed nothing either: the change fired its listener
        early_fired = await early_listener.wait(0)
        late_listener.close()
        return early_value, late_value, state.reads, early_fired

    early_value, late_value, reads, early_fired = asyncio.run(scenario())
    assert late_value == 1
    assert reads == 2
    assert early_value == 0 and early_fired


def test_a_caller_that_goes_away_leaves_the_shared_read_to_the_others() -> None:
    async def scenario() -> int:
        notifier, state = Notifier(), State()
        look = SharedLook(notifier, state.read)
        leaving = asyncio.ensure_future(look.look("job"))
        staying = asyncio.ensure_future(look.look("job"))
        await settle()
        leaving.cancel()
        await settle()
        state.release.set()
        listener, value = await staying
        listener.close()
        assert state.reads == 1
        assert not notifier._listeners  # the one that left unregistered its listener
        return value

    assert asyncio.run(scenario()) == 0


def test_a_failed_read_fails_every_sharer_and_leaves_no_listener() -> None:
    async def scenario() -> list[BaseException | tuple[object, int]]:
        notifier, state = Notifier(), State()
        state.fail = True
        look = SharedLook(notifier, state.read)
        waiting = asyncio.gather(*(look.look("job") for _ in range(3)), return_exceptions=True)
        await settle()
        state.release.set()
        outcome: list[BaseException | tuple[object, int]] = list(await waiting)
        assert not notifier._listeners
        return outcome

    outcome = asyncio.run(scenario())
    assert all(isinstance(o, LookupError) for o in outcome)


def test_notify_wakes_every_listener_of_its_key_only() -> None:
    async def scenario() -> tuple[bool, bool]:
        notifier = Notifier()
        mine, other = notifier.listen("job"), notifier.listen("other")
        notifier.notify("job")
        woke = await mine.wait(1.0)
        other_woke = await other.wait(0.01)
        return woke, other_woke

    assert asyncio.run(scenario()) == (True, False)


@pytest.mark.parametrize("changes", [0, 3])
def test_announced_counts_every_notification(changes: int) -> None:
    notifier = Notifier()
    for _ in range(changes):
        notifier.notify("job")
    assert notifier.announced() == changes


def test_changes_made_here_are_relayed_and_those_heard_are_not() -> None:
    async def scenario() -> tuple[list[str], bool, bool]:
        relayed: list[str] = []
        notifier = Notifier(relay=relayed.append)
        here, there = notifier.listen("mine"), notifier.listen("theirs")
        notifier.notify("mine")
        # a change another replica announced wakes the waiters here, and goes no further
        notifier.heard("theirs")
        return relayed, await here.wait(1.0), await there.wait(1.0)

    assert asyncio.run(scenario()) == (["mine"], True, True)


def test_heard_all_wakes_every_listener_and_counts_as_a_change() -> None:
    async def scenario() -> tuple[bool, bool, int]:
        notifier = Notifier()
        one, two = notifier.listen("a"), notifier.listen("b")
        notifier.heard_all()
        return await one.wait(1.0), await two.wait(1.0), notifier.announced()

    assert asyncio.run(scenario()) == (True, True, 1)
