"""A mass disconnect: how long the event loop is busy when every paced stream goes at once.

    python bench/bench_disconnect.py [--streams N ...]

Each paced stream of the mock server waits for its next write on the server's shared timer
(:class:`mockserver.server.sender.OpenStreams`). When a client goes away, aiohttp cancels its
handler and the wait with it (``serve`` and the pytest fixtures turn aiohttp's handler
cancellation on). This starts N such waits (deadlines an hour away, as a stalled or
slow stream has), cancels them all at once (a load generator killed, a network drop), and prints
the time until every cancelled task has finished, next to the same N tasks waiting in plain
``asyncio.sleep`` (the loop's own timers, the baseline). In process, no network; a few seconds.
Before cancelled waits were left for the timer (commit 02d7f2a), 16,000 streams took 7.7 s here
(each cancelled wait was taken out of the heap at once: quadratic).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mockserver.server.sender import OpenStreams

STREAMS = (1000, 4000, 16000)
AN_HOUR = 3600.0


async def settle_after_cancel(count: int, wait: Callable[[float], Awaitable[object]]) -> float:
    """Seconds from cancelling ``count`` tasks blocked in ``wait`` (deadlines spread over a
    second, an hour away) to the last of them finished."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = [
        asyncio.create_task(wait(start + AN_HOUR + n / count))  # type: ignore[arg-type]
        for n in range(count)
    ]
    await asyncio.sleep(0)  # every task is waiting
    started = time.perf_counter()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return time.perf_counter() - started


async def measure(count: int) -> tuple[float, float]:
    streams = OpenStreams()
    mock = await settle_after_cancel(count, streams.sleep_until)
    loop = asyncio.get_running_loop()
    plain = await settle_after_cancel(count, lambda at: asyncio.sleep(at - loop.time()))
    return mock, plain


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--streams", type=int, nargs="+", default=list(STREAMS))
    args = parser.parse_args()
    print("streams | OpenStreams waits | asyncio.sleep | ratio")
    for count in args.streams:
        mock, plain = asyncio.run(measure(count))
        ratio = mock / plain
        print(f"{count:>7} | {mock * 1e3:>14.1f} ms | {plain * 1e3:>10.1f} ms | {ratio:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
