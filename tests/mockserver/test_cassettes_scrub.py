"""Scrubbing: the rules, and vcrpy recording through koala.testing's hooks keeps no secret."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st

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
from mockserver.cassettes.cassette import Interaction, load_cassette, single_chunk
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


async def answer(request: web.Request) -> web.StreamResponse:
    await request.read()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Set-Cookie": "sid=resp-secret-1; Path=/",
            "X-Auth-Token": "resp-secret-2",
        }
    )
    await response.prepare(request)
    await response.write(BODY)
    await response.write_eof()
    return response


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/api/gpt/", answer)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("/api/gpt/"))


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
