"""Timed replay: how closely streams keep their recorded timing, next to plain sleeps.

    python bench/bench_replay.py [--rounds R] [--speed S] [--pin]

A generated cassette holds 50 events recorded 20 ms apart. The mock server replays it in
``replay`` mode at ``--speed`` (default 1, the recorded timing); the baseline is a plain aiohttp
handler that writes the same chunks, sleeping with ``asyncio.sleep`` until each one's absolute
deadline (start + offset / speed on the loop clock). Each server runs in its own process; the
client, in the main process, opens 1, 16 and 128 concurrent streams, one connection each, all
connections opened together, and timestamps every event with ``time.monotonic()`` as it
arrives (a raw asyncio protocol: per read it only counts the event ends). Rounds alternate
between the servers; the same client measures both. ``--pin`` puts the servers on CPU 0 and the
client on CPU 1; not the default: on a machine shared with other work a pinned process waits
behind whatever runs on its core (measured here: gap p99 over 100 ms pinned against 9-20 ms
not pinned, one stream, same load).

Both servers also note when each write left the handler (``StreamResponse.write`` wrapped in
the server process, the same wrapper for both, ``time.monotonic()``, the system-wide clock the
client reads too). That splits the error between the server (its writes' gaps) and the path to
the client (arrival minus write: the kernel, the client's own scheduling and reading).

Printed per level and server, over all rounds: the stream duration error (first to last event,
minus the recorded 980 ms / speed: median and worst) and the gap error (each inter-event gap
minus the recorded one, absolute) as the client sees it: median, p99 over every gap, p99 over
the gaps that start once every stream has begun (``steady``: the opening burst of requests
left out), and the lowest and highest p99 of single rounds; then the p99 of the gap error of
the server's writes and the p99 of the delivery delay. Targets at 128 streams (issue 11):
duration error median at most 2 ms, gap error p99 at most 5 ms. Loopback only; about 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from itertools import pairwise
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    event_stream_app,
    pin_to_cpu,
    serve_forever,
    settle_as_serve,
    write_stream_cassette,
)
from bench_server import encoded_request, request_body

from mockserver.wire.streams import encode_stream

EVENTS = 50
GAP = 0.020
LEVELS = (1, 16, 128)
SERVERS = ("plain sleep", "mock")
#: The targets at 128 streams, in seconds.
DURATION_TARGET = 0.002
GAP_P99_TARGET = 0.005


def chunks(events: int = EVENTS) -> list[tuple[float, bytes]]:
    return [(n * GAP, encode_stream([f" tok{n:02d}"])) for n in range(events)]


def write_timed_cassette(directory: Path, events: int = EVENTS) -> None:
    write_stream_cassette(
        directory / f"timed{events}.yaml",
        chunks(events),
        request_body(),
        generator="bench/bench_replay.py",
        description=f"{events} events 20 ms apart for the timed replay benchmark",
    )


# -- servers (each in its own process) ------------------------------------------------------------


def plain_sleep_app(speed: float, events: int = EVENTS) -> web.Application:
    timed = chunks(events)

    async def send(response: web.StreamResponse) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for at, data in timed:
            await asyncio.sleep(start + at / speed - loop.time())
            await response.write(data)

    return event_stream_app(send)


def mock_app(cassette_dir: Path, speed: float) -> web.Application:
    from mockserver.config import MockConfig
    from mockserver.server.app import create_app

    return create_app(MockConfig(cassette_dir=cassette_dir, mode="replay", speed=speed))


def _note_writes(writes: list[tuple[int, float]], heads: list[tuple[int, float]]) -> None:
    """Wrap ``StreamResponse.write`` and ``prepare``: every write appends (client port,
    time.monotonic()) to ``writes``, every prepared head to ``heads`` (both servers take their
    stream's start on the loop clock right after ``prepare``)."""
    from aiohttp import web_response

    plain_write = web_response.StreamResponse.write
    plain_prepare = web_response.StreamResponse.prepare

    def note(response: web.StreamResponse, noted: list[tuple[int, float]]) -> None:
        transport = response._req.transport if response._req is not None else None
        peer = transport.get_extra_info("peername") if transport is not None else None
        if peer:
            noted.append((peer[1], time.monotonic()))

    async def write(self: web.StreamResponse, data: Any) -> None:
        await plain_write(self, data)
        note(self, writes)

    async def prepare(self: web.StreamResponse, request: web.BaseRequest) -> Any:
        prepared = await plain_prepare(self, request)
        note(self, heads)
        return prepared

    web_response.StreamResponse.write = write  # type: ignore[method-assign]
    web_response.StreamResponse.prepare = prepare  # type: ignore[method-assign]


def serve(kind: str, cassette_dir: str, speed: float, pin: bool, control: Connection) -> None:
    """One server; each message on ``control`` is answered with the writes noted since."""
    if pin:
        pin_to_cpu(0)
    writes: list[tuple[int, float]] = []
    heads: list[tuple[int, float]] = []
    _note_writes(writes, heads)
    app = plain_sleep_app(speed) if kind == "plain sleep" else mock_app(Path(cassette_dir), speed)

    def hand_over() -> None:
        control.recv()
        control.send((writes[:], heads[:], time.process_time()))
        writes.clear()
        heads.clear()

    def started(port: int) -> None:
        if kind == "mock":
            settle_as_serve(app)
        control.send(port)
        asyncio.get_running_loop().add_reader(control.fileno(), hand_over)

    serve_forever(app, started, access_log=None)


@dataclass
class Server:
    process: BaseProcess
    port: int
    control: Connection

    cpu: float = 0.0

    def writes(self) -> tuple[dict[int, list[float]], dict[int, float], float]:
        """The times of the writes since the last call, per client port, the time each port's
        head was prepared, and the CPU time the server process used since (the first call:
        since it started)."""
        self.control.send("writes")
        if not self.control.poll(30):
            raise SystemExit("a server did not hand over its write times")
        noted, heads, cpu = self.control.recv()
        by_port: dict[int, list[float]] = {}
        for port, at in noted:
            by_port.setdefault(port, []).append(at)
        used, self.cpu = cpu - self.cpu, cpu
        return by_port, dict(heads), used


def start_server(kind: str, cassette_dir: Path, speed: float, pin: bool) -> Server:
    context = multiprocessing.get_context("spawn")
    mine, theirs = context.Pipe()
    process = context.Process(
        target=serve, args=(kind, str(cassette_dir), speed, pin, theirs), daemon=True
    )
    process.start()
    if not mine.poll(30):
        process.terminate()
        raise SystemExit(f"the {kind} server did not start")
    return Server(process, int(mine.recv()), mine)


# -- client ---------------------------------------------------------------------------------------


class _StreamClient(asyncio.Protocol):
    """One request on its own connection; the arrival time of every event (``\\n\\n``)."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.arrivals: list[float] = []
        self.status_ok = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._head = bytearray()
        self._in_body = False
        self._last = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self._in_body:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status_ok = self._head.startswith(b"HTTP/1.1 200")
            data = bytes(self._head[end + 4 :])
            self._in_body = True
        joined = self._last + data
        self.arrivals.extend([now] * joined.count(b"\n\n"))
        self._last = data[-1:]
        if len(self.arrivals) >= EVENTS or joined.endswith(b"\r\n0\r\n\r\n"):
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


@dataclass
class Timing:
    duration_errors: list[float] = field(default_factory=list)
    gap_errors: list[float] = field(default_factory=list)
    steady_gap_errors: list[float] = field(default_factory=list)
    round_p99s: list[float] = field(default_factory=list)
    server_gap_errors: list[float] = field(default_factory=list)
    delivery: list[float] = field(default_factory=list)
    first_late: list[float] = field(default_factory=list)
    last_late: list[float] = field(default_factory=list)
    cpu_per_stream: list[float] = field(default_factory=list)
    broken: int = 0

    def add_round(
        self, streams: list[tuple[list[float], list[float], float | None]], speed: float
    ) -> None:
        """One round: per stream, the client's arrival times, the server's write times and
        when the server prepared the stream's head (its start)."""
        gap = GAP / speed
        whole = [arrivals for arrivals, _, _ in streams if len(arrivals) == EVENTS]
        self.broken += len(streams) - len(whole)
        if not whole:
            return
        all_started = max(arrivals[0] for arrivals in whole)
        this_round = []
        for arrivals, writes, head in streams:
            if len(arrivals) != EVENTS:
                continue
            self.duration_errors.append(arrivals[-1] - arrivals[0] - (EVENTS - 1) * gap)
            for earlier, later in pairwise(arrivals):
                error = abs(later - earlier - gap)
                this_round.append(error)
                if earlier >= all_started:
                    self.steady_gap_errors.append(error)
            if len(writes) == EVENTS:
                self.server_gap_errors.extend(abs(b - a - gap) for a, b in pairwise(writes))
                self.delivery.extend(got - sent for got, sent in zip(arrivals, writes, strict=True))
                if head is not None:
                    self.first_late.append(writes[0] - head)
                    self.last_late.append(writes[-1] - head - (EVENTS - 1) * gap)
        self.gap_errors.extend(this_round)
        self.round_p99s.append(quantile(this_round, 0.99))


async def run_level(server: Server, streams: int, speed: float, timing: Timing) -> None:
    request = encoded_request(server.port)
    loop = asyncio.get_running_loop()
    connected = await asyncio.gather(
        *(
            loop.create_connection(lambda: _StreamClient(request), "127.0.0.1", server.port)
            for _ in range(streams)
        )
    )
    clients = [client for _, client in connected]
    await asyncio.wait_for(
        asyncio.gather(*(c.done for c in clients)), timeout=30 + EVENTS * GAP / speed
    )
    writes, heads, cpu = server.writes()
    timing.cpu_per_stream.append(cpu / streams)
    timing.add_round(
        [
            (c.arrivals if c.status_ok else [], writes.get(c.port, []), heads.get(c.port))
            for c in clients
        ],
        speed,
    )


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def median_ms(values: list[float]) -> str:
    return ms(statistics.median(values)) if values else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="per level and server (default 5)")
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed (default 1)")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="servers on CPU 0, the client on CPU 1 (default: not pinned)",
    )
    args = parser.parse_args()
    if args.pin:
        pin_to_cpu(1)
    results: dict[tuple[int, str], Timing] = {}
    with tempfile.TemporaryDirectory(prefix="koala-bench-") as temp:
        write_timed_cassette(Path(temp))
        servers = {kind: start_server(kind, Path(temp), args.speed, args.pin) for kind in SERVERS}
        for server in servers.values():
            server.writes()  # the CPU clock starts now, after start-up
        try:
            for level in LEVELS:
                for number in range(max(1, args.rounds)):
                    order = SERVERS if number % 2 == 0 else SERVERS[::-1]
                    for kind in order:
                        timing = results.setdefault((level, kind), Timing())
                        asyncio.run(run_level(servers[kind], level, args.speed, timing))
        finally:
            for server in servers.values():
                server.process.terminate()
                server.process.join(5)
    pinned = "servers on CPU 0, client on CPU 1" if args.pin else "not pinned"
    print(
        f"{EVENTS} events {GAP * 1000:g} ms apart at speed {args.speed:g}; {os.cpu_count()} CPUs, "
        f"{pinned}; {args.rounds} alternating rounds per level; times in ms"
    )
    print(
        "gap error as the client sees it: p50, p99, p99 once all streams have begun (steady), "
        "lowest-highest p99 of one round; server: p99 of its writes' gap error; delivery: p99 of "
        "arrival minus write; 1st/last late: median of the server's first and last write minus "
        "its deadline (head prepared + offset); CPU: the server process's CPU time per stream "
        "(median of rounds)"
    )
    header = (
        f"{'streams':>7} | {'server':<11} | {'dur p50':>7} | {'worst':>7} | {'gap p50':>7} | "
        f"{'gap p99':>7} | {'steady':>7} | {'rounds p99':>13} | {'server':>7} | "
        f"{'deliver':>7} | {'1st late':>8} | {'last late':>9} | {'CPU':>7} | broken"
    )
    print(header)
    print("-" * len(header))
    for level in LEVELS:
        for kind in SERVERS:
            t = results[(level, kind)]
            spread = f"{ms(min(t.round_p99s))}-{ms(max(t.round_p99s))}" if t.round_p99s else "-"
            print(
                f"{level:>7} | {kind:<11} | {ms(statistics.median(t.duration_errors)):>7} | "
                f"{ms(max(t.duration_errors, key=abs)):>7} | "
                f"{ms(quantile(t.gap_errors, 0.5)):>7} | "
                f"{ms(quantile(t.gap_errors, 0.99)):>7} | "
                f"{ms(quantile(t.steady_gap_errors, 0.99)):>7} | {spread:>13} | "
                f"{ms(quantile(t.server_gap_errors, 0.99)):>7} | "
                f"{ms(quantile(t.delivery, 0.99)):>7} | {median_ms(t.first_late):>8} | "
                f"{median_ms(t.last_late):>9} | "
                f"{ms(statistics.median(t.cpu_per_stream)):>7} | {t.broken:>6}"
            )
    mock = results[(128, "mock")]
    duration = abs(statistics.median(mock.duration_errors))
    gap, steady = (quantile(errors, 0.99) for errors in (mock.gap_errors, mock.steady_gap_errors))
    print(
        f"mock at 128 streams: duration error {ms(duration)} ms "
        f"(target <= {DURATION_TARGET * 1e3:g} ms), gap error p99 {ms(gap)} ms, steady "
        f"{ms(steady)} ms (target <= {GAP_P99_TARGET * 1e3:g} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
