"""Event-stream parser throughput: this provider's decoder against httpx-sse and the original.

Run from the repository root: ``python bench/bench_parser.py [--events N] [--repeat R]``.

Part 1, in-process (no network): the same N events, cut into 64 KiB chunks, for three streams
(``data: "tok"`` with LF, ``data: {"t": "tok"}`` with LF, ``data: "tok"`` with CRLF), decoded by

  (h) httpx-sse + json.loads: ``EventSource(httpx.Response(...)).iter_sse()`` over the chunks,
      ``json.loads(event.data)`` per event (the public API; it decodes text with httpx);
  (k) koala.sse: ``EventStreamDecoder().feed(chunk)`` per chunk, then ``close()``.

Rounds alternate (h, k, h, k, ...); it prints the median events/s of each and the ratio k/h.

Part 2, over HTTP: a server in a subprocess (so it does not share the client's event loop)
answers every POST with the same body of N events ``data: "tok"\\n\\n`` over loopback. The
client times each request from sending it to the last event (one keep-alive connection, so no
connection set-up):

  (a) original: the parser as PROTOCOL.md describes the original provider's
      (``async for line in response.content`` and ``json.loads(line[6:])`` per ``data: `` line);
  (b) provider: ``Koala._parse_event_stream(response)``;
  (c) raw:      ``response.content.iter_chunked(65536)``, bytes only, no parsing.

It prints the median events/s of R repetitions of each (interleaved) and the ratio (b)/(a).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import httpx
from aiohttp import web
from httpx_sse import EventSource
from startup_bare_app import serve_until_killed

from koala import Koala
from koala.sse import EventStreamDecoder

EVENT = b'data: "tok"\n\n'


# ---------------------------------------------------------------- part 1: in-process

CHUNK = 65536
#: name, one event, the target ratio over httpx-sse + json.loads (issue 11)
IN_PROCESS_STREAMS = (
    ("string events, LF", b'data: "tok"\n\n', 8.0),
    ("JSON-object events, LF", b'data: {"t": "tok"}\n\n', 3.0),
    ("string events, CRLF", b'data: "tok"\r\n\r\n', 3.0),
)


def chunked(body: bytes) -> list[bytes]:
    return [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]


def decode_httpx_sse(chunks: list[bytes]) -> list[Any]:
    response = httpx.Response(
        200, headers={"Content-Type": "text/event-stream"}, content=iter(chunks)
    )
    return [json.loads(event.data) for event in EventSource(response).iter_sse()]


def decode_koala(chunks: list[bytes]) -> list[Any]:
    decoder = EventStreamDecoder()
    values: list[Any] = []
    for chunk in chunks:
        values += decoder.feed(chunk)
    return values + decoder.close()


def in_process(events: int, repeat: int) -> None:
    print(
        f"in-process: {events:,} events in {CHUNK // 1024} KiB chunks, {repeat} alternating rounds"
    )
    print(f"{'stream':<24} {'httpx-sse+json ev/s':>20} {'koala.sse ev/s':>15} {'ratio':>7} target")
    for name, event, target in IN_PROCESS_STREAMS:
        chunks = chunked(event * events)
        expected = json.loads(event[6:].strip())
        rates: dict[str, list[float]] = {"h": [], "k": []}
        for _ in range(repeat):
            for key, decode in (("h", decode_httpx_sse), ("k", decode_koala)):
                start = time.perf_counter()
                values = decode(chunks)
                elapsed = time.perf_counter() - start
                if len(values) != events or values[-1] != expected:
                    raise SystemExit(f"{name}: {key} decoded {len(values)} events wrongly")
                rates[key].append(events / elapsed)
        h, k = statistics.median(rates["h"]), statistics.median(rates["k"])
        print(f"{name:<24} {h:>20,.0f} {k:>15,.0f} {k / h:>6.1f}x >= {target:g}x")


# ---------------------------------------------------------------- part 2: server (subprocess)


def serve(events: int) -> None:
    body = EVENT * events

    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(body=body, content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/api/gpt/", answer)
    asyncio.run(serve_until_killed(app, str, access_log=False))


# ---------------------------------------------------------------- part 2: the three readers


async def original_parser(response: aiohttp.ClientResponse) -> AsyncIterator[Any]:
    """What PROTOCOL.md says the original does."""
    async for line in response.content:
        if line.startswith(b"data: "):
            yield json.loads(line[6:])


async def count_original(response: aiohttp.ClientResponse) -> int:
    return sum([1 async for value in original_parser(response) if value == "tok"])


async def count_provider(response: aiohttp.ClientResponse) -> int:
    return sum([1 async for value in Koala._parse_event_stream(response) if value == "tok"])


async def count_raw(response: aiohttp.ClientResponse) -> int:
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
    return size // len(EVENT)


READERS: dict[str, Callable[[aiohttp.ClientResponse], Any]] = {
    "(a) original parser": count_original,
    "(b) provider parser": count_provider,
    "(c) raw iter_chunked": count_raw,
}


async def measure(url: str, events: int, repeat: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in READERS}
    async with aiohttp.ClientSession() as session:
        for _ in range(repeat):
            for name, reader in READERS.items():
                start = time.perf_counter()
                async with session.post(url, json={"input": "bench"}) as response:
                    counted = await reader(response)
                elapsed = time.perf_counter() - start
                if counted != events:
                    raise SystemExit(f"{name}: counted {counted} events, expected {events}")
                rates[name].append(events / elapsed)
    return rates


def report(rates: dict[str, list[float]], events: int, repeat: int) -> None:
    print(f"{events:,} events of {EVENT!r} ({events * len(EVENT):,} bytes), {repeat} repetitions")
    print(f"{'reader':<22} {'median ev/s':>14} {'min ev/s':>14} {'max ev/s':>14}")
    medians = {}
    for name, values in rates.items():
        medians[name] = statistics.median(values)
        print(f"{name:<22} {medians[name]:>14,.0f} {min(values):>14,.0f} {max(values):>14,.0f}")
    original, provider, raw = medians.values()
    print(f"(b)/(a) provider vs original parser: {provider / original:.1f}x (target >= 5x)")
    print(f"(c)/(b) raw reading vs provider parser: {raw / provider:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-http", action="store_true", help="part 1 (in-process) only")
    args = parser.parse_args()
    if args.serve:
        serve(args.events)
        return
    in_process(args.events, args.repeat)
    if args.no_http:
        return
    print()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--events", str(args.events)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/api/gpt/"
        rates = asyncio.run(measure(url, args.events, args.repeat))
    finally:
        server.terminate()
        server.wait(timeout=10)
    report(rates, args.events, args.repeat)


if __name__ == "__main__":
    main()
