"""Garbage collection per request in the mock server, by the young generation's threshold.

    python bench/bench_gc.py [--requests N] [--rounds R]

The mock server replays ``bench_server.py``'s 64-event cassette as ``koala-mock serve`` runs it
(journal and text access log on, start-up objects frozen), once with ``serve``'s collector
settings (:func:`mockserver.cli.main.tune_garbage_collector`: young collections every
:data:`~mockserver.cli.main.SERVING_GC_THRESHOLD` allocations) and once with CPython's default
threshold (700), each in its own process, over 16 and 128 keep-alive connections, rounds
alternating. The server times every collection with ``gc.callbacks`` on its thread's CPU clock
(not the wall clock: time spent waiting for a CPU on a shared machine is not in it). Printed
per level and setting: collections per generation, the collector's CPU time per request, and
throughput. Loopback only; about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import serve_forever
from bench_server import mock_app, raw_load, write_bench_cassette

SETTINGS = ("serve (tuned)", "default 700")
LEVELS = (16, 128)


class CollectionClock:
    """The collector's CPU time and collections per generation, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.thread_time()
            return
        generation = info["generation"]
        self.seconds[generation] += time.thread_time() - self._started
        self.collections[generation] += 1

    def reading(self) -> tuple[list[float], list[int]]:
        return list(self.seconds), list(self.collections)


def serve(setting: str, cassette_dir: str, control: Connection) -> None:
    from mockserver.cli.main import freeze_start_up_objects, tune_garbage_collector
    from mockserver.server.access_log import install_access_log
    from mockserver.server.state import cassettes

    sys.stderr = open(Path(cassette_dir) / "access.log", "w")  # noqa: SIM115 (process-long)
    app = mock_app(Path(cassette_dir))
    log_class = install_access_log(app, "text")

    def started(port: int) -> None:
        cassettes(app)
        if setting == SETTINGS[0]:
            tune_garbage_collector()
        else:
            freeze_start_up_objects()
        clock = CollectionClock()

        def answer_readings() -> None:  # one reading per message, until the pipe closes
            while True:
                try:
                    control.recv()
                except EOFError:
                    return
                control.send(clock.reading())

        threading.Thread(target=answer_readings, daemon=True).start()
        control.send(port)

    serve_forever(app, started, access_log_class=log_class)


#: One round: GC seconds and collections per generation, streams answered, seconds taken.
Round = tuple[list[float], list[int], int, float]


def one_round(
    setting: str, connections: int, cassette_dir: str, body_len: int, requests: int
) -> Round:
    """A new server process with ``setting``, measured over ``requests`` replays."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=serve, args=(setting, cassette_dir, theirs))
    process.start()
    try:
        url = f"http://127.0.0.1:{ours.recv()}/api/gpt/"
        asyncio.run(raw_load(url, body_len, connections, 500, 30.0))  # warm-up
        ours.send("reading")
        spent_before, counted_before = ours.recv()
        started = time.perf_counter()
        result = asyncio.run(raw_load(url, body_len, connections, requests, 60.0))
        elapsed = time.perf_counter() - started
        ours.send("reading")
        spent_after, counted_after = ours.recv()
    finally:
        process.kill()
        process.join()
    if result.errors:
        raise SystemExit(f"{setting}: {result.errors} errors")
    spent = [b - a for a, b in zip(spent_before, spent_after, strict=True)]
    collections = [b - a for a, b in zip(counted_before, counted_after, strict=True)]
    return spent, collections, result.streams, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=30_000, help="per round (default 30,000)")
    parser.add_argument("--rounds", type=int, default=2, help="per setting and level (default 2)")
    args = parser.parse_args()
    results: dict[tuple[str, int], list[Round]] = {}
    with tempfile.TemporaryDirectory(prefix="koala-bench-gc-") as temp:
        body = write_bench_cassette(Path(temp))
        for connections in LEVELS:
            for number in range(args.rounds):
                for setting in SETTINGS if number % 2 == 0 else SETTINGS[::-1]:
                    measured = one_round(setting, connections, temp, len(body), args.requests)
                    results.setdefault((setting, connections), []).append(measured)
    report(results, args.requests, args.rounds)
    return 0


def report(
    results: dict[tuple[str, int], list[Round]],
    requests: int,
    rounds: int,
) -> None:
    print(
        f"garbage collection in the mock server (as serve runs it), {requests} replays per "
        f"round, {rounds} alternating rounds; collector CPU time by gc.callbacks"
    )
    print(
        f"{'conns':>5} | {'setting':<14} | {'collections 0/1/2':>17} | {'GC/request':>10} | "
        f"{'streams/s':>9}"
    )
    print("-" * 68)
    for connections in LEVELS:
        for setting in SETTINGS:
            rows = results[(setting, connections)]
            per_request = statistics.median(sum(s) / n * 1e6 for s, _, n, _ in rows)
            rate = statistics.median(n / t for _, _, n, t in rows)
            counts = "/".join(str(sum(c[g] for _, c, _, _ in rows) // len(rows)) for g in range(3))
            print(
                f"{connections:>5} | {setting:<14} | {counts:>17} | {per_request:>7.1f} us | "
                f"{rate:>9.0f}"
            )


if __name__ == "__main__":
    sys.exit(main())
