"""The recording proxy (``koala-mock serve --record``): the chat API answered by the upstream.

Built on the upstream client (:mod:`mockserver.upstream.client`, one session for the server's
life) and the one cassette writer (:mod:`mockserver.upstream.saving`). The record directory is the
cassette it records into; the record mode (:mod:`mockserver.cassettes.record_mode`) decides, per
request, whether to replay what it holds, call the upstream and record, or refuse.

- The client gets the upstream's answer as it arrives (nothing is buffered) and the complete
  interaction is saved once it ended; the end of the stream goes out after the save, so a client
  that read the whole answer can rely on the cassette being there.
- ``X-Koala-Mock-Fault`` (or a queued fault) is the mock's own: the fault is served, the upstream
  is not called, nothing is recorded. ``X-Koala-Mock-Seed`` fuzzes what the client gets; the
  cassette keeps the upstream's bytes. Neither header is forwarded.
- Identical requests (under the replay matching rules) are handled one at a time, so a request
  never gets two recordings: the second one replays the first's.
- An unreachable upstream is a 502 naming it (masked); a stream that breaks off is passed on
  broken and not recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict

from koala.errors import StreamError
from koala.sse import EventStreamDecoder
from mockserver.cassettes.cassette import Cassette, CassetteError, parse_json, write_cassette
from mockserver.cassettes.library import CassetteLibrary, Recorded, match_key, recorded
from mockserver.cassettes.record_mode import Action, RecordMode, decide, refusal
from mockserver.cassettes.scrub import ScrubPolicy, mask_url, stored_request_headers
from mockserver.config import DEFAULT_RECORD_DIR
from mockserver.server.endpoint import (
    SEED_HEADER,
    RequestRejected,
    fault_for,
    plan_answer,
    seed_for,
    stream_only,
)
from mockserver.server.http_errors import json_error
from mockserver.server.journal import JournalEntry, decode_json_body
from mockserver.server.request_body import BodyRejected, ClientGone, client_gone, read_body
from mockserver.server.sender import send_plan
from mockserver.server.state import CONFIG, FAULT_QUEUE, STREAMS
from mockserver.upstream.client import (
    Capture,
    ChunkSink,
    StreamInterruptedError,
    UpstreamClient,
    UpstreamUnreachableError,
    UpstreamURL,
    multi_headers,
)
from mockserver.upstream.saving import (
    cassette_for,
    save_numbered,
    slug_for,
    with_interaction,
)
from mockserver.wire.contract import check_request
from mockserver.wire.json_answer import wants_json
from mockserver.wire.plan import MAX_STORED_BYTES

__all__ = ["RecordingProxy"]

COMMAND = "serve --record"


class _ClientGone(Exception):
    """The proxy's client disconnected while the answer was being streamed to it."""


