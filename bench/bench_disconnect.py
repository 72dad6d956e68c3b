"""A mass disconnect: how long the event loop is busy when every paced stream goes at once.

    python bench/bench_disconnect.py [--streams N ...]

Each paced stream of the mock server waits for its next write on the server's shared timer
(:class:`mockserver.server.sender.OpenStreams`). When a client goes away, aiohttp cancels its
handler and the wait with it (``serve`` and the pytest fixtures turn aiohttp's handler
cancellation on). This starts N such waits (deadlines an hour away, as a stalled or
slow stream has), cancels them all at once (a load generator killed, a network drop), once
alone and once with N/3 other streams that stay (among them in deadline order), and prints
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


async def settle_after_cancel(
    count: int, wait: Callable[[float], Awaitable[object]], staying: int = 0
) -> float:
    """Seconds from cancelling ``count`` tasks blocked in ``wait`` (deadlines spread over a
    second, an hour away) to the last of them finished, while ``staying`` tasks among them
    (every third place in the deadline order) go on waiting; those are cancelled afterwards,
    untimed."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    total = count + staying
    tasks = [
        asyncio.create_task(wait(start + AN_HOUR + n / total))  # type: ignore[arg-type]
        for n in range(total)
    ]
    await asyncio.sleep(0)  # every task is waiting
    kept = set(range(0, total, 3)[:staying])
    leaving = [task for n, task in enumerate(tasks) if n not in kept]
    started = time.perf_counter()
    for task in leaving:
        task.cancel()
    await asyncio.gather(*leaving, return_exceptions=True)
    elapsed = time.perf_counter() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return elapsed


async def measure(count: int, staying: int) -> tuple[float, float]:
    streams = OpenStreams()
    mock = await settle_after_cancel(count, streams.sleep_until, staying)
    loop = asyncio.get_running_loop()
    plain = await settle_after_cancel(count, lambda at: asyncio.sleep(at - loop.time()), staying)
    return mock, plain


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--streams", type=int, nargs="+", default=list(STREAMS))
    args = parser.parse_args()
    print("leaving | staying | OpenStreams waits | asyncio.sleep | ratio")
    for count in args.streams:
        for staying in (0, count // 3):
            mock, plain = asyncio.run(measure(count, staying))
            print(
                f"{count:>7} | {staying:>7} | {mock * 1e3:>14.1f} ms | {plain * 1e3:>10.1f} ms "
                f"| {mock / plain:5.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
