"""``koala-mock record``: send the request the ``Koala`` provider sends and record the answer.

The request is the provider's own (headers and body from :mod:`koala.request`); the answer is
captured by :class:`~mockserver.upstream.client.UpstreamClient` and written by
:mod:`mockserver.upstream.saving`. A record mode (:mod:`mockserver.cassettes.record_mode`)
decides whether the upstream is called at all:

- A non-2xx answer (a 429, a Cloudflare page, a 3xx) is recorded: it is what the upstream says.
- A stream that breaks off (disconnect, timeout, Ctrl-C, cancellation) is not recorded: a
  cassette is always a complete answer. No file and no temporary file is left behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp.http import SERVER_SOFTWARE

from koala.api_key import ApiKey
from koala.errors import StreamError
from koala.provider import Koala
from koala.request import (
    build_headers,
    build_keyed_headers,
    build_keyed_payload,
    build_payload,
    encode_payload,
)
from koala.response import JSON, parse_media_type
from koala.sse import EventStreamDecoder
from mockserver.cassettes.cassette import (
    Cassette,
    CassetteError,
    CassetteExistsError,
    Chunk,
    Interaction,
    find_match,
    first_header,
    load_cassette,
    parse_json,
)
from mockserver.cassettes.record_mode import Action, RecordMode, decide, refusal
from mockserver.cassettes.scrub import ScrubPolicy
from mockserver.upstream.client import (
    Capture,
    ChunkSink,
    Timeouts,
    UpstreamClient,
    UpstreamURL,
)
from mockserver.upstream.saving import (
    cassette_for,
    provenance,
    stored_interaction,
    with_interaction,
    write_in_thread,
)
from mockserver.upstream.words import plural

__all__ = [
    "CLIENT",
    "RecordRefusedError",
    "Recording",
    "decode_body",
    "describe",
    "provider_request",
    "record_conversation",
    "resolve_model",
]

CLIENT = "koala.Koala request building (koala.request.build_headers/build_payload)"


class RecordRefusedError(CassetteError):
    """The record mode forbids recording this request into this cassette."""


@dataclass
class Recording:
    """What ``record`` did: recorded (``capture`` is the answer as it arrived) or replayed what the
    cassette already held (``capture`` None)."""

    action: Action
    path: Path
    #: The interaction as the cassette holds it (scrubbed).
    interaction: Interaction
    capture: Capture | None = None


def resolve_model(model: str | None) -> tuple[str, bool]:
    """The model name to send and whether it is one the provider lists (seen in public clients).

    Aliases resolve as the provider resolves them (``Koala.get_model``); any other name is sent
    as given (as the provider and the original do), with ``False``.
    """
    resolved = Koala.get_model(model)
    return resolved, resolved in Koala.get_models()


def provider_request(
    model: str | None,
    messages: Sequence[Mapping[str, Any]],
    visitor_id: str | None = None,
    *,
    api_key: ApiKey | None = None,
    json_reply: bool = False,
) -> tuple[dict[str, str], bytes]:
    """The headers and body the ``Koala`` provider sends for ``messages``: the browser shape, or
    with ``api_key`` the keyed shape (``Authorization: Bearer``).

    The provider posts with ``json=``, which makes aiohttp add ``Content-Type: application/json``
    (and, for the keyed shape, its default ``User-Agent``); posting bytes needs them explicitly.
    """
    resolved = resolve_model(model)[0]
    if api_key is None:
        body = encode_payload(build_payload(resolved, messages))
        headers = build_headers(visitor_id, json_reply=json_reply)
    else:
        body = encode_payload(build_keyed_payload(resolved, messages))
        headers = {
            "User-Agent": SERVER_SOFTWARE,
            **build_keyed_headers(api_key.bearer(), json_reply),
        }
    headers["Content-Type"] = JSON
    return headers, body


def _existing(out: Path, mode: RecordMode) -> Cassette | None:
    if not out.exists():
        return None
    try:
        return load_cassette(out)
    except CassetteError as exc:
        raise CassetteExistsError(
            out,
            f"already exists and cannot be read as a cassette ({exc.problem}); "
            "--record-mode all (or --force) overwrites it",
        ) from None


async def record_conversation(
    messages: Sequence[Mapping[str, Any]],
    out: Path,
    *,
    model: str | None = None,
    upstream: str | None = None,
    record_mode: RecordMode = RecordMode.ONCE,
    force: bool = False,
    scrub: bool = True,
    policy: ScrubPolicy | None = None,
    description: str = "",
    timeouts: Timeouts | None = None,
    on_chunk: ChunkSink | None = None,
    api_key: ApiKey | None = None,
    json_reply: bool = False,
) -> Recording:
    """Record the answer to ``messages`` from ``upstream`` (default: ``Koala.api_endpoint``, the
    live API) into the cassette ``out``, as ``record_mode`` says (``force``: mode ``all``).
    ``api_key`` sends the keyed shape; ``json_reply`` asks for the JSON reply.

    Raises :class:`RecordRefusedError` (the mode forbids it; checked before any network I/O),
    :class:`~mockserver.upstream.client.RecordingError` (nothing written), or
    :class:`koala.InvalidMessagesError` for bad messages.
    """
    mode = RecordMode.ALL if force else RecordMode(record_mode)
    target = UpstreamURL.parse(upstream or Koala.api_endpoint)
    headers, body = provider_request(model, messages, api_key=api_key, json_reply=json_reply)
    existing = None if mode is RecordMode.ALL else _existing(out, mode)
    match = (
        find_match([existing], "POST", urlsplit(target.url).path or "/", parse_json(body) or body)
        if existing is not None
        else None
    )
    held = match is not None and match.interaction is not None
    action = decide(mode, held=held, cassette_existed=existing is not None)
    if action is Action.REFUSE:
        why = (
            "already exists and holds no recording of this request"
            if existing
            else "does not exist"
        )
        raise RecordRefusedError(out, f"{why}; {refusal(mode)}")
    if action is Action.REPLAY:
        assert match is not None and match.interaction is not None
        return Recording(action, out, match.interaction)
    scrub_policy = (policy or ScrubPolicy()) if scrub else None
    async with UpstreamClient(timeouts) as client:
        capture = await client.capture("POST", target, headers, body, on_chunk=on_chunk)
    if existing is None:
        cassette = cassette_for(
            capture,
            name=out.stem,
            path=out,
            command="record",
            client=CLIENT,
            description=description,
            policy=scrub_policy,
        )
    else:  # new_episodes: the new interaction joins what the file held, which says so
        cassette = with_interaction(existing, None, stored_interaction(capture, scrub_policy))
        added = provenance(capture.uri, command="record", client=CLIENT, policy=scrub_policy)
        cassette.provenance = {
            **cassette.provenance,
            "added": [*cassette.provenance.get("added", []), added],
        }
    await write_in_thread(out, cassette, force=existing is not None or mode is RecordMode.ALL)
    return Recording(action, out, cassette.interactions[-1], capture)


# ----------------------------------------------------------------------------- summaries


@dataclass
class StreamSummary:
    """What a recorded body holds, as :class:`koala.sse.EventStreamDecoder` reads it."""

    values: list[Any]
    #: The decoder's error when the body is not a valid event stream ("" when it is).
    error: str = ""


def decode_body(chunks: Sequence[Chunk]) -> StreamSummary:
    decoder = EventStreamDecoder()
    values: list[Any] = []
    try:
        for chunk in chunks:
            values.extend(decoder.feed(chunk.data))
        values.extend(decoder.close())
    except StreamError as exc:
        return StreamSummary(values, str(exc))
    return StreamSummary(values)


def describe(recording: Recording) -> str:
    """The one-paragraph summary ``koala-mock record`` prints."""
    interaction = recording.interaction
    content_type = first_header(interaction.response_headers, "content-type") or "no content type"
    lines = [f"status:   {interaction.status} {interaction.reason}".rstrip()]
    lines.append(f"type:     {content_type}")
    if parse_media_type(content_type).is_event_stream:
        summary = decode_body(interaction.chunks)
        events = f"{len(summary.values)}"
        if summary.error:
            events += f" (then a decoding error: {summary.error})"
        lines.append(f"events:   {events}")
    chunks = recording.capture.chunks if recording.capture else interaction.chunks
    size = sum(len(c.data) for c in chunks)
    lines.append(f"bytes:    {size} in {plural(len(chunks), 'chunk')}")
    if recording.capture is not None:
        lines.append(f"duration: {recording.capture.duration:.3f} s")
        lines.append(f"file:     {recording.path}")
    else:
        lines.append(f"file:     {recording.path} (already held this request; nothing was sent)")
    if 300 <= interaction.status < 400:
        location = first_header(interaction.response_headers, "location") or "no Location"
        lines.append(f"note:     a redirect to {location}; recorded as it is, not followed")
    elif not 200 <= interaction.status < 300:
        lines.append(
            "note:     a non-2xx answer; recorded as it is (replay raises the typed error)"
        )
    return "\n".join(lines)
