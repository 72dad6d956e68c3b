"""The journal and the admin API (``/__admin/...``), and the Python helpers behind them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import HEADERS, PAYLOAD, Client, ClientFactory, chat

from koala import build_payload, encode_payload
from mockserver import FAULTS, Journal, MockConfig, create_app, journal, queue_fault, reset
from mockserver.cassettes.cassette import Cassette, Chunk, Interaction, write_cassette
from mockserver.server.admin import ADMIN_ENDPOINTS, admin_table
from mockserver.server.state import FAULT_QUEUE
from mockserver.wire.faults import FaultSpecError, fault_table
from mockserver.wire.streams import encode_stream


async def admin(client: Client, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    if method != "GET" and "json" not in kwargs:
        kwargs.setdefault("headers", {"Content-Type": "application/json"})
    async with client.request(method, f"/__admin/{path}", **kwargs) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def test_health(client: Client) -> None:
    await chat(client)
    status, health = await admin(client, "GET", "health")
    assert status == 200
    assert health["status"] == "ok" and health["mode"] == "auto" and health["requests"] == 1


async def test_requests_journal_what_was_sent_and_served(client: Client) -> None:
    await chat(client)
    await chat(client, **{"X-Koala-Mock-Fault": "truncate;events=1"})
    status, listing = await admin(client, "GET", "requests")
    assert status == 200 and listing["count"] == 2
    first, second = listing["requests"]
    assert first["body"] == PAYLOAD and first["verdict"]["ok"] is True
    assert first["headers"]["Visitor-ID"] == "abcdefghij0123456789"
    assert first["served_by"] == {"source": "synthetic"}
    assert first["events_sent"] == len(first["values"]) and first["bytes_sent"] > 0
    assert first["status"] == 200 and first["client_disconnected"] is False
    assert second["fault"] == "truncate;events=1" and second["served_by"]["source"] == "fault"
    assert second["events_sent"] == 1 and second["ending"] == "close"


async def test_requests_filter_limit_and_clear(client: Client) -> None:
    await chat(client)
    async with client.get("/chat"):
        pass
    _, only_api = await admin(client, "GET", "requests", params={"path": "/api/gpt/"})
    assert [r["path"] for r in only_api["requests"]] == ["/api/gpt/"]
    _, last = await admin(client, "GET", "requests", params={"limit": "1"})
    assert [r["path"] for r in last["requests"]] == ["/chat"]
    status, error = await admin(client, "GET", "requests", params={"limit": "x"})
    assert status == 400 and "limit" in error["error"]
    _, cleared = await admin(client, "DELETE", "requests")
    assert cleared == {"cleared": 2}
    _, listing = await admin(client, "GET", "requests")
    assert listing["count"] == 0  # admin calls are not journaled


async def test_a_rejected_request_is_journaled_with_its_verdict(client: Client) -> None:
    async with client.post("/api/gpt/", data=b"{", headers=HEADERS) as response:
        assert response.status == 400
    entry = journal(client.app).last()
    assert entry.status == 400 and entry.verdict is not None
    assert entry.verdict["errors"][0]["field"] == "body"
    assert entry.to_json()["body"] == "{"


async def test_queued_faults_serve_the_next_requests(client: Client) -> None:
    status, queued = await admin(
        client,
        "POST",
        "faults",
        json={"fault": "rate_limit", "times": 2, "params": {"retry_after": 3}},
    )
    assert status == 201 and queued["queued"]["remaining"] == 2
    _, listing = await admin(client, "GET", "faults")
    assert listing["queue"][0]["fault"] == "rate_limit"
    assert {f["name"] for f in listing["catalogue"]} == set(FAULTS)
    assert all(f["description"] and f["provider"] for f in listing["catalogue"])
    assert [await chat(client) for _ in range(3)] == [429, 429, 200]


async def test_fault_given_as_a_spec_string(client: Client) -> None:
    status, _ = await admin(client, "POST", "faults", json={"fault": "server_error;status=503"})
    assert status == 201
    assert await chat(client) == 503


async def test_clearing_the_fault_queue(client: Client) -> None:
    await admin(client, "POST", "faults", json={"fault": "bot_detected", "times": 5})
    _, cleared = await admin(client, "DELETE", "faults")
    assert cleared == {"cleared": 1}
    assert await chat(client) == 200


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "not valid JSON"),
        (b"[1]", "JSON object"),
        (b'{"fault": "meteor"}', "unknown fault 'meteor'"),
        (b'{"fault": 3}', "fault"),
        (b'{"fault": "stall", "params": {"seconds": 3600}}', "above the maximum"),
        (b'{"fault": "stall", "params": {"minutes": 1}}', "no parameter 'minutes'"),
        (b'{"fault": "stall", "params": []}', "params"),
        (b'{"fault": "stall", "times": 0}', "times"),
        (b'{"fault": "stall", "times": true}', "times"),
        (b'{"fault": "stall", "when": "now"}', "unknown keys"),
        # json.loads alone keeps the last of repeated keys: which one was meant is unknown.
        (b'{"fault": "stall", "fault": "bot_detected"}', "key 'fault' twice"),
        (b'{"fault": "stall", "params": {"seconds": 1, "seconds": 2}}', "key 'seconds' twice"),
    ],
)
async def test_bad_admin_input_is_a_json_400(client: Client, body: bytes, problem: str) -> None:
    status, error = await admin(client, "POST", "faults", data=body)
    assert status == 400
    assert problem in error["error"]
    assert len(client.app[FAULT_QUEUE]) == 0


async def test_a_key_given_twice_is_named_shortly(client: Client) -> None:
    status, error = await admin(client, "POST", "faults", data=b'{"times": 1, "times": 2}')
    assert status == 400
    assert error["error"] == "the body gives the key 'times' twice in one object; give it once"
    long_key = "k" * 100_000
    twice = f'{{"{long_key}": 1, "{long_key}": 2}}'.encode()
    status, error = await admin(client, "POST", "faults", data=twice)
    assert status == 400 and error["error"].startswith(f"the body gives the key '{'k' * 80}...'")
    assert len(error["error"]) < 200


async def test_admin_wrong_method_and_unknown_path(client: Client) -> None:
    status, error = await admin(client, "PUT", "faults")
    assert status == 405 and "PUT" in error["error"]
    status, error = await admin(client, "GET", "nothing-here")
    assert status == 404


async def test_cassettes_listing_errors_and_reload(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    write_cassette(tmp_path / "one.yaml", cassette("one", "Hi"))
    (tmp_path / "broken.yaml").write_text("interactions: [unclosed", encoding="utf-8")
    client = await aiohttp_client(create_app(MockConfig(cassette_dir=tmp_path)))
    status, listing = await admin(client, "GET", "cassettes")
    assert status == 200 and listing["directory"] == str(tmp_path)
    assert [c["name"] for c in listing["cassettes"]] == ["one"]
    assert listing["cassettes"][0]["interactions"][0]["events"] == 2
    assert len(listing["errors"]) == 1 and "broken.yaml" in listing["errors"][0]

    write_cassette(tmp_path / "two.yaml", cassette("two", "Hello"))
    status, listing = await admin(client, "POST", "cassettes/reload")
    assert status == 200 and listing["reloaded"] is True
    assert [c["name"] for c in listing["cassettes"]] == ["one", "two"]
    assert await chat(client) == 200
    assert journal(client.app).last().served_by["cassette"] == "one"


def cassette(name: str, text: str) -> Cassette:
    body = encode_stream(["re", text])
    recorded = Interaction(
        method="POST",
        uri="https://koala.sh/api/gpt/",
        request_headers={},
        request_body=encode_payload(
            build_payload("gpt-4o-mini", [{"role": "user", "content": text}])
        ),
        status=200,
        reason="OK",
        response_headers={"Content-Type": ["text/event-stream"]},
        body=body,
        chunks=[Chunk(0.0, body)],
    )
    return Cassette(name, None, [recorded])


async def test_python_helpers(client: Client) -> None:
    queue_fault(client.app, "cloudflare", times=1)
    assert await chat(client) == 403
    with pytest.raises(FaultSpecError, match="known faults"):
        queue_fault(client.app, "volcano")
    queue_fault(client.app, "cloudflare", times=3)
    reset(client.app)
    assert len(journal(client.app)) == 0
    assert await chat(client) == 200
    assert journal(client.app).payloads() == [PAYLOAD]


def test_journal_is_bounded() -> None:
    bounded = Journal(capacity=3)
    for n in range(5):
        bounded.start("POST", f"/{n}", {})
    assert [e.path for e in bounded.entries()] == ["/2", "/3", "/4"]
    assert bounded.total == 5
    assert bounded.clear() == 3
    with pytest.raises(LookupError, match="empty"):
        bounded.last()


async def test_the_journal_does_not_keep_huge_bodies_or_answers(
    aiohttp_client: ClientFactory,
) -> None:
    app = create_app(MockConfig(cassette_dir=None, max_body_size=4_000_000))
    client = await aiohttp_client(app)
    assert await chat(client, **{"X-Koala-Mock-Fault": "huge_event;size=1000000"}) == 200
    big = build_payload("gpt-4o-mini", [{"role": "user", "content": "y" * 500_000}])
    async with client.post("/api/gpt/", data=encode_payload(big), headers=HEADERS) as response:
        assert response.status == 200
    huge_answer, big_request = journal(app).entries()
    assert huge_answer.values is None and huge_answer.omitted_values > 0
    assert big_request.body is None and big_request.raw_body == b""
    _, listing = await admin(client, "GET", "requests")
    assert "omitted" in listing["requests"][0]["values"]
    assert "omitted" in listing["requests"][1]["body"]


def test_readme_tables_name_every_fault_and_endpoint() -> None:
    faults = fault_table()
    assert all(f"`{name}`" in faults for name in FAULTS)
    endpoints = admin_table()
    assert all(path in endpoints for _, path, _ in ADMIN_ENDPOINTS)
