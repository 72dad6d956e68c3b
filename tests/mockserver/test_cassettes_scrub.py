"""Scrubbing: the rules, and vcrpy recording through koala.testing's hooks keeps no secret."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import aiohttp
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from koala_servers import Serve, app_for, serve_fixture, sse_handler  # noqa: F401 (serve)

from koala import Koala
from koala.request import is_visitor_id, new_visitor_id
from koala.testing import (
    SCRUBBED,
    VISITOR_ID_PLACEHOLDER,
    is_sensitive_name,
    koala_vcr,
    scrub_headers,
    scrub_uri,
)
from mockserver.cassettes.cassette import Chunk, Interaction, load_cassette, single_chunk
from mockserver.cassettes.scrub import scrub_cassette, scrub_interaction

MESSAGES = [{"role": "user", "content": "Hello"}]
BODY = b'data: "Hi"\n\n'


def test_the_visitor_placeholder_has_the_real_shape() -> None:
    assert is_visitor_id(VISITOR_ID_PLACEHOLDER)
    assert scrub_headers({"Visitor-ID": [new_visitor_id()]}) == {
        "Visitor-ID": [VISITOR_ID_PLACEHOLDER]
    }


@pytest.mark.parametrize(
    ("name", "value", "kept"),
    [
        ("Authorization", "Bearer abc.def", "Bearer SCRUBBED"),
        ("Authorization", "abc", "SCRUBBED"),
        ("Proxy-Authorization", "Basic dXNlcg==", "Basic SCRUBBED"),
        ("Cookie", "cf_clearance=abc; theme=dark", "cf_clearance=SCRUBBED; theme=SCRUBBED"),
        (
            "Set-Cookie",
            "__cf_bm=abc; path=/; HttpOnly; x-extra=leak",
            "__cf_bm=SCRUBBED; path=/; HttpOnly",
        ),
        ("X-Session-Token", "abc", SCRUBBED),
        ("X-Api-Key", "abc", SCRUBBED),
        ("X-CSRF-Token", "abc", SCRUBBED),
        ("Client-Secret", "abc", SCRUBBED),
        ("Accept", "text/event-stream", "text/event-stream"),
        ("Content-Type", "application/json", "application/json"),
        ("Keep-Alive", "timeout=5", "timeout=5"),
        ("Referer", "https://koala.sh/chat", "https://koala.sh/chat"),
    ],
)
def test_header_rules(name: str, value: str, kept: str) -> None:
    assert scrub_headers({name: [value]}) == {name: [kept]}


def test_query_parameters_and_user_info() -> None:
    uri = "https://user:pw@koala.sh/api/gpt/?api_key=K1&cf_clearance=C1&sessionid=S1&lang=de"
    assert scrub_uri(uri) == (
        "https://koala.sh/api/gpt/?api_key=SCRUBBED&cf_clearance=SCRUBBED"
        "&sessionid=SCRUBBED&lang=de"
    )
    assert scrub_uri("https://koala.sh/api/gpt/") == "https://koala.sh/api/gpt/"


@given(
    name=st.sampled_from(
        ["Authorization", "Cookie", "Set-Cookie", "X-Auth-Token", "Api-Key", "X-Password"]
    ),
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=40),
)
def test_no_secret_survives_in_a_sensitive_header(name: str, secret: str) -> None:
    value = f"sid={secret}" if "cookie" in name.lower() else f"Bearer {secret}"
    scrubbed = scrub_headers({name: [value]})
    assert secret not in repr(scrubbed)


@given(st.text(min_size=1, max_size=30))
def test_sensitive_name_detection_is_total(name: str) -> None:
    assert isinstance(is_sensitive_name(name), bool)


def test_scrubbing_a_cassette_keeps_everything_replay_needs() -> None:
    from mockserver.cassettes.cassette import Cassette

    original = Interaction(
        method="POST",
        uri="https://koala.sh/api/gpt/?token=t0k3n",
        request_headers={"Visitor-ID": [new_visitor_id()], "Authorization": ["Bearer x"]},
        request_body=b'{"input": "Hello"}',
        status=200,
        reason="OK",
        response_headers={"Content-Type": ["text/event-stream"], "Set-Cookie": ["a=b"]},
        body=BODY,
        chunks=single_chunk(BODY),
    )
    scrubbed = scrub_interaction(original)
    assert (scrubbed.method, scrubbed.request_body, scrubbed.body, scrubbed.chunks) == (
        original.method,
        original.request_body,
        original.body,
        original.chunks,
    )
    assert scrubbed.uri == "https://koala.sh/api/gpt/?token=SCRUBBED"
    # An allowlist: the answer keeps what replay reads, not the upstream's cookies.
    assert scrubbed.response_headers == {"Content-Type": ["text/event-stream"]}
    cassette = scrub_cassette(Cassette("c", None, [original]))
    assert cassette.interactions == [scrubbed]


# ----------------------------------------------------------------------------- through vcrpy


#: The upstream's own secrets, in its answer: no cassette may keep them.
ANSWER_SECRETS = {"Set-Cookie": "sid=resp-secret-1; Path=/", "X-Auth-Token": "resp-secret-2"}


@pytest.fixture
async def upstream(serve: Serve) -> str:
    return await serve(app_for(sse_handler(BODY, headers=ANSWER_SECRETS)))


async def test_vcrpy_recording_through_the_hooks_keeps_no_secret(
    tmp_path: Path, upstream: str
) -> None:
    recorder = koala_vcr(str(tmp_path), record_mode="once")
    visitor = new_visitor_id()
    with recorder.use_cassette("raw.yaml"):
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                upstream + "?api_key=req-secret-1",
                json={"input": "Hello"},
                headers={
                    "Authorization": "Bearer req-secret-2",
                    "Cookie": "cf_clearance=req-secret-3",
                    "X-Session-Token": "req-secret-4",
                    "Visitor-ID": visitor,
                },
            ) as response,
        ):
            assert await response.read() == BODY
    text = (tmp_path / "raw.yaml").read_text()
    for secret in ["req-secret-1", "req-secret-2", "req-secret-3", "req-secret-4", visitor]:
        assert secret not in text
    for secret in ["resp-secret-1", "resp-secret-2"]:
        assert secret not in text
    assert VISITOR_ID_PLACEHOLDER in text


async def test_a_provider_call_recorded_by_vcrpy_replays_offline(
    tmp_path: Path, upstream: str
) -> None:
    with koala_vcr(str(tmp_path), record_mode="once").use_cassette("provider.yaml"):
        live = [v async for v in Koala.create_async_generator("", MESSAGES, api_endpoint=upstream)]
    cassette = load_cassette(tmp_path / "provider.yaml")
    assert cassette.interactions[0].request_json() == {
        "input": "Hello",
        "inputHistory": [],
        "outputHistory": [],
        "model": "gpt-4o-mini",
    }
    with koala_vcr(str(tmp_path)).use_cassette("provider.yaml"):
        replayed = [
            v async for v in Koala.create_async_generator("", MESSAGES, api_endpoint=upstream)
        ]
    assert live == replayed == ["Hi"]


# ----------------------------------------------------------------------------- echoes

_TOKEN = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    min_size=8,
    max_size=30,
)
_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10)


def _echoing(name: str, secret: str, body: bytes, chunks: list[Chunk]) -> Interaction:
    """An answer that echoes ``secret`` in its URI, headers, request body and event stream."""
    return Interaction(
        method="POST",
        uri=f"https://koala.sh/api/gpt/?{name}={secret}",
        request_headers={f"X-{name}": [secret], "Content-Type": ["application/json"]},
        request_body=b'{"input": "' + secret.encode() + b'"}',
        status=200,
        reason="OK",
        response_headers={"Content-Type": ["text/event-stream"], f"X-{name}": [secret]},
        body=body,
        chunks=chunks,
    )


@settings(max_examples=200, deadline=None)
@given(
    name=_NAME,
    secret=_TOKEN,
    pieces=st.lists(st.text(max_size=20), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_an_echoed_secret_is_replaced_across_any_chunking(
    name: str, secret: str, pieces: list[str], cuts: list[int]
) -> None:
    # A "secret" that the scrubbed record holds anyway (SCRUBBED itself, "applicat" of the
    # content type, a piece of the query parameter's name) cannot be told from a leak.
    without_secret = repr(scrub_interaction(_echoing(name, "-", b"", [Chunk(0.0, b"")])))
    assume(secret not in without_secret)
    body = secret.join(pieces).encode() + secret.encode()
    points = sorted({min(c, len(body)) for c in cuts} | {0, len(body)})
    chunks = [Chunk(float(n), body[a:b]) for n, (a, b) in enumerate(pairwise(points))]
    original = _echoing(name, secret, body, chunks or [Chunk(0.0, body)])
    scrubbed = scrub_interaction(original)
    stored = repr(scrubbed).encode()
    assert secret.encode() not in stored
    assert b"".join(c.data for c in scrubbed.chunks) == scrubbed.body
    assert [c.at for c in scrubbed.chunks] == [c.at for c in original.chunks]
    assert scrubbed.body == body.replace(secret.encode(), SCRUBBED.encode())
    assert list(scrubbed.request_headers) == ["Content-Type"]
    assert list(scrubbed.response_headers) == ["Content-Type"]


@given(
    headers=st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.lists(st.text(max_size=40), min_size=1, max_size=2),
        max_size=6,
    ),
    uri=st.text(max_size=60),
)
def test_scrubbing_never_fails_on_odd_headers_or_uris(
    headers: dict[str, list[str]], uri: str
) -> None:
    interaction = Interaction(
        method="POST",
        uri=uri,
        request_headers=headers,
        request_body=b"",
        status=302,
        reason="",
        response_headers={**headers, "Location": [uri], "Link": [f"<{uri}>"]},
        body=b"",
        chunks=single_chunk(b""),
    )
    scrubbed = scrub_interaction(interaction)
    assert "Link" not in scrubbed.response_headers
    assert "Location" in scrubbed.response_headers


def test_a_removed_value_that_is_part_of_a_kept_one_is_no_echo() -> None:
    """A dropped header that says "Bearer" or repeats the User-Agent does not turn the kept
    headers into SCRUBBED."""
    agent = "Mozilla/5.0 (X11; Linux) Firefox/122.0"
    original = Interaction(
        method="POST",
        uri="https://koala.sh/api/gpt/",
        request_headers={
            "User-Agent": [agent],
            "Authorization": ["Bearer k3y-s3cr3t-value"],
            "X-Scheme": ["Bearer"],
            "X-Agent": [agent],
        },
        request_body=b"{}",
        status=200,
        reason="OK",
        response_headers={"Content-Type": ["text/event-stream"]},
        body=BODY,
        chunks=single_chunk(BODY),
    )
    scrubbed = scrub_interaction(original)
    assert scrubbed.request_headers == {
        "User-Agent": [agent],
        "Authorization": [f"Bearer {SCRUBBED}"],
    }
