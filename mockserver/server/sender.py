"""Carry a :class:`ResponsePlan` out over the network: the mock server's only writer.

A plan with nothing to pace goes out as one write (an ordinary response: about ten times faster
than a write per event). Otherwise the body is streamed write by write, with the plan's delays,
and the connection ends as the plan says. Every wait ends early when the server shuts down, so a
stalled stream never holds up shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import socket
import struct
import time
from collections.abc import Awaitable

from aiohttp import web

from mockserver.config import DEFAULT_MAX_GENERATED_BYTES
from mockserver.server.generation_budget import GenerationBudget
from mockserver.server.http_errors import json_error
from mockserver.server.journal import Ending, JournalEntry
from mockserver.wire.plan import ResponsePlan

__all__ = ["OpenStreams", "send_plan"]

log = logging.getLogger("mockserver")
#: The loop clock's resolution (asyncio's loops use time.monotonic).
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution
#: How long an aborting stream waits for already written bytes to leave before the reset.
_DRAIN_BEFORE_ABORT = 1.0


#: A wait in :class:`OpenStreams`' heap: its deadline, a number unique to it, its future.
_Wait = tuple[float, int, asyncio.Future[bool]]


class OpenStreams:
    """The streams being sent; :meth:`close_all` (on shutdown) ends every wait at once.
    ``budget`` bounds the bytes of generated answers among them.

    Every wait is on one shared tick: the waits sit in a heap of (deadline, number, future)
    and one loop timer is armed for the earliest; when it fires it wakes every wait that is due
    and arms itself for the next. With many streams that is one timer per loop moment instead
    of one per write, and the heap compares floats in C where the loop's own timer heap calls
    a Python ``__lt__`` per comparison.
    """

    def __init__(self, max_generated_bytes: int = DEFAULT_MAX_GENERATED_BYTES) -> None:
        self.budget = GenerationBudget(max_generated_bytes)
        self._closing = False
        self._waits: list[_Wait] = []
        self._numbers = itertools.count()  # breaks ties between equal deadlines
        self._cancelled = 0  # waits in the heap whose stream went away (see _cancelled_one)
        self._tick: asyncio.TimerHandle | None = None
        self._transports: set[asyncio.BaseTransport] = set()

    @property
    def count(self) -> int:
        return len(self._transports)

    @property
    def closing(self) -> bool:
        return self._closing

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; False when the wait was cut short by shutdown."""
        if self._closing:
            return False
        if seconds <= 0:
            return True
        return await self.sleep_until(asyncio.get_running_loop().time() + seconds)

    async def sleep_until(self, deadline: float) -> bool:
        """Wait until ``deadline`` on the loop's clock; False when shutdown cut the wait short.

        Absolute: a wake-up the loop delivers late shortens the next wait instead of pushing
        every later write back (relative waits add up each one's lateness). Never wakes before
        ``deadline``.
        """
        if self._closing:
            return False
        loop = asyncio.get_running_loop()
        if deadline <= loop.time():
            return True
        waiter: asyncio.Future[bool] = loop.create_future()
        wait = (deadline, next(self._numbers), waiter)
        heapq.heappush(self._waits, wait)
        if self._tick is None or deadline < self._tick.when():
            self._arm(loop, deadline)
        try:
            return await waiter
        finally:
            if waiter.cancelled():
                self._cancelled_one()

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self._disarm()
        self._tick = loop.call_at(deadline, self._wake_due, loop)

    def _disarm(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
        self._tick = None

    def _wake_due(self, loop: asyncio.AbstractEventLoop) -> None:
        """The tick: wake every wait whose deadline has come, then arm for the next one."""
        self._tick = None
        waits = self._waits
        # Due within the clock's resolution, as asyncio's own timers are: the loop fires a timer
        # that close (about 15 ms on Windows, 1 ns on Linux), and a tick that found nothing due
        # would re-arm for the same deadline and spin until the clock moved on.
        now = loop.time() + _CLOCK_RESOLUTION
        while waits and waits[0][0] <= now:
            waiter = heapq.heappop(waits)[2]
            if waiter.done():  # cancelled: its stream went away
                self._cancelled -= 1
            else:
                waiter.set_result(True)
        if waits:
            self._arm(loop, waits[0][0])

    def _cancelled_one(self) -> None:
        """Account for a cancelled wait (its client went away: ``serve`` has aiohttp cancel the
        handler then). It stays in the heap until its deadline comes (the tick skips it) or
        until a cancel finds cancelled waits to be half the heap, when the heap is rebuilt
        without them: the heap never holds much more than twice the most waits live at once,
        and a mass disconnect costs linear time (taking each wait out at once was quadratic:
        7.7 s of a blocked loop for 16,000 streams). The count is approximate (a rebuild can
        drop a wait whose cancel has not been counted yet), which only brings the next rebuild
        forward."""
        self._cancelled += 1
        waits = self._waits
        if self._cancelled * 2 <= len(waits):
            return
        waits[:] = [kept for kept in waits if not kept[2].done()]
        heapq.heapify(waits)
        self._cancelled = 0
        if not waits:
            self._disarm()

    def opened(self, transport: asyncio.BaseTransport | None) -> None:
        if transport is not None:
            self._transports.add(transport)

    def ended(self, transport: asyncio.BaseTransport | None) -> None:
        if transport is not None:
            self._transports.discard(transport)

    def close_all(self) -> None:
        """End every wait; close connections stuck behind a client that stopped reading."""
        self._closing = True
        self._disarm()
        waits, self._waits = self._waits, []
        self._cancelled = 0
        for _, _, waiter in waits:
            if not waiter.done():
                waiter.set_result(False)
        for transport in list(self._transports):
            if isinstance(transport, asyncio.WriteTransport) and transport.get_write_buffer_size():
                transport.abort()  # close() would wait for the buffer to drain


def send_plan(
    request: web.Request, plan: ResponsePlan, streams: OpenStreams, entry: JournalEntry
) -> Awaitable[web.StreamResponse]:
    """Send ``plan`` as the answer to ``request``, recording progress in ``entry`` (the coroutine
    that does it: no frame of its own on the hot path).

    A generated answer is sent only within the server's bound on bytes generated at once (else
    a JSON 503), and gives its bytes back when its stream ends, however it ends.
    """
    generated = plan.generated_size
    if not generated:
        return _send(request, plan, streams, entry)
    return _send_generated(request, plan, streams, entry, generated)


async def _send_generated(
    request: web.Request,
    plan: ResponsePlan,
    streams: OpenStreams,
    entry: JournalEntry,
    generated: int,
) -> web.StreamResponse:
    if not streams.budget.reserve(generated):
        return streams.budget.refusal(entry, generated)
    try:
        return await _send(request, plan, streams, entry)
    finally:
        streams.budget.release(generated)


async def _send(
    request: web.Request, plan: ResponsePlan, streams: OpenStreams, entry: JournalEntry
) -> web.StreamResponse:
    entry.status = plan.status
    entry.values = plan.values_for_journal
    if entry.values is None and plan.values is not None:
        entry.omitted_values = len(plan.values)
    entry.expect_events(plan.event_ends)
    body = plan.single_write
    if body is not None:
        single = web.Response(
            status=plan.status, reason=plan.reason, headers=plan.header_dict, body=body
        )
        try:
            await single.prepare(request)
        except ConnectionError:
            entry.finish_disconnected()
            return single
        except Exception as exc:
            return _unsendable(request, entry, exc)
        entry.sent(len(body))
        entry.finish("eof")
        return single
    if plan.first_byte_delay and not await streams.sleep(plan.first_byte_delay):
        return _closed(request, entry, "shutdown")
    response = web.StreamResponse(status=plan.status, reason=plan.reason, headers=plan.header_dict)
    transport = request.transport  # captured: it reads as None once the connection is lost
    streams.opened(transport)
    try:
        return await _stream(request, response, plan, streams, entry)
    except ConnectionError:
        entry.finish_disconnected()
        return response
    except Exception:  # a bug: the headers are out, so no JSON 500 can follow; cut the stream
        log.exception("mock server bug while streaming %s %s", request.method, request.path)
        _close_transport(request)
        entry.finish("server_bug")
        return response
    except asyncio.CancelledError:  # aiohttp cancels the handler when the client goes away
        if streams.closing:
            entry.finish("shutdown")
        else:
            entry.finish_disconnected()
        raise
    finally:
        streams.ended(transport)


async def _stream(
    request: web.Request,
    response: web.StreamResponse,
    plan: ResponsePlan,
    streams: OpenStreams,
    entry: JournalEntry,
) -> web.StreamResponse:
    try:
        await response.prepare(request)
    except ConnectionError:
        raise  # the caller records the client's hang-up
    except Exception as exc:
        return _unsendable(request, entry, exc)
    sent = 0
    clock = asyncio.get_running_loop().time
    # Each write is due at start + its offset (the sum of the delays so far) on the loop clock.
    started = due = clock()
    for write in plan.writes:
        if write.delay:
            due += write.delay
            if not await streams.sleep_until(due):
                _close_transport(request)
                entry.finish("shutdown")
                return response
        await response.write(write.data)
        sent += len(write.data)
        entry.sent_streamed(sent, clock() - started)
    if plan.ending == "eof":
        await response.write_eof()
    elif plan.ending == "close":
        _close_transport(request)
    elif plan.ending == "abort":
        await _reset_connection(request)
    elif plan.ending == "stall":
        stalled = await streams.sleep(plan.stall_seconds)
        _close_transport(request)
        if not stalled:
            entry.finish("shutdown")
            return response
    entry.finish(plan.ending)
    return response


def _unsendable(request: web.Request, entry: JournalEntry, exc: Exception) -> web.Response:
    """The answer to send when aiohttp refused ``response.prepare`` (a header value a check
    upstream let through): a bug of this server, so one log line and a JSON 500 in its place,
    and the journal says so, instead of an empty reply that the journal would call a 200."""
    log.error(
        "mock server bug: the answer to %s %r could not be sent: %s: %s",
        request.method,
        request.path,
        type(exc).__name__,
        exc,
    )
    entry.status = 500
    entry.finish("server_bug")
    return json_error(500, f"mock server bug: the answer could not be sent ({exc})")


def _closed(request: web.Request, entry: JournalEntry, why: Ending) -> web.StreamResponse:
    _close_transport(request)
    entry.finish(why)
    return web.Response(status=503)  # never reaches the client: the connection is closed


def _close_transport(request: web.Request) -> None:
    """FIN after the buffered bytes: the client sees the body end before it is complete."""
    if request.transport is not None:
        request.transport.close()


async def _reset_connection(request: web.Request) -> None:
    """TCP RST after the written bytes have left (SO_LINGER 0, then abort)."""
    transport = request.transport
    if transport is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _DRAIN_BEFORE_ABORT
    while transport.get_write_buffer_size() and loop.time() < deadline:
        await asyncio.sleep(0.005)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
