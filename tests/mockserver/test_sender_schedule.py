"""The sender's schedule: each write is due at start + its offset on the loop clock.

No timed assertion: the deadlines the sender asks for are recorded and compared exactly, and
the shutdown wake-up is checked by what the waits return.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mockserver.server.journal import Journal
from mockserver.server.sender import OpenStreams, send_plan
from mockserver.wire.plan import ResponsePlan, Write


class RecordingStreams(OpenStreams):
    """Waits return at once; the deadlines asked for are kept, with the loop time of the ask."""

    def __init__(self) -> None:
        super().__init__()
        self.deadlines: list[float] = []
        self.asked_at: list[float] = []

    async def sleep_until(self, deadline: float) -> bool:
        self.deadlines.append(deadline)
        self.asked_at.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.003)  # a late wake-up: it must not push the next deadline back
        return True


class CancelRun:
    """Waits at ``start`` + each offset on one :class:`OpenStreams`, some cancelled once all of
    them wait: what woke (deadlines in wake order) and the heap's size just after the cancels."""

    def __init__(self, offsets: list[float], cancelled: set[int]) -> None:
        self.offsets = offsets
        self.cancelled = cancelled
        self.streams = OpenStreams()
        self.woken: list[float] = []
        self.heap_after_cancels = 0
        self.start = 0.0

    async def run(self) -> None:
        self.start = asyncio.get_running_loop().time()

        async def wait(deadline: float) -> None:
            if await self.streams.sleep_until(deadline):
                self.woken.append(deadline)

        tasks = [asyncio.create_task(wait(self.start + offset)) for offset in self.offsets]
        await asyncio.sleep(0)  # every wait is in the heap
        for number in sorted(self.cancelled):
            tasks[number].cancel()
        await asyncio.sleep(0)  # every cancel has been seen
        self.heap_after_cancels = len(self.streams._waits)
        await asyncio.gather(*tasks, return_exceptions=True)

    def kept(self) -> list[float]:
        """The deadlines not cancelled, earliest first: the order they must wake in."""
        return sorted(
            self.start + offset
            for number, offset in enumerate(self.offsets)
            if number not in self.cancelled
        )


async def test_write_deadlines_are_start_plus_offsets_not_a_sum_of_waits() -> None:
    delays = [0.0, 0.25, 0.5, 0.0, 0.125, 1.0]
    plan = ResponsePlan(writes=[Write(b"data: %d\n\n" % n, d) for n, d in enumerate(delays)])
    streams = RecordingStreams()
    entries = Journal()

    async def handle(request: web.Request) -> web.StreamResponse:
        return await send_plan(request, plan, streams, entries.start("POST", "/", {}))

    app = web.Application()
    app.router.add_post("/", handle)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/")
        assert await response.read() == plan.body
    offsets = [0.25, 0.75, 0.875, 1.875]  # the writes with a delay, at their recorded offsets
    start = streams.deadlines[0] - offsets[0]
    assert streams.deadlines == [start + offset for offset in offsets]
    assert start <= streams.asked_at[0]
    assert entries.last().ending == "eof"
    assert entries.last().bytes_sent == len(plan.body)


async def test_close_all_wakes_every_sleeper_with_false() -> None:
    streams = OpenStreams()
    loop = asyncio.get_running_loop()
    sleepers = [asyncio.create_task(streams.sleep_until(loop.time() + 3600)) for _ in range(3)]
    waiter = asyncio.create_task(streams.sleep(3600))
    await asyncio.sleep(0)
    streams.close_all()
    assert await asyncio.gather(*sleepers, waiter) == [False, False, False, False]
    assert streams.closing
    assert await streams.sleep_until(loop.time() + 3600) is False  # after shutdown: no wait


async def test_a_deadline_already_past_or_reached_does_not_wait() -> None:
    streams = OpenStreams()
    loop = asyncio.get_running_loop()
    assert await streams.sleep_until(loop.time() - 1) is True
    assert await streams.sleep(0) is True
    assert await streams.sleep(0.001) is True


async def test_a_cancelled_wait_leaves_no_timer_or_sleeper_behind() -> None:
    streams = OpenStreams()
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(streams.sleep_until(loop.time() + 3600))
    await asyncio.sleep(0)
    assert streams._waits and streams._tick is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not streams._waits
    assert streams._tick is None
    streams.close_all()  # nothing left to wake


async def test_waits_wake_in_deadline_order_and_never_before_their_deadline() -> None:
    """Deadlines asked in shuffled order (an earlier one after a later one re-arms the shared
    tick), some equal: every wait wakes at or after its deadline, earliest first."""
    streams = OpenStreams()
    loop = asyncio.get_running_loop()
    start = loop.time()
    offsets = [0.030, 0.010, 0.020, 0.010, 0.001, 0.025, 0.020, 0.002, 0.015, 0.030]
    woken: list[tuple[float, float]] = []

    async def wait(deadline: float) -> None:
        assert await streams.sleep_until(deadline) is True
        woken.append((deadline, loop.time()))

    await asyncio.gather(*(wait(start + offset) for offset in offsets))
    assert all(at >= deadline for deadline, at in woken)
    assert [deadline for deadline, _ in woken] == sorted(start + o for o in offsets)
    assert not streams._waits and streams._tick is None


