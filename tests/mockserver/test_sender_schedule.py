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
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not streams._sleepers
    streams.close_all()  # nothing left to wake