class RecordingProxy:
    """The chat API handler of an app built with ``record_upstream`` set."""

    def __init__(self, app: web.Application) -> None:
        config = app[CONFIG]
        assert config.record_upstream is not None
        self.config = config
        self.fault_queue = app[FAULT_QUEUE]
        self.streams = app[STREAMS]
        self.upstream = UpstreamURL.parse(config.record_upstream)
        self.mode = RecordMode(config.record_mode)
        self.directory = config.record_dir or DEFAULT_RECORD_DIR
        self.recordings = CassetteLibrary(
            self.directory,
            max_bytes=config.max_cassette_size,
            endpoint=urlsplit(self.upstream.url).path or "/",  # what recordings are matched by
        )
        self.policy = (
            ScrubPolicy.of(config.keep_headers, config.keep_query) if config.scrub else None
        )
        self.client = UpstreamClient()
        #: Whether the record directory held cassettes when the server started (mode ``once``).
        self.existed = False
        self._busy: dict[str, tuple[asyncio.Lock, int]] = {}
        app.cleanup_ctx.append(self._lifetime)

    async def _lifetime(self, app: web.Application) -> AsyncIterator[None]:
        if self.directory.is_dir():
            await asyncio.get_running_loop().run_in_executor(None, self.recordings.reload)
        else:
            self.recordings.set_cassettes([])
        self.existed = bool(self.recordings.cassettes)
        await self.client.start()
        yield
        await self.client.close()

    async def __call__(self, request: web.Request, entry: JournalEntry) -> web.StreamResponse:
        """The recorded or replayed answer; a :class:`RequestRejected` for a JSON error (the
        journaled wrapper sends it)."""
        try:
            raw = await read_body(request, self.config.max_body_size)
        except BodyRejected as rejected:
            raise RequestRejected(rejected.response) from None
        except ClientGone:
            return client_gone(entry)
        url = self.upstream.with_query(request.query_string)
        _journal_request(entry, request, raw, self.policy)
        payload = parse_json(raw)
        answer_payload = payload if isinstance(payload, dict) else {}
        seed = seed_for(request.headers, self.config)
        fault = fault_for(request.headers, self.fault_queue, self.config)
        json_form = wants_json(request.headers)
        if fault is not None:  # the mock's own business: the upstream never hears of it
            if json_form and not fault.applies_to_json:
                raise RequestRejected(stream_only(fault))
            plan, entry.served_by = plan_answer(
                answer_payload, None, fault, seed, self.config, json_form
            )
            entry.fault = str(fault)
            return await send_plan(request, plan, self.streams, entry)
        path = urlsplit(url).path or "/"
        body: Any = payload if payload is not None else raw
        async with self._one_at_a_time(match_key(request.method, path, body, raw)):
            found, _ = self.recordings.lookup(request.method, path, body, raw, nearest=False)
            action = decide(self.mode, held=found is not None, cassette_existed=self.existed)
            if action is Action.REFUSE:
                raise RequestRejected(
                    json_error(
                        404,
                        f"no recording in {self.directory} matches this request; "
                        f"{refusal(self.mode)}",
                        record_mode=str(self.mode),
                    )
                )
            if action is Action.REPLAY:
                assert found is not None
                return await self._send(request, entry, answer_payload, found, seed)
            return await self._record(request, entry, url, raw, answer_payload, found, seed)

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, key: str) -> AsyncIterator[None]:
        lock, users = self._busy.get(key, (asyncio.Lock(), 0))
        self._busy[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._busy[key]
            if users <= 1:
                del self._busy[key]
            else:
                self._busy[key] = (lock, users - 1)

    async def _send(
        self,
        request: web.Request,
        entry: JournalEntry,
        payload: dict[str, Any],
        found: Recorded,
        seed: int | None,
    ) -> web.StreamResponse:
        json_form = wants_json(request.headers)  # a replay answers in the form asked for
        plan, served_by = plan_answer(payload, found, None, seed, self.config, json_form)
        entry.served_by = {**served_by, "record_mode": str(self.mode)}
        if seed is not None:
            plan = plan.with_header(SEED_HEADER, str(seed))
            entry.seed = seed
        return await send_plan(request, plan, self.streams, entry)

    async def _record(
        self,
        request: web.Request,
        entry: JournalEntry,
        url: str,
        raw: bytes,
        payload: dict[str, Any],
        found: Recorded | None,
        seed: int | None,
    ) -> web.StreamResponse:
        entry.served_by = {
            "source": "upstream",
            "upstream": mask_url(url),  # every query value masked
            "record_mode": str(self.mode),
        }
        if seed is not None:  # the client gets a fuzzed answer: the whole one is needed first
            try:
                capture = await self._forward(request, raw)
            except UpstreamUnreachableError as exc:
                return _unreachable(entry, exc)
            except StreamInterruptedError:
                return _broke_off(entry)
            await self._save(request, raw, capture, found)
            answer = capture.interaction()
            replay = recorded(Cassette("upstream", None, [answer]), 0, answer)
            return await self._send(request, entry, payload, replay, seed)
        return await self._stream_through(request, entry, raw, found)

    async def _forward(
        self,
        request: web.Request,
        raw: bytes,
        on_headers: Callable[[Capture], Awaitable[None]] | None = None,
        on_chunk: ChunkSink | None = None,
    ) -> Capture:
        """The client's request sent on to the upstream (its query string kept) and the answer."""
        return await self.client.capture(
            request.method,
            self.upstream,
            request.headers,
            raw,
            query=request.query_string,
            on_headers=on_headers,
            on_chunk=on_chunk,
        )

    async def _stream_through(
        self, request: web.Request, entry: JournalEntry, raw: bytes, found: Recorded | None
    ) -> web.StreamResponse:
        counter = EventStreamDecoder()
        client_response = web.StreamResponse()

        async def start(capture: Capture) -> None:
            entry.status = capture.status
            client_response.set_status(capture.status, capture.reason or None)
            for name, values in capture.response_headers.items():
                for value in values:
                    client_response.headers.add(name, value)
            await client_response.prepare(request)

        async def forward(data: bytes) -> None:
            try:
                await client_response.write(data)
            except (ConnectionError, RuntimeError) as exc:  # the client went away
                raise _ClientGone from exc
            _journal_progress(entry, counter, data)

        try:
            capture = await self._forward(request, raw, on_headers=start, on_chunk=forward)
        except UpstreamUnreachableError as exc:
            return _unreachable(entry, exc)
        except _ClientGone:
            entry.finish_disconnected()
            return client_response  # nothing to record: the answer was not read to its end
        except StreamInterruptedError:
            if not client_response.prepared:
                return _broke_off(entry)
            entry.finish("upstream_broke_off")
            # Headers are out: the only honest thing left is to break the client's stream too.
            if request.transport is not None:
                request.transport.close()
            return client_response
        if not client_response.prepared:
            await start(capture)
        entry.finish("eof")
        await self._save(request, raw, capture, found)
        await client_response.write_eof()
        return client_response

    async def _save(
        self, request: web.Request, raw: bytes, capture: Capture, found: Recorded | None
    ) -> None:
        """Save the interaction (replacing ``found``'s recording, mode ``all``); a failure is
        logged, not raised."""
        cassette = cassette_for(
            capture,
            name=slug_for(raw),
            path=None,
            command=COMMAND,
            client=request.headers.get("User-Agent", "unknown"),
            description=f"recorded by the koala-mock recording proxy from {self.upstream.display}",
            policy=self.policy,
        )
        saving = asyncio.get_running_loop().run_in_executor(None, self._write, cassette, found)
        try:
            # Shielded: a client that goes away now must not cost the recording (the write
            # itself is atomic, in its thread, whatever happens here).
            path = await asyncio.shield(saving)
        except (CassetteError, OSError) as exc:
            request.app.logger.error("recording proxy: could not save the cassette: %s", exc)
        else:
            request.app.logger.info("recording proxy: saved %s", path)

    def _write(self, cassette: Cassette, found: Recorded | None) -> Path:
        """Write in a file thread; the record directory's index learns the new recording."""
        old = found.cassette if found is not None else None
        if found is not None and found.cassette.path is not None:  # mode all: replace it
            if len(found.cassette.interactions) > 1:
                cassette = with_interaction(found.cassette, found.index, cassette.interactions[0])
            path = found.cassette.path
            cassette = dataclasses.replace(cassette, name=found.cassette.name, path=path)
            write_cassette(path, cassette, force=True)
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = save_numbered(self.directory, cassette.name, cassette)
            cassette = dataclasses.replace(cassette, name=path.stem, path=path)
        kept = [c for c in self.recordings.cassettes if c is not old]
        self.recordings.set_cassettes([*kept, cassette], self.recordings.errors)
        return path


def _broke_off(entry: JournalEntry) -> web.Response:
    entry.status = 502
    entry.finish("upstream_broke_off")
    return web.Response(status=502, text="koala-mock recording proxy: upstream broke off\n")


def _unreachable(entry: JournalEntry, exc: UpstreamUnreachableError) -> web.Response:
    entry.status = 502
    entry.finish("upstream_unreachable")
    return web.Response(status=502, text=f"koala-mock recording proxy: {exc}\n")


def _journal_request(
    entry: JournalEntry, request: web.Request, body: bytes, policy: ScrubPolicy | None
) -> None:
    """The request as the journal keeps it: its headers as a cassette would store them (the
    journal is served over HTTP, and a proxied request carries real credentials)."""
    if policy is not None:
        headers = stored_request_headers(multi_headers(request.headers), policy)
        entry.headers = CIMultiDict((name, v) for name, values in headers.items() for v in values)
    entry.body_size = len(body)
    entry.contract_verdict = check_request(request.headers, body)
    if len(body) <= MAX_STORED_BYTES:
        entry.body = decode_json_body(body)
        entry.raw_body = body if entry.body is None else b""


def _journal_progress(entry: JournalEntry, counter: EventStreamDecoder, data: bytes) -> None:
    """Bytes and events forwarded so far (events as a client would count them, while it can)."""
    entry.bytes_sent += len(data)
    if counter.done:
        return
    try:
        counter.feed(data)
    except StreamError:
        counter.done = True  # not an event stream we can read: the count stays where it was
    entry.events_sent = counter.events_dispatched
