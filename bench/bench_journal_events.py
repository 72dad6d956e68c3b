"""What the live page's event stream costs the journal, side by side (no server, no I/O).

    python bench/bench_journal_events.py

Times ``Journal.start`` + ``finish`` (the journal's part of every request) with nobody on
``GET /__admin/events``, and with one client connected (each change queued for it, as the hub
does; the client's own serialisation runs in its task, not in the request's, and is not counted).
"""

from __future__ import annotations

import asyncio
import timeit

from mockserver.server.events import EventHub
from mockserver.server.journal import Journal

HEADERS = {"Content-Type": "application/json"}
ROUNDS = 200_000


def per_request(journal: Journal, after: object = None) -> float:
    def one() -> None:
        entry = journal.start("POST", "/api/gpt/", HEADERS)
        entry.status = 200
        entry.finish("eof")
        if after is not None:
            after()  # type: ignore[operator]

    return min(timeit.repeat(one, number=ROUNDS, repeat=5)) / ROUNDS * 1e9


async def main() -> None:
    quiet = per_request(Journal())
    watched = Journal()
    subscriber = EventHub(watched).subscribe()
    listened = per_request(watched, subscriber.pending.clear)
    print(f"journal start + finish, {ROUNDS} rounds, best of 5 (ns per request)")
    print(f"{'nobody listening':<28} | {quiet:8.0f}")
    print(f"{'one /__admin/events client':<28} | {listened:8.0f}   ({listened / quiet:.2f}x)")


if __name__ == "__main__":
    asyncio.run(main())
