"""``GET /__admin/events`` (the journal, live, as server-sent events) and ``?before=`` paging.

The stream is read with the project's own decoder (:class:`koala.sse.EventStreamDecoder`): every
event's data is one JSON object, so the decoder yields one dict per event.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import ClientResponse
from conftest import PAYLOAD, Client, ClientFactory, chat

from koala.sse import EventStreamDecoder
from mockserver import MockConfig, create_app
from mockserver.server.events import EVENTS, RETRY_MILLISECONDS, parse_event_id
from mockserver.server.state import JOURNAL

#: Only a guard against a hang: no assertion depends on how fast anything is.
HANG_GUARD = 30.0


class EventReader:
    """The events of one ``/__admin/events`` response, decoded with EventStreamDecoder."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response
        self.decoder = EventStreamDecoder()
        self.buffered: list[dict[str, Any]] = []

    async def next(self, kind: str | None = None) -> dict[str, Any]:
        """The next event (of type ``kind`` when given; others before it are skipped)."""
        while True:
            while self.buffered:
                event = self.buffered.pop(0)
                if kind is None or event["type"] == kind:
                    return event
            chunk = await asyncio.wait_for(self.response.content.readany(), HANG_GUARD)
            assert chunk, "the event stream ended"
            self.buffered += self.decoder.feed(chunk)

    async def finished_entry(self, number: int) -> dict[str, Any]:
        """The first ``entry`` event for entry ``number`` that says how it ended."""
        while True:
            entry: dict[str, Any] = (await self.next("entry"))["entry"]
            if entry["number"] == number and entry["ending"] is not None:
                return entry


@contextlib.asynccontextmanager
async def events(client: Client, last_event_id: str | None = None) -> Any:
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    async with client.get("/__admin/events", headers=headers) as response:
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        yield EventReader(response)


async def listen_to_one_chat(stream: EventReader, client: Client) -> str:
    """Read the hello, send one request, read its finished entry and the state event after it;
    the last event id, as a reconnecting listener would send it."""
    await stream.next("hello")
    await chat(client)
    await stream.finished_entry(1)
    await stream.next("state")
    return stream.decoder.last_event_id


async def test_hello_then_an_entry_per_request(client: Client) -> None:
    async with events(client) as stream:
        hello = await stream.next()
        assert hello["type"] == "hello" and hello["resumed"] is False
        assert hello["state"]["journal_size"] == 0 and hello["state"]["mode"] == "auto"
        assert stream.decoder.retry == RETRY_MILLISECONDS
        assert await chat(client) == 200
        entry = await stream.finished_entry(1)
        assert entry["path"] == "/api/gpt/" and entry["method"] == "POST"
        assert entry["status"] == 200 and entry["ending"] == "eof"
        assert entry["served_by"] == {"source": "synthetic"}
        assert entry["verdict"]["ok"] is True and entry["body"] == PAYLOAD
        assert entry["events_sent"] == len(entry["values"]) > 0
        state = await stream.next("state")
        assert state["state"]["requests"] == 1
        run, generation, resume_from = parse_event_id(stream.decoder.last_event_id) or ("", 0, 0)
        assert (run, generation, resume_from) == (hello["run"], 0, 2)


async def test_a_bad_request_arrives_with_its_verdict(client: Client) -> None:
    async with events(client) as stream:
        await stream.next("hello")
        async with client.post("/api/gpt/", json={"input": "hi"}) as response:
            assert response.status == 422
        entry = await stream.finished_entry(1)
        fields = {p["field"] for p in entry["verdict"]["errors"]}
        assert fields == {"inputHistory", "outputHistory", "model"}
        assert entry["served_by"] == {"source": "error"} and entry["status"] == 422


async def test_a_slow_answer_is_announced_then_finished(client: Client) -> None:
    async with events(client) as stream:
        await stream.next("hello")
        request = asyncio.ensure_future(
            chat(client, **{"X-Koala-Mock-Fault": "slow_first_byte;delay=0.5"})
        )
        first = (await stream.next("entry"))["entry"]
        assert first["number"] == 1 and first["ending"] is None  # still waiting to answer
        done = await stream.finished_entry(1)
        assert done["ending"] == "eof" and done["served_by"]["source"] == "fault"
        assert await request == 200


async def test_streamed_events_carry_their_send_times(client: Client) -> None:
    async with events(client) as stream:
        await stream.next("hello")
        await chat(client, **{"X-Koala-Mock-Fault": "split_writes;size=7;delay=0.001"})
        entry = await stream.finished_entry(1)
        times = entry["event_times"]
        assert times is not None and len(times) == entry["events_sent"] > 1
        assert times == sorted(times) and times[0] >= 0


