"""``koala-mock demo``: the whole loop in one command (server, provider, streamed answer)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, TextIO

import aiohttp

from mockserver.cli.exit_codes import ExitCode
from mockserver.server.access_log import describe_source
from mockserver.testing.embedded import ServerAddress, journal_entries, start_server

if TYPE_CHECKING:
    from mockserver.config import MockConfig

__all__ = ["DEFAULT_PROMPT", "DEMO_LATENCY", "run_demo", "summary_line"]

DEFAULT_PROMPT = "Hello"
#: Seconds between synthetic events in the demo, so the answer visibly streams.
DEMO_LATENCY = 0.03


async def run_demo(
    config: MockConfig, messages: list[Any], model: str, out: TextIO, err: TextIO
) -> int:
    """Serve ``config`` on a free loopback port, stream the answer to ``out``, then a summary."""
    from koala import Koala, KoalaError
    from mockserver.server.app import create_app

    runner, address = await start_server(create_app(config), "127.0.0.1", 0)
    started = time.perf_counter()
    try:
        print(f"koala-mock demo: asking {address.api_endpoint}", file=err, flush=True)
        try:
            async for chunk in Koala.create_async_generator(
                model, messages, api_endpoint=address.api_endpoint
            ):
                out.write(chunk if isinstance(chunk, str) else json.dumps(chunk))
                out.flush()
        except KoalaError as exc:
            out.write("\n")
            print(f"koala-mock demo: the provider raised {type(exc).__name__}: {exc}", file=err)
            return ExitCode.FAILURE
        elapsed = time.perf_counter() - started
        out.write("\n")
        entry = await _last_journal_entry(address)
        print(summary_line(entry, elapsed), file=out, flush=True)
        return ExitCode.OK
    finally:
        await runner.cleanup()


async def _last_journal_entry(address: ServerAddress) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(address.url + "/__admin/requests", params={"limit": "1"}) as response,
    ):
        entries = journal_entries(await response.json())
    return entries[-1] if entries else {}


def summary_line(entry: dict[str, Any], elapsed: float) -> str:
    """``-- 12 events, 345 bytes, served by cassette greeting, 0.41 s`` from a journal entry."""
    served = entry.get("served_by")
    source = describe_source(served) if isinstance(served, dict) and served else "unknown"
    events, size = entry.get("events_sent", "?"), entry.get("bytes_sent", "?")
    return f"-- {events} events, {size} bytes, served by {source}, {elapsed:.2f} s"
