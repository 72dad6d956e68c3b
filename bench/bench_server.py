"""Replay throughput of the mock server against a one-write aiohttp baseline. Prints figures.

    python bench/bench_server.py [--requests N] [--seconds S] [--rounds R] [--client raw|aiohttp]

Both servers answer the same 64-event stream: the mock server replays it from a generated
cassette with no added latency (``speed=0``); the baseline is a minimal aiohttp handler that
writes the same pre-rendered bytes in one ``write()``. Each server runs in its own process
(pinned to CPU 0 where the OS allows), the load generator in this one (CPU 1), sending the
provider's real request over 1, 16 and 128 keep-alive connections: per level and server at
most ``--requests`` requests in ``--seconds`` seconds, split into ``--rounds`` rounds that
alternate between the servers; the round of median throughput is printed, with the median
server CPU time per stream (Linux) over all rounds: the figure other load moves least.

The default load generator is a bare ``asyncio.Protocol`` HTTP/1.1 keep-alive client (about
a third of a core at 16 connections here, while the server saturates its own), because aiohttp's
``ClientSession`` (``--client aiohttp``) costs more CPU per request than the baseline server
and would measure itself. Time to first event runs from sending the request to the first body
bytes. Loopback only; about 30 s.
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
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    event_stream_app,
    pin_to_cpu,
    serve_forever,
    settle_as_serve,
    write_stream_cassette,
)

from koala.request import API_PATH, build_headers, build_payload, encode_payload
from mockserver.wire.streams import encode_stream

EVENTS = 64
LEVELS = (1, 16, 128)
SERVERS = ("baseline", "mock")
PROMPT = "Benchmark: replay a 64-event answer"
MODEL = "gpt-4o-mini"
#: Where both servers answer (the chat API's path; bench/_common.event_stream_app).
BASELINE_PATH = API_PATH


def answer_values() -> list[str]:
    return [f" token{n:02d}" for n in range(EVENTS)]


def request_body() -> bytes:
    return encode_payload(build_payload(MODEL, [{"role": "user", "content": PROMPT}]))


def write_bench_cassette(directory: Path) -> bytes:
    """A 64-event cassette (one chunk per event, 10 ms apart as recorded) and its body."""
    events = [encode_stream([value]) for value in answer_values()]
    return write_stream_cassette(
        directory / "bench64.yaml",
        [(n * 0.01, event) for n, event in enumerate(events)],
        request_body(),
        generator="bench/bench_server.py",
        description="64 events for the replay benchmark",
    )


# -- servers (each in its own process) ------------------------------------------------------------


def baseline_app(body: bytes) -> web.Application:
    # The body in one write (the lambda hands back write's own coroutine: no extra frame).
    return event_stream_app(lambda response: response.write(body))


def mock_app(cassette_dir: Path) -> web.Application:
    from mockserver.config import MockConfig
    from mockserver.server.app import create_app

    return create_app(MockConfig(cassette_dir=cassette_dir, mode="replay", speed=0, latency=0))


def serve(kind: str, cassette_dir: str, body: bytes, port_out: Connection) -> None:
    pin_to_cpu(0)
    if kind == "baseline":
        app, options = baseline_app(body), {"access_log": None}
    else:
        # As `koala-mock serve` runs by default: the journal on, one access log line per
        # request on stderr (here a file, as when a user redirects it).
        from mockserver.server.access_log import install_access_log

        sys.stderr = open(Path(cassette_dir) / "access.log", "w")  # noqa: SIM115 (process-long)
        app = mock_app(Path(cassette_dir))
        options = {"access_log_class": install_access_log(app, "text")}

    def started(port: int) -> None:
        if kind == "mock":
            settle_as_serve(app)
        port_out.send(port)

    serve_forever(app, started, **options)


# -- load generator -------------------------------------------------------------------------------


@dataclass
class LevelResult:
    connections: int
    streams: int
    seconds: float
    first_event: list[float]
    errors: int
    #: The server process's CPU seconds (user + system) during the level, where measurable.
    server_cpu: float | None = None

    @property
    def streams_per_s(self) -> float:
        return self.streams / self.seconds if self.seconds else 0.0

    def server_cpu_us_per_stream(self) -> float:
        if self.server_cpu is None or not self.streams:
            return float("nan")
        return self.server_cpu / self.streams * 1e6

    def first_event_ms(self, quantile: float) -> float:
        if not self.first_event:
            return float("nan")
        ordered = sorted(self.first_event)
        if quantile == 0.5:
            return statistics.median(ordered) * 1000
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000


async def load(
    url: str, body_len: int, connections: int, requests: int, seconds: float
) -> LevelResult:
    headers = build_headers()
    payload = request_body()
    first_event: list[float] = []
    streams = errors = 0
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one() -> None:
            nonlocal streams, errors
            sent = time.perf_counter()
            async with session.post(url, data=payload) as response:
                first = await response.content.readany()
                got_first = time.perf_counter()
                size = len(first)
                while chunk := await response.content.readany():
                    size += len(chunk)
            if response.status == 200 and size == body_len:
                streams += 1
                first_event.append(got_first - sent)
            else:
                errors += 1

        for _ in range(min(connections, 8)):  # warm up the connections and the server
            await one()
        streams = errors = 0
        first_event.clear()
        remaining = requests
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                try:
                    await one()
                except aiohttp.ClientError:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return LevelResult(connections, streams, elapsed, first_event, errors)


def encoded_request(port: int, payload: bytes | None = None) -> bytes:
    """The provider's request as bytes on the wire (headers from ``build_headers``), with
    ``payload`` as its body (default: :func:`request_body`)."""
    payload = request_body() if payload is None else payload
    head = "".join(f"{name}: {value}\r\n" for name, value in build_headers().items())
    return (
        f"POST {BASELINE_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


@dataclass
class _Tally:
    """Shared by the connections of one level: the request budget and what came back."""

    remaining: int
    deadline: float
    streams: int = 0
    errors: int = 0
    first_event: list[float] = field(default_factory=list)

    def take(self) -> bool:
        if self.remaining <= 0 or time.perf_counter() >= self.deadline:
            return False
        self.remaining -= 1
        return True


def dechunked_size(body: bytes) -> int | None:
    """The payload size of a complete chunked body, or None when it is malformed."""
    total = position = 0
    try:
        while True:
            line_end = body.index(b"\r\n", position)
            size = int(body[position:line_end].split(b";", 1)[0], 16)
            if size == 0:
                return total
            total += size
            position = line_end + 2 + size + 2
    except ValueError:
        return None


class _KeepAliveClient(asyncio.Protocol):
    """One connection that sends the request again as soon as each answer is complete.

    A bare protocol (no stream reader, no parser objects) so the client costs less CPU per
    request than the servers it measures. The first answer on each connection is a warm-up.
    """

    def __init__(self, request: bytes, body_len: int, tally: _Tally) -> None:
        self.request = request
        self.body_len = body_len
        self.tally = tally
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.warm = False
        self.buffer = bytearray()
        self.head_end = -1
        self.length: int | None = None
        self.status_ok = False
        self.sent = self.first = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        if self.warm and not self.tally.take():
            self.transport.close()
            return
        self.buffer.clear()
        self.head_end = -1
        self.first = 0.0
        self.sent = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.head_end < 0:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            self.head_end = head_end + 4
            head = bytes(self.buffer[:head_end]).lower()
            self.status_ok = head.startswith(b"http/1.1 200")
            length = head.partition(b"content-length:")[2].split(b"\r\n", 1)[0]
            self.length = int(length) if length.strip() else None
        if not self.first and len(self.buffer) > self.head_end:
            self.first = time.perf_counter()
        size = self._complete_body_size()
        if size is None:
            return
        if self.warm:
            if self.status_ok and size == self.body_len:
                self.tally.streams += 1
                self.tally.first_event.append(self.first - self.sent)
            else:
                self.tally.errors += 1
        self.warm = True
        self._send()

    def _complete_body_size(self) -> int | None:
        body_size = len(self.buffer) - self.head_end
        if self.length is not None:
            return self.length if body_size >= self.length else None
        if not self.buffer.endswith(b"0\r\n\r\n"):
            return None
        return dechunked_size(bytes(self.buffer[self.head_end :]))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.tally.remaining > 0 and time.perf_counter() < self.tally.deadline:
            self.tally.errors += 1  # the server closed a connection we still meant to use
        if not self.done.done():
            self.done.set_result(None)


async def raw_load(
    url: str, body_len: int, connections: int, requests: int, seconds: float
) -> LevelResult:
    """The same load from a minimal HTTP/1.1 keep-alive client (much cheaper than aiohttp's)."""
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    request = encoded_request(port)
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    tally = _Tally(remaining=requests, deadline=started + seconds)
    clients = []
    for _ in range(connections):
        _, client = await loop.create_connection(
            lambda: _KeepAliveClient(request, body_len, tally), "127.0.0.1", port
        )
        clients.append(client)
    await asyncio.gather(*(client.done for client in clients))
    elapsed = time.perf_counter() - started
    return LevelResult(connections, tally.streams, elapsed, tally.first_event, tally.errors)


def median_round(rounds: list[LevelResult]) -> LevelResult:
    """The round of median throughput, carrying the median CPU per stream of all rounds."""
    middle = sorted(rounds, key=lambda r: r.streams_per_s)[len(rounds) // 2]
    cpu = [r.server_cpu_us_per_stream() for r in rounds if r.server_cpu is not None]
    if cpu and middle.streams:
        middle.server_cpu = statistics.median(cpu) * middle.streams / 1e6
    return middle


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(kind: str, cassette_dir: Path, body: bytes) -> tuple[BaseProcess, int]:
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=serve, args=(kind, str(cassette_dir), body, send), daemon=True)
    process.start()
    if not receive.poll(30):
        process.terminate()
        raise SystemExit(f"the {kind} server did not start")
    return process, int(receive.recv())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=20000, help="per level (default 20000)")
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="cap per level and server (default 5)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="alternating rounds per level; medians are printed (default 5)",
    )
    parser.add_argument(
        "--client",
        choices=("raw", "aiohttp"),
        default="raw",
        help="load generator: a minimal keep-alive HTTP/1.1 client (default; cheap enough not "
        "to be the bottleneck first) or aiohttp's ClientSession",
    )
    args = parser.parse_args()
    run_level = raw_load if args.client == "raw" else load
    rounds = max(1, args.rounds)
    per_round_requests = max(1, args.requests // rounds)
    per_round_seconds = args.seconds / rounds
    pin_to_cpu(1)
    results: dict[str, list[LevelResult]] = {kind: [] for kind in SERVERS}
    with tempfile.TemporaryDirectory(prefix="koala-bench-") as temp:
        cassette_dir = Path(temp)
        body = write_bench_cassette(cassette_dir)
        print(
            f"stream: {EVENTS} events, {len(body)} bytes; {os.cpu_count()} CPUs; "
            f"{args.client} client; per level and server: medians of {rounds} alternating rounds "
            f"of up to {per_round_requests} requests or {per_round_seconds:.2g} s"
        )
        servers = {kind: start_server(kind, cassette_dir, body) for kind in SERVERS}
        try:
            for level in LEVELS:
                rounds_of: dict[str, list[LevelResult]] = {kind: [] for kind in SERVERS}
                for number in range(rounds):
                    # Alternate the order, so neither server always runs right after the other.
                    order = SERVERS if number % 2 == 0 else SERVERS[::-1]
                    for kind in order:
                        process, port = servers[kind]
                        url = f"http://127.0.0.1:{port}{BASELINE_PATH}"
                        cpu_before = process_cpu_seconds(process.pid)
                        result = asyncio.run(
                            run_level(url, len(body), level, per_round_requests, per_round_seconds)
                        )
                        cpu_after = process_cpu_seconds(process.pid)
                        if cpu_before is not None and cpu_after is not None:
                            result.server_cpu = cpu_after - cpu_before
                        rounds_of[kind].append(result)
                for kind in SERVERS:
                    results[kind].append(median_round(rounds_of[kind]))
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.join(5)
    print_table(results)
    return 0


def print_table(results: dict[str, list[LevelResult]]) -> None:
    header = (
        f"{'conns':>5} | {'server':<8} | {'streams/s':>9} | {'events/s':>9} | "
        f"{'1st ev p50':>10} | {'1st ev p95':>10} | {'CPU/stream':>10} | {'streams':>7} | "
        f"{'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for index, level in enumerate(LEVELS):
        for kind in SERVERS:
            r = results[kind][index]
            print(
                f"{level:>5} | {kind:<8} | {r.streams_per_s:>9.0f} | "
                f"{r.streams_per_s * EVENTS:>9.0f} | {r.first_event_ms(0.5):>7.2f} ms | "
                f"{r.first_event_ms(0.95):>7.2f} ms | {r.server_cpu_us_per_stream():>7.0f} us | "
                f"{r.streams:>7} | {r.errors:>6}"
            )
    for level in (16, 128):
        index = LEVELS.index(level)
        base, mock = results["baseline"][index], results["mock"][index]
        ratio = mock.streams_per_s / base.streams_per_s if base.streams_per_s else float("nan")
        cpu_ratio = base.server_cpu_us_per_stream() / mock.server_cpu_us_per_stream()
        print(
            f"mock / one-write baseline at {level} connections: {ratio:.0%} by throughput, "
            f"{cpu_ratio:.0%} by server CPU per stream (target >= 90% for both)"
        )


if __name__ == "__main__":
    sys.exit(main())
