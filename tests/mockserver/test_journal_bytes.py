"""The journal's bound on stored bytes (request bodies, headers, response values)."""

from __future__ import annotations

import pytest
from conftest import HEADERS, ClientFactory

from koala import build_payload, encode_payload
from mockserver import Journal, MockConfig, create_app
from mockserver.cli.main import _config_from_args, build_parser
from mockserver.config import DEFAULT_JOURNAL_MAX_BYTES, MIN_JOURNAL_MAX_BYTES, ConfigError
from mockserver.server.journal import ENTRY_OVERHEAD, header_bytes, stored_size
from mockserver.server.state import JOURNAL

BOUND = MIN_JOURNAL_MAX_BYTES  # 1 MiB


def large_body(number: int, size: int) -> bytes:
    """A valid provider request whose prompt makes the body about ``size`` bytes."""
    prompt = f"request {number} " + "x" * size
    return encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": prompt}]))


def test_entries_are_dropped_oldest_first_to_stay_within_the_byte_bound() -> None:
    journal = Journal(max_bytes=BOUND)
    body = b"y" * 60_000
    for _ in range(200):
        entry = journal.start("POST", "/api/gpt/", {"Content-Type": "text/plain"})
        entry.raw_body = body
        entry.body_size = len(body)
        entry.finish("eof")
        assert journal.stored_bytes <= BOUND
    kept = list(journal)
    # 200 entries of about 60 KB do not fit in 1 MiB: only the newest ones, without a gap.
    assert 10 <= len(kept) < 20
    assert [e.number for e in kept] == list(range(201 - len(kept), 201))
    assert journal.stored_bytes == sum(e.stored_bytes for e in kept)
    assert journal.total == 200
    assert journal.usage() == {
        "entries": len(kept),
        "max_entries": 10_000,
        "bytes": journal.stored_bytes,
        "max_bytes": BOUND,
    }


def test_an_entry_counts_its_body_headers_values_and_event_times() -> None:
    journal = Journal()
    headers = {"Content-Type": "application/json", "X-Long": "v" * 1000}
    entry = journal.start("POST", "/api/gpt/", headers)
    assert entry.header_bytes == header_bytes(headers) == 12 + 16 + 6 + 1000
    entry.keep_json_body(b'{"a": "' + b"b" * 5000 + b'"}')
    entry.body_size = 5009
    entry.values = ["z" * 3000]
    entry.expect_events((1510, 3020))
    entry.sent_streamed(1510, 0.0)
    entry.sent_streamed(3020, 0.1)
    assert entry.event_times == [0.0, 0.1]
    entry.finish("eof")
    assert entry.stored_bytes == ENTRY_OVERHEAD + 1034 + 5009 + 3020 + 64
    assert journal.stored_bytes == entry.stored_bytes
    assert entry.body == {"a": "b" * 5000}  # decoding later keeps what was counted
    assert stored_size(entry) == entry.stored_bytes


def test_count_bound_dropped_entries_and_clear_give_their_bytes_back() -> None:
    journal = Journal(capacity=3)
    for _ in range(5):
        journal.start("GET", "/", {"A": "b" * 100}).finish("eof")
    assert [e.number for e in journal] == [3, 4, 5]
    assert journal.stored_bytes == sum(e.stored_bytes for e in journal)
    in_progress = journal.start("GET", "/", {})
    journal.clear()
    assert journal.stored_bytes == 0
    in_progress.finish("eof")  # finishing after the clear counts nowhere
    assert journal.stored_bytes == 0 and len(journal) == 0


async def test_many_large_bodies_stay_within_the_bound_and_health_shows_it(
    aiohttp_client: ClientFactory,
) -> None:
    app = create_app(MockConfig(cassette_dir=None, mode="synthetic", journal_max_bytes=BOUND))
    client = await aiohttp_client(app)
    for number in range(1, 201):  # 200 bodies of about 60 KB (the journal keeps up to 64 KiB)
        async with client.post(
            "/api/gpt/", data=large_body(number, 60_000), headers=HEADERS
        ) as response:
            assert response.status == 200
            await response.read()
    async with client.get("/__admin/health") as response:
        health = await response.json()
    usage = health["journal"]
    assert usage["max_bytes"] == BOUND and usage["max_entries"] == 10_000
    assert 0 < usage["bytes"] <= BOUND
    assert 5 <= usage["entries"] < 20
    async with client.get("/__admin/requests") as response:
        entries = (await response.json())["requests"]
    numbers = [e["number"] for e in entries]
    # The newest requests survive (the health request itself is not journaled).
    assert numbers == list(range(201 - len(numbers), 201))
    assert len(numbers) == usage["entries"]
    newest = entries[-1]["body"]["input"]
    assert newest.startswith("request 200 ")


async def test_bodies_too_large_to_keep_count_only_their_headers(
    aiohttp_client: ClientFactory,
) -> None:
    app = create_app(MockConfig(cassette_dir=None, mode="synthetic", journal_max_bytes=BOUND))
    client = await aiohttp_client(app)
    for number in range(200):  # 100 KB bodies: summarised, not kept
        async with client.post(
            "/api/gpt/", data=large_body(number, 100_000), headers=HEADERS
        ) as response:
            await response.read()
    async with client.get("/__admin/health") as response:
        usage = (await response.json())["journal"]
    assert usage["entries"] == 200
    assert usage["bytes"] < 200 * 20_000  # headers, overhead and values: no 100 KB bodies


def test_the_flag_the_default_and_the_minimum() -> None:
    parse = build_parser().parse_args
    assert _config_from_args(parse(["serve"])).journal_max_bytes == DEFAULT_JOURNAL_MAX_BYTES
    assert DEFAULT_JOURNAL_MAX_BYTES == 64 * 1024 * 1024
    flagged = _config_from_args(parse(["serve", "--journal-max-bytes", "2000000"]))
    assert flagged.journal_max_bytes == 2_000_000
    assert create_app(flagged)[JOURNAL].max_bytes == 2_000_000
    with pytest.raises(SystemExit):
        parse(["serve", "--journal-max-bytes", "1000"])
    with pytest.raises(ConfigError, match="journal_max_bytes"):
        MockConfig(cassette_dir=None, journal_max_bytes=1000)
