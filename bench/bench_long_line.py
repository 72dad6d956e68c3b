"""Decoding one long event line: time and memory against its length (issue 8).

Run from the repository root: ``python bench/bench_long_line.py [--sizes 4,8,16,50] [--repeat R]``.

For each size N (MiB) and each stream shape, one event ``data: "<N MiB of x>"`` and a blank line
goes through ``EventStreamDecoder(max_event_size=N MiB + 64)`` (the cap raised to let it through):

- ``LF, one chunk``: the whole body in one ``feed``;
- ``LF, 64 KiB``: the body cut into 64 KiB chunks, as the provider reads it;
- ``CRLF, 64 KiB``: the same with CRLF line ends (another fast path);
- ``LF, 64 KiB, split``: the value written as two ``data:`` lines of N/2 each (the line-by-line
  path: each line is a JSON string of its own, so two values come out).

Printed side by side per row: the median seconds of R runs, seconds per MiB (flat when the cost
is linear), the baseline (``json.loads`` of the same value, already in memory: the least any
decoder must spend), the ratio decoder / baseline, and the peak memory that decoding allocates
(tracemalloc, in a separate run so that tracing does not slow the timed ones) as a multiple of the
line's length. Issue 8's target: a 50 MiB line in about a second, peak at most about 3x the line.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from koala.sse import EventStreamDecoder

CHUNK = 65536
MIB = 1024 * 1024


def body_for(shape: str, size: int) -> bytes:
    if shape.startswith("CRLF"):
        return b'data: "' + b"x" * size + b'"\r\n\r\n'
    if shape.endswith("split"):
        half = b'data: "' + b"x" * (size // 2) + b'"\n'
        return half + half + b"\n"
    return b'data: "' + b"x" * size + b'"\n\n'


def chunks_for(shape: str, body: bytes) -> list[bytes]:
    if "one chunk" in shape:
        return [body]
    return [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]


#: The table's columns: name and format.
COLUMNS = (("MiB", ">4"), ("shape", "<18"), ("decoder s", ">9"), ("s/MiB", ">6"),
           ("json.loads s", ">12"), ("ratio", ">6"), ("peak MB", ">8"),
           ("peak/line", ">9"))  # fmt: skip
SHAPES = ("LF, one chunk", "LF, 64 KiB", "CRLF, 64 KiB", "LF, 64 KiB, split")


def decode(chunks: list[bytes], max_event_size: int) -> list[Any]:
    decoder = EventStreamDecoder(max_event_size=max_event_size)
    values: list[Any] = []
    for chunk in chunks:
        values += decoder.feed(chunk)
    return values + decoder.close()


def timed(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times: list[float] = []
    result: Any = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
        del result
        result = None
    result = run()
    return statistics.median(times), result


def peak_bytes(run: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        result = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,8,16,50", help="line lengths in MiB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"one event of one long data line; median of {args.repeat} runs; peak by tracemalloc")
    header = " | ".join(f"{name:{align}}" for name, align in COLUMNS)
    print(f"{header}\n{'-' * len(header)}")
    for mib in sizes:
        size = mib * MIB
        cap = size + 64
        value = "x" * size
        text = json.dumps(value)
        baseline, _ = timed(lambda text=text: json.loads(text), args.repeat)  # type: ignore[misc]
        del text
        for shape in SHAPES:
            chunks = chunks_for(shape, body_for(shape, size))
            expected = [value[: size // 2]] * 2 if shape.endswith("split") else [value]

            run = functools.partial(decode, chunks, cap)
            seconds, values = timed(run, args.repeat)
            if values != expected:
                raise SystemExit(f"{mib} MiB, {shape}: decoded wrongly")
            del values
            peak = peak_bytes(run)
            print(
                f"{mib:>4} | {shape:<18} | {seconds:>9.3f} | {seconds / mib:>6.3f} | "
                f"{baseline:>12.3f} | {seconds / baseline:>5.1f}x | {peak / 1e6:>8.1f} | "
                f"{peak / size:>8.2f}x"
            )
        del value
    print("target (issue 8): 50 MiB in about 1 s, peak/line at most about 3x")


if __name__ == "__main__":
    main()