async def test_cancelling_one_wait_leaves_the_others_on_time() -> None:
    streams = OpenStreams()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.02
    first, second, third = (
        asyncio.create_task(streams.sleep_until(deadline + n * 0.001)) for n in range(3)
    )
    await asyncio.sleep(0)
    first.cancel()  # the earliest: the tick armed for it still wakes the others
    assert await asyncio.gather(second, third) == [True, True]
    assert first.cancelled()
    assert loop.time() >= deadline + 0.002
    assert not streams._waits


async def test_cancelling_waits_in_the_middle_keeps_the_rest_in_deadline_order() -> None:
    # Deadlines asked in shuffled order make a heap that is not a sorted list; taking entries
    # out of its middle must leave a heap, or a later wait wakes before an earlier one.
    # (An order found by search: without the heap restored, the 6 ms wait's removal leaves a
    # later deadline at the top.)
    run = CancelRun([m * 0.002 for m in (31, 6, 23, 5, 27, 10, 2, 19, 14, 25, 39, 28)], {1})
    await run.run()
    assert run.woken == run.kept()
    assert not run.streams._waits


async def test_a_tick_wakes_what_is_due_within_the_clocks_resolution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A loop fires a timer up to one clock resolution early (about 15 ms on Windows): the tick
    # must then wake that wait, not re-arm for the same deadline again and again.
    from mockserver.server import sender

    monkeypatch.setattr(sender, "_CLOCK_RESOLUTION", 0.015)
    streams = OpenStreams()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60.0
    waiting = asyncio.create_task(streams.sleep_until(deadline))
    await asyncio.sleep(0)

    class EarlyClock:  # the loop as the tick sees it: 10 ms before the deadline
        def time(self) -> float:
            return deadline - 0.010

        def call_at(self, when: float, *args: object) -> asyncio.TimerHandle:
            raise AssertionError(f"re-armed for {when - deadline:+.3f} s")

    streams._disarm()  # the loop's timer, as if it had just fired
    streams._wake_due(EarlyClock())  # type: ignore[arg-type]
    assert await waiting is True
    assert not streams._waits


async def test_cancelled_waits_left_in_the_heap_are_skipped_and_the_rest_wake_in_order() -> None:
    # Fewer than half cancelled (the latest, the earliest and one between): they stay in the
    # heap until their deadline, and the tick passes over them without waking anything early
    # or out of order.
    run = CancelRun([m * 0.002 for m in (9, 3, 7, 1, 8, 2, 6, 4, 10, 5)], {0, 3, 6})
    await run.run()
    assert run.heap_after_cancels == len(run.offsets)  # left for the tick
    assert run.woken == run.kept()
    assert not run.streams._waits and run.streams._tick is None
    assert run.streams._cancelled == 0


async def test_a_mass_disconnect_leaves_no_more_cancelled_waits_than_live_ones() -> None:
    streams = OpenStreams()
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(streams.sleep_until(loop.time() + 3600 + n)) for n in range(1000)]
    await asyncio.sleep(0)
    for task in tasks[:600]:
        task.cancel()
    await asyncio.gather(*tasks[:600], return_exceptions=True)
    live = [wait for wait in streams._waits if not wait[2].done()]
    assert len(live) == 400
    assert len(streams._waits) <= 2 * len(live)
    for task in tasks[600:]:
        task.cancel()
    await asyncio.gather(*tasks[600:], return_exceptions=True)
    assert not streams._waits and streams._tick is None


async def test_the_heap_rebuilt_without_cancelled_waits_still_wakes_the_rest_in_order() -> None:
    # Three of five cancelled, so the heap is rebuilt; the rest were asked in an order that is
    # no sorted list: the rebuilt list must be made a heap again, or a later wait wakes first.
    run = CancelRun([m * 0.005 for m in (1, 5, 2, 6, 7)], {0, 3, 4})
    await run.run()
    assert run.heap_after_cancels == 2
    assert run.woken == run.kept()


async def test_each_rebuild_starts_the_count_of_cancelled_waits_again() -> None:
    # A count not reset by the rebuild would rebuild the heap on every later cancel (quadratic
    # again while live waits remain).
    streams = OpenStreams()
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(streams.sleep_until(loop.time() + 3600 + n)) for n in range(40)]
    await asyncio.sleep(0)
    for task in tasks[:21]:  # the 21st cancel rebuilds: 19 left
        task.cancel()
    await asyncio.gather(*tasks[:21], return_exceptions=True)
    assert (len(streams._waits), streams._cancelled) == (19, 0)
    tasks[21].cancel()
    await asyncio.gather(tasks[21], return_exceptions=True)
    assert (len(streams._waits), streams._cancelled) == (19, 1)  # left for the tick
    streams.close_all()
    await asyncio.gather(*tasks, return_exceptions=True)
