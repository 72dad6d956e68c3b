"""The shipped cassettes, hand-made from the documented wire format (docs/PROTOCOL.md).

The live service cannot be reached from the build machines, so ``cassettes/`` is generated here,
reproducibly (chunk timing comes from a seeded generator)::

    python -m mockserver.cassettes.handmade            # write the missing ones into cassettes/
    python -m mockserver.cassettes.handmade --force    # regenerate all of them
    python -m mockserver.cassettes.handmade --check    # exit 1 if a file differs

Each request body is exactly what ``koala.request.encode_payload(build_payload(model, messages))``
gives for the conversation, so the provider's requests match. Each file says in its provenance
that it is hand-made, not a recording; ``cassettes/README.md`` explains how to replace them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from koala.request import (
    API_ENDPOINT,
    DEFAULT_MODEL,
    build_headers,
    build_keyed_headers,
    build_payload,
    encode_payload,
)
from koala.testing import SCRUBBED, VISITOR_ID_PLACEHOLDER
from mockserver.cassettes.cassette import (
    Cassette,
    Chunk,
    Interaction,
    dump_cassette,
    write_cassette,
)
from mockserver.cassettes.locations import SOURCE_CASSETTE_DIR
from mockserver.wire.streams import encode_events

__all__ = [
    "API_URI",
    "CASSETTE_DIR",
    "PROVENANCE",
    "SPECS",
    "STREAM_HEADERS",
    "Message",
    "Spec",
    "assistant",
    "build",
    "main",
    "system",
    "user",
]

CASSETTE_DIR = SOURCE_CASSETTE_DIR
API_URI = API_ENDPOINT
PROVENANCE: dict[str, Any] = {
    "source": "hand-made from the documented wire format (docs/PROTOCOL.md); not a recording",
    "generator": "python -m mockserver.cassettes.handmade",
    "timing": "synthetic, from a seeded random generator",
}
STREAM_HEADERS = {"Content-Type": ["text/event-stream"], "Cache-Control": ["no-cache"]}

Message = dict[str, Any]


@dataclass
class Spec:
    """One hand-made cassette: the conversation and the answer."""

    name: str
    description: str
    messages: list[Message]
    values: list[Any] = field(default_factory=list)
    status: int = 200
    reason: str = "OK"
    headers: dict[str, list[str]] = field(default_factory=lambda: dict(STREAM_HEADERS))
    #: A non-stream body (error pages); when set, ``values`` is ignored.
    raw_body: bytes | None = None
    #: Byte offsets where the body is cut into chunks; None: one event per chunk.
    cuts: list[int] | None = None
    first_chunk_at: float = 0.25
    gap: tuple[float, float] = (0.02, 0.06)
    seed: int = 1
    model: str = DEFAULT_MODEL
    #: The keyed shape (docs/PROTOCOL.md): a Bearer key, ``input`` without histories, and
    #: the JSON reply (``raw_body``) instead of a stream.
    keyed: bool = False


def user(text: str) -> Message:
    return {"role": "user", "content": text}


def assistant(text: str) -> Message:
    return {"role": "assistant", "content": text}


def system(text: str) -> Message:
    return {"role": "system", "content": text}


def _words(text: str) -> list[str]:
    """Koala-style tokens: each word after the first carries its leading space."""
    words = text.split(" ")
    return [words[0]] + [" " + word for word in words[1:]]


def _long_answer() -> list[str]:
    sentences = [
        "The Koala provider streams its answer as server-sent events, one token per event.",
        "Each event is a single data line holding a JSON string, followed by a blank line.",
        "Tokens usually start with a space, so joining them gives the text back unchanged.",
        "A client has to cope with events split across network reads at any byte.",
        "It also has to stop cleanly when the stream ends, and name what went wrong otherwise.",
    ]
    tokens: list[str] = []
    paragraph = 0
    while len(tokens) < 320:
        for sentence in sentences:
            tokens.extend(_words(sentence) if not tokens else _words(" " + sentence)[1:])
        paragraph += 1
        tokens.append("\n\n")
        tokens.append(f"Paragraph {paragraph + 1}:")
    return tokens


_CLOUDFLARE_PAGE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
    '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">'
    '<meta name="robots" content="noindex,nofollow"></head><body>'
    '<div class="main-wrapper" role="main"><div class="main-content">'
    '<h1 class="zone-name-title h1">koala.sh</h1>'
    '<div id="cf-please-wait"><p>Verifying you are human. This may take a few seconds.</p></div>'
    "<noscript>Enable JavaScript and cookies to continue</noscript>"
    "</div></div></body></html>\n"
)

_KOALA_ANSWER = "A koala is a tree-dwelling marsupial from Australia that eats eucalyptus leaves."

SPECS: list[Spec] = [
    Spec(
        name="greeting",
        description="One-turn greeting: a user says Hello and gets a short streamed answer.",
        messages=[user("Hello")],
        values=_words("Hello! How can I help you today?"),
        seed=1,
    ),
    Spec(
        name="multi_turn",
        description="Multi-turn conversation: earlier user and assistant turns go in "
        "inputHistory/outputHistory, the last user message in input.",
        messages=[
            user("What is the capital of France?"),
            assistant("The capital of France is Paris."),
            user("And of Spain?"),
        ],
        values=_words("The capital of Spain is Madrid."),
        seed=2,
    ),
    Spec(
        name="system_prompt",
        description="A system prompt: the original mapping appends ' ' + the system text to "
        "input (no separate field).",
        messages=[system("Answer in one word."), user("What colour is the sky?")],
        values=["Blue", "."],
        seed=3,
    ),
    Spec(
        name="unicode_emoji",
        description="Unicode and emoji tokens (accents, CJK, flags, ZWJ sequences); several "
        "network chunks end inside a multi-byte UTF-8 character.",
        messages=[user("Say hello in four languages, with emoji.")],
        values=[
            "¡Hola",
            "!",
            " 👋",
            " Bonjour",
            " à",
            " tous",
            " ✨",
            " こんにちは",
            " 🇯🇵",
            " Grüße",
            " aus",
            " Zürich",
            " 👩‍💻",
            " — ",
            "😀",
        ],
        seed=4,
    ),
    Spec(
        name="long_answer",
        description="A long answer: hundreds of events, 20-40 ms apart, sometimes two events "
        "in one network chunk.",
        messages=[user("Explain how the Koala event stream works, at length.")],
        values=_long_answer(),
        gap=(0.02, 0.04),
        seed=5,
    ),
    Spec(
        name="non_string_values",
        description="Data values that are not strings (number, null, boolean, object, array) "
        "between string tokens; the provider yields them as they are.",
        messages=[user("Send a few values that are not strings.")],
        values=["Values", ":", 42, None, 3.5, True, {"type": "meta", "tokens": 3}, [1, "two"], "."],
        seed=6,
    ),
    Spec(
        name="rate_limited_429",
        description="429 Too Many Requests with Retry-After: 30 (the provider raises "
        "RateLimitError with retry_after=30).",
        messages=[user("Are you rate limited?")],
        status=429,
        reason="Too Many Requests",
        headers={
            "Content-Type": ["application/json; charset=utf-8"],
            "Retry-After": ["30"],
        },
        raw_body=b'{"error": "Too many requests, please try again later."}',
        seed=7,
    ),
    Spec(
        name="cloudflare_403",
        description="403 Cloudflare challenge page (the provider raises CloudflareError).",
        messages=[user("Is there a Cloudflare challenge?")],
        status=403,
        reason="Forbidden",
        headers={
            "Content-Type": ["text/html; charset=UTF-8"],
            "Cache-Control": ["private, max-age=0, no-store, no-cache, must-revalidate"],
            "cf-mitigated": ["challenge"],
            "Server": ["cloudflare"],
            "Set-Cookie": ["__cf_bm=SCRUBBED; path=/; domain=.koala.sh; HttpOnly; Secure"],
        },
        raw_body=_CLOUDFLARE_PAGE.encode("utf-8"),
        seed=8,
    ),
    Spec(
        name="keyed_json_reply",
        description="The keyed API: Authorization: Bearer, a body of input, realTimeData and "
        'model without histories, Accept: application/json, and the JSON reply {"output": ...}. '
        "Replay treats the omitted histories as empty ones, so the provider's keyed and browser "
        "requests for the same conversation both match.",
        messages=[user("What is a koala?")],
        headers={"Content-Type": ["application/json; charset=utf-8"]},
        raw_body=json.dumps({"output": _KOALA_ANSWER}).encode("utf-8"),
        model="gpt-4.1-mini",
        keyed=True,
        seed=9,
    ),
]


def _cuts_inside_characters(body: bytes, every: int) -> list[int]:
    """Offsets that fall inside multi-byte characters, about one per ``every`` bytes."""
    cuts = []
    last = 0
    for offset in range(1, len(body)):
        if 0x80 <= body[offset] < 0xC0 and offset - last >= every:  # a continuation byte
            cuts.append(offset)
            last = offset
    return cuts


def _pieces(spec: Spec, body: bytes, rng: random.Random) -> list[bytes]:
    if spec.raw_body is not None:
        return [body[: len(body) // 2], body[len(body) // 2 :]] if len(body) > 512 else [body]
    if spec.name == "unicode_emoji":
        cuts = _cuts_inside_characters(body, 24)
        pieces, start = [], 0
        for cut in [*cuts, len(body)]:
            pieces.append(body[start:cut])
            start = cut
        return [p for p in pieces if p]
    events = encode_events(spec.values)
    pieces = []
    index = 0
    while index < len(events):
        take = 2 if rng.random() < 0.15 and index + 1 < len(events) else 1
        pieces.append(b"".join(events[index : index + take]))
        index += take
    return pieces


def build(spec: Spec) -> Cassette:
    """The cassette for ``spec`` (deterministic)."""
    rng = random.Random(spec.seed)
    payload = build_payload(spec.model, spec.messages)
    if spec.keyed:  # as public keyed clients send it: no histories
        payload = {"input": payload["input"], "realTimeData": False, "model": payload["model"]}
    request_body = encode_payload(payload)
    body = spec.raw_body if spec.raw_body is not None else b"".join(encode_events(spec.values))
    chunks = []
    at = spec.first_chunk_at
    for number, piece in enumerate(_pieces(spec, body, rng)):
        if number:
            at += rng.uniform(*spec.gap)
        chunks.append(Chunk(round(at, 4), piece))
    sent = (
        build_keyed_headers(f"Bearer {SCRUBBED}", json_reply=True)
        if spec.keyed
        else build_headers(VISITOR_ID_PLACEHOLDER)
    )
    request_headers = {name: [value] for name, value in sent.items()}
    request_headers["Content-Type"] = ["application/json"]
    request_headers["Content-Length"] = [str(len(request_body))]
    interaction = Interaction(
        method="POST",
        uri=API_URI,
        request_headers=request_headers,
        request_body=request_body,
        status=spec.status,
        reason=spec.reason,
        response_headers={name: list(values) for name, values in spec.headers.items()},
        body=body,
        chunks=chunks,
    )
    provenance = dict(PROVENANCE)
    provenance["messages"] = [dict(m) for m in spec.messages]
    if spec.keyed:
        provenance["shape"] = "keyed (docs/PROTOCOL.md)"
    return Cassette(
        name=spec.name,
        path=None,
        interactions=[interaction],
        provenance=provenance,
        description=spec.description,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mockserver.cassettes.handmade",
        description="Generate the hand-made cassettes.",
    )
    parser.add_argument("--out", type=Path, default=CASSETTE_DIR, help="default: %(default)s")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    args = parser.parse_args(argv)
    status = 0
    for spec in SPECS:
        cassette = build(spec)
        path = args.out / f"{spec.name}.yaml"
        if args.check:
            current = path.read_text(encoding="utf-8") if path.exists() else None
            if current != dump_cassette(cassette):
                print(
                    f"{path}: differs from what mockserver.cassettes.handmade makes",
                    file=sys.stderr,
                )
                status = 1
            continue
        if path.exists() and not args.force:
            print(f"{path}: exists, kept (use --force to regenerate)")
            continue
        write_cassette(path, cassette, force=args.force)
        print(f"{path}: written")
    return status


if __name__ == "__main__":
    sys.exit(main())
