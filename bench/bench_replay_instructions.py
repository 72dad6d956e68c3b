"""Instructions per timed write of the mock server and the plain-sleep baseline. Prints figures.

    python bench/bench_replay_instructions.py [--streams N] [--speed S]

``bench_replay.py``'s errors and CPU times move with whatever else the machine runs; this counts
machine instructions, which other load does not change. Each server (the same two as
``bench_replay.py``: the mock replaying the timed cassette, start-up objects frozen, and the
plain aiohttp handler that sleeps until each chunk's absolute deadline) runs under valgrind's
callgrind twice, sending ``--streams`` streams of 10 and then of 50 events (recorded 20 ms
apart, replayed at ``--speed``, default 0.25: valgrind runs Python about 50x slower, and a
deadline it has already passed would skip the wait being counted). The difference divided by
the extra writes is the cost of one timed write: the loop's wake-up, the timer, the write and
whatever is noted about it. What would not cancel out is kept equal between the two runs:
both load both cassettes, without the cassette parse cache (the first run would fill it for
the second), and the mock is asked for each stream once before the counted ones (a replay
plan is built, and a decision memoised, on first use); the streams go one after another, so
every write has a wake-up of its own (streams at once share some, as many as valgrind's
slowness lets fall together, which moves from run to run); the server waits for the end on
its stdin, not on a polling timer that would wake the longer run more often. Needs
``valgrind`` on PATH; about three minutes. Instructions are not time (cache misses and
system calls' time do not show).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    CALLGRIND,
    CountedServer,
    collected_instructions,
    have_valgrind,
    serve_until_stdin_closes,
    settle_as_serve,
    write_stream_cassette,
)
from bench_replay import SERVERS, chunks, mock_app, plain_sleep_app
from bench_server import MODEL, encoded_request

from koala.request import build_payload, encode_payload

FEWER, MORE = 10, 50
_END = b"\r\n0\r\n\r\n"  # the last chunk of a chunked body


def payload(events: int) -> bytes:
    """The request the cassette of ``events`` events answers (the same length for both)."""
    prompt = f"Benchmark: replay {events:02d} timed events"
    return encode_payload(build_payload(MODEL, [{"role": "user", "content": prompt}]))


def write_cassettes(directory: Path) -> None:
    """Both cassettes, for both runs: loading them is start-up, which must cancel out."""
    for events in (FEWER, MORE):
        write_stream_cassette(
            directory / f"timed{events}.yaml",
            chunks(events),
            payload(events),
            generator="bench/bench_replay_instructions.py",
            description=f"{events} events 20 ms apart",
        )


def serve(kind: str, events: int, speed: float, work: Path) -> None:
    """One server in this process until its stdin is closed."""
    if kind == "mock":
        app = mock_app(work, speed)
        serve_until_stdin_closes(app, work / "port", lambda: settle_as_serve(app), access_log=None)
    else:
        serve_until_stdin_closes(plain_sleep_app(speed, events), work / "port", access_log=None)


async def read_streams(port: int, events: int, streams: int) -> int:
    """Ask for the stream of ``events`` events ``streams`` times, one connection after another;
    the complete ones."""
    request = encoded_request(port, payload(events))

    async def one() -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        received = b""
        while not received.endswith(_END):
            data = await reader.read(65536)
            if not data:
                break
            received += data
        writer.close()
        return received.startswith(b"HTTP/1.1 200") and received.endswith(_END)

    return sum([await one() for _ in range(streams)])


def count(kind: str, events: int, streams: int, speed: float, base: Path) -> int:
    """Instructions of one server process that sent ``streams`` streams of ``events`` events."""
    work = Path(tempfile.mkdtemp(dir=base))
    write_cassettes(work)
    command = [*CALLGRIND, __file__, "--serve", kind, str(events), str(speed), str(work)]
    server = CountedServer(command, work / "port", kind)
    with server as port:
        for either in (FEWER, MORE) if kind == "mock" else ():
            asyncio.run(read_streams(port, either, 1))  # first uses: the same in both runs
        complete = asyncio.run(read_streams(port, events, streams))
        if complete != streams:
            raise SystemExit(f"{kind}: {complete} of {streams} streams complete")
    return collected_instructions(server.stderr, kind)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--streams", type=int, default=8, help="one after another (default 8)")
    parser.add_argument("--speed", type=float, default=0.25, help="replay speed (default 0.25)")
    return parser.parse_args()


def main() -> int:
    if sys.argv[1:2] == ["--serve"]:  # the server's own process, under valgrind
        kind, events, speed, work = sys.argv[2:6]
        serve(kind, int(events), float(speed), Path(work))
        return 0
    args = parse_args()
    if not have_valgrind():
        return 1
    extra_writes = args.streams * (MORE - FEWER)
    print(
        f"instructions per timed write (callgrind; {args.streams} streams of {MORE} minus "
        f"{FEWER} events, {20 / args.speed:g} ms apart)"
    )
    per_write: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="koala-bench-") as temp:
        for kind in SERVERS:
            fewer, more = (
                count(kind, n, args.streams, args.speed, Path(temp)) for n in (FEWER, MORE)
            )
            per_write[kind] = (more - fewer) / extra_writes
            print(f"{kind:<12} {per_write[kind]:>10,.0f}")
    print(f"mock / plain sleep: {per_write['mock'] / per_write['plain sleep']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