async def test_reconnecting_with_last_event_id_resends_only_what_was_missed(
    client: Client,
) -> None:
    async with events(client) as stream:
        hello = await stream.next("hello")
        await chat(client)
        await chat(client)
        await stream.finished_entry(2)
        await stream.next("state")
        last_id = stream.decoder.last_event_id
    await chat(client)  # while nobody listens
    await chat(client)
    async with events(client, last_id) as stream:
        again = await stream.next()
        assert again["type"] == "hello" and again["resumed"] is True
        assert again["run"] == hello["run"]
        missed = [(await stream.next("entry"))["entry"]["number"] for _ in range(2)]
        assert missed == [3, 4]


async def test_an_id_from_another_server_run_asks_for_a_reload(
    client: Client, aiohttp_client: ClientFactory
) -> None:
    other = await aiohttp_client(create_app(MockConfig(cassette_dir=None)))
    async with events(other) as stream:
        other_id = await listen_to_one_chat(stream, other)
    for given in (other_id, "not an id", "x.1.2.3", "run.99999999999999.1"):
        async with events(client, given) as stream:
            hello = await stream.next()
            assert hello["type"] == "hello" and hello["resumed"] is False, given


async def test_clearing_the_journal_is_an_event_and_starts_a_new_generation(
    client: Client,
) -> None:
    async with events(client) as stream:
        before_clear = await listen_to_one_chat(stream, client)
        async with client.delete("/__admin/requests") as response:
            assert (await response.json()) == {"cleared": 1}
        cleared = await stream.next("cleared")
        assert cleared["generation"] == 1
    async with events(client, before_clear) as stream:
        hello = await stream.next("hello")
        assert hello["resumed"] is False and hello["generation"] == 1


async def test_queueing_a_fault_is_a_state_event(client: Client) -> None:
    async with events(client) as stream:
        await stream.next("hello")
        body = {"fault": "rate_limit", "times": 2, "params": {"retry_after": 5}}
        async with client.post("/__admin/faults", json=body) as response:
            assert response.status == 201
        state = (await stream.next("state"))["state"]
        assert [(q["spec"], q["remaining"]) for q in state["queued_faults"]] == [
            ("rate_limit;retry_after=5", 2)
        ]


async def test_the_journal_is_watched_only_while_someone_listens(client: Client) -> None:
    app = client.server.app
    journal = app[JOURNAL]
    await chat(client)
    assert journal._watcher is None and journal.last()._watcher is None
    async with events(client) as stream:
        await stream.next("hello")
        assert journal._watcher is app[EVENTS]
        await chat(client)
        await stream.finished_entry(2)
    for _ in range(100):  # the server notices the closed stream on its next write or wake-up
        if journal._watcher is None:
            break
        await chat(client)
    assert journal._watcher is None


async def test_a_client_far_behind_gets_a_reset() -> None:
    from mockserver.server.events import MAX_PENDING, EventHub
    from mockserver.server.journal import Journal

    journal = Journal()
    hub = EventHub(journal)
    subscriber = hub.subscribe()
    for _ in range(MAX_PENDING + 1):
        journal.start("POST", "/api/gpt/", {})
    assert subscriber.overflowed and not subscriber.pending
    hub.unsubscribe(subscriber)
    journal.start("POST", "/api/gpt/", {})
    assert journal._watcher is None


async def test_requests_before_a_number_page_through_the_journal(client: Client) -> None:
    for _ in range(5):
        await chat(client)
    async with client.get("/__admin/requests", params={"before": "4", "limit": "2"}) as response:
        listing = await response.json()
    assert [e["number"] for e in listing["requests"]] == [2, 3]
    for bad in ("-1", "x", "²"):
        async with client.get("/__admin/requests", params={"before": bad}) as response:
            assert response.status == 400, bad
            assert "before" in (await response.json())["error"]
    async with client.get("/__admin/requests", params={"limit": "²"}) as response:
        assert response.status == 400


async def test_the_admin_index_links_the_page(client: Client) -> None:
    async with client.get("/__admin/") as response:
        index = await response.json()
    assert index["ui"] == "/__admin/ui"
    paths = {e["path"] for e in index["endpoints"]}
    assert {"/__admin/ui", "/__admin/events", "/__admin/requests"} <= paths
