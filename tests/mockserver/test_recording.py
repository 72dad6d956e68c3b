"""Recording: exact chunks against an in-process upstream, replay, scrubbing, atomicity, CLI."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from conftest import decode_stream, recording_proxy
from koala_servers import Serve, serve_fixture  # noqa: F401 (the serve fixture)
from yarl import URL

from koala import Koala, RateLimitError
from koala.request import is_visitor_id, new_visitor_id
from koala.testing import VISITOR_ID_PLACEHOLDER, koala_vcr
from mockserver.cassettes.cassette import load_cassette, load_cassette_dir
from mockserver.cli.main import main as cli_main
from mockserver.config import MockConfig
from mockserver.server.app import create_app
from mockserver.testing.embedded import KoalaMock
from mockserver.upstream.client import StreamInterruptedError, UpstreamUnreachableError
from mockserver.upstream.record import describe, record_conversation
from mockserver.upstream.saving import slug

MESSAGES = [{"role": "user", "content": "Hello"}]
PIECES = [b'data: "Hi"\n\n', b'data: " th\xc3', b'\xa8re"\n\ndata: 42\n\n', b"data: null\n\n"]
SECRETS = {
    "request": ["s3cr3t-bearer", "s3cr3t-clearance", "s3cr3t-session", "s3cr3t-xtoken", "s3cr3t-q"],
    "response": ["s3cr3t-setcookie", "s3cr3t-apikey", "s3cr3t-cfclear"],
}


@dataclass
class Upstream:
    """A tiny scripted upstream: sends ``pieces`` as separate writes, ``gap`` seconds apart."""

    pieces: list[bytes] = field(default_factory=lambda: list(PIECES))
    gap: float = 0.03
    status: int = 200
    headers: dict[str, str] = field(
        default_factory=lambda: {
            "Content-Type": "text/event-stream",
            "Set-Cookie": "sid=s3cr3t-setcookie; Path=/; HttpOnly",
            "X-Api-Key": "s3cr3t-apikey",
        }
    )
    #: After this many pieces: close the connection (None: finish normally).
    break_after: int | None = None
    #: Awaited before sending the piece with this index (lets a test hold the stream).
    hold_before: int | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)
    first_sent: asyncio.Event = field(default_factory=asyncio.Event)
    received: list[web.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(request)
        self.bodies.append(await request.read())
        response = web.StreamResponse(status=self.status, headers=self.headers)
        response.headers.add("Set-Cookie", "cf_clearance=s3cr3t-cfclear; Path=/")
        await response.prepare(request)
        for index, piece in enumerate(self.pieces):
            if index == self.hold_before:
                await self.release.wait()
            if index == self.break_after:
                assert request.transport is not None
                request.transport.close()
                return response
            if index:
                await asyncio.sleep(self.gap)
            await response.write(piece)
            self.first_sent.set()
        await response.write_eof()
        return response

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def saved(directory: Path, count: int) -> list[str]:
    """The directory's files once ``count`` cassettes are saved (the proxy saves them just after
    the stream ends) and no temporary file is left."""
    for _ in range(500):
        names = files(directory)
        if len(names) == count and not any(n.startswith(".") for n in names):
            break
        await asyncio.sleep(0.01)
    return files(directory)


# ----------------------------------------------------------------------------- exact recording


async def test_records_every_chunk_with_its_bytes_and_offsets(tmp_path: Path, serve: Serve) -> None:
    upstream = Upstream()
    url = await serve(upstream.app())
    out = tmp_path / "hello.yaml"
    recording = await record_conversation(MESSAGES, out, upstream=url)
    capture = recording.capture
    assert capture is not None
    interaction = load_cassette(out).interactions[0]
    assert interaction.body == b"".join(PIECES)
    assert [c.data for c in interaction.chunks] == [c.data for c in capture.chunks]
    # 30 ms between small writes on loopback: the chunks are the upstream's writes (a very busy
    # machine may join two, but a chunk never ends anywhere else).
    assert len(interaction.chunks) >= 2
    assert set(itertools.accumulate(len(c.data) for c in interaction.chunks)) <= set(
        itertools.accumulate(len(p) for p in PIECES)
    )
    offsets = [c.at for c in interaction.chunks]
    assert offsets == sorted(offsets)
    assert offsets[-1] >= 0.03 * (len(PIECES) - 1) * 0.5
    assert interaction.status == 200
    assert interaction.request_body == upstream.bodies[0]
    assert "content-length" not in {k.lower() for k in interaction.response_headers}
    cassette = load_cassette(out)
    assert cassette.provenance["source"] == "recorded"
    assert cassette.provenance["upstream"] == url
    summary = describe(recording)
    assert "events:   4" in summary
    assert f"bytes:    {len(b''.join(PIECES))} in {len(capture.chunks)} chunks" in summary


async def test_record_sends_exactly_what_the_provider_sends(tmp_path: Path, serve: Serve) -> None:
    upstream = Upstream()
    url = await serve(upstream.app())
    await record_conversation(MESSAGES, tmp_path / "a.yaml", upstream=url)
    [Koala_values] = [
        [v async for v in Koala.create_async_generator("", MESSAGES, api_endpoint=url)]
    ]
    assert Koala_values == decode_stream(b"".join(PIECES))
    recorded, provider = upstream.received
    assert upstream.bodies[0] == upstream.bodies[1]
    skip = {"visitor-id", "content-length"}
    names = [k for k in recorded.headers if k.lower() not in skip]
    assert names == [k for k in provider.headers if k.lower() not in skip]
    for name in names:
        assert recorded.headers.getall(name) == provider.headers.getall(name), name


async def test_round_trip_against_the_mock_server_then_replay_offline(
    tmp_path: Path, serve: Serve
) -> None:
    """Record from the mock server (synthetic answers), replay via vcrpy and via the server."""
    source = MockConfig(cassette_dir=None, mode="synthetic", latency=0.02)
    url = await serve(create_app(source))
    live = [v async for v in Koala.create_async_generator("", MESSAGES, api_endpoint=url)]
    out = tmp_path / "cassettes" / "hello.yaml"
    await record_conversation(MESSAGES, out, upstream=url)
    interaction = load_cassette(out).interactions[0]
    assert len(interaction.chunks) >= 2

    with koala_vcr(str(out.parent)).use_cassette("hello.yaml"):
        via_vcr = [v async for v in Koala.create_async_generator("", MESSAGES)]

    replay = MockConfig(cassette_dir=out.parent, mode="replay", speed=1)
    replay_url = await serve(create_app(replay))
    started = time.monotonic()
    via_server = [
        v async for v in Koala.create_async_generator("", MESSAGES, api_endpoint=replay_url)
    ]
    took = time.monotonic() - started
    assert via_vcr == via_server == live == decode_stream(interaction.body)
    # Recorded timing is honoured (a generous lower bound: a slow machine only adds time).
    assert took >= interaction.chunks[-1].at * 0.5

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            replay_url, data=interaction.request_body, headers={"Content-Type": "application/json"}
        ) as response,
    ):
        raw = b"".join([c async for c in response.content.iter_any()])
    assert raw == interaction.body


async def test_a_non_2xx_answer_is_recorded_and_replays_as_the_typed_error(
    tmp_path: Path, serve: Serve
) -> None:
    upstream = Upstream(
        status=429,
        headers={"Content-Type": "text/plain", "Retry-After": "7"},
        pieces=[b"slow down"],
    )
    url = await serve(upstream.app())
    recording = await record_conversation(MESSAGES, tmp_path / "limited.yaml", upstream=url)
    assert recording.capture is not None and recording.capture.status == 429
    assert "non-2xx" in describe(recording)
    with (
        koala_vcr(str(tmp_path)).use_cassette("limited.yaml"),
        pytest.raises(RateLimitError) as caught,
    ):
        [v async for v in Koala.create_async_generator("", MESSAGES)]
    assert caught.value.retry_after == 7


# ----------------------------------------------------------------------------- atomicity


async def test_an_upstream_disconnect_mid_stream_writes_nothing(
    tmp_path: Path, serve: Serve
) -> None:
    url = await serve(Upstream(break_after=2).app())
    with pytest.raises(StreamInterruptedError, match="broke off after"):
        await record_conversation(MESSAGES, tmp_path / "broken.yaml", upstream=url)
    assert files(tmp_path) == []


async def test_cancellation_mid_stream_writes_nothing(tmp_path: Path, serve: Serve) -> None:
    upstream = Upstream(hold_before=1)
    url = await serve(upstream.app())
    task = asyncio.create_task(record_conversation(MESSAGES, tmp_path / "c.yaml", upstream=url))
    await asyncio.wait_for(upstream.first_sent.wait(), 10)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    upstream.release.set()
    assert files(tmp_path) == []


async def test_an_unreachable_upstream_writes_nothing(tmp_path: Path, unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/api/gpt/"
    with pytest.raises(UpstreamUnreachableError, match="did not answer"):
        await record_conversation(MESSAGES, tmp_path / "x.yaml", upstream=url)
    assert files(tmp_path) == []


async def test_an_existing_cassette_is_refused_before_any_request(
    tmp_path: Path, serve: Serve
) -> None:
    upstream = Upstream()
    url = await serve(upstream.app())
    out = tmp_path / "kept.yaml"
    out.write_text("keep me")
    with pytest.raises(FileExistsError):
        await record_conversation(MESSAGES, out, upstream=url)
    assert out.read_text() == "keep me"
    assert upstream.received == []
    await record_conversation(MESSAGES, out, upstream=url, force=True)
    assert load_cassette(out).interactions[0].body == b"".join(PIECES)


# ----------------------------------------------------------------------------- recording proxy


async def test_proxy_streams_through_and_records_a_scrubbed_cassette(
    tmp_path: Path, serve: Serve
) -> None:
    upstream = Upstream(hold_before=1)
    upstream_url = await serve(upstream.app())
    record_dir = tmp_path / "recorded"
    proxy_url = await recording_proxy(serve, upstream_url, record_dir)
    visitor = new_visitor_id()
    headers = {
        "Authorization": "Bearer s3cr3t-bearer",
        "Cookie": "cf_clearance=s3cr3t-clearance; session=s3cr3t-session",
        "X-Session-Token": "s3cr3t-xtoken",
        "Visitor-ID": visitor,
        "Content-Type": "application/json",
    }
    body = b'{"input": "Hello there", "inputHistory": [], "outputHistory": [], "model": "m"}'
    async with (
        aiohttp.ClientSession() as session,
        session.post(proxy_url + "?api_key=s3cr3t-q", data=body, headers=headers) as response,
    ):
        # The upstream holds back everything after the first write until we have seen it:
        # a buffering proxy would deadlock here (and time out).
        first = await asyncio.wait_for(response.content.readany(), 10)
        upstream.release.set()
        rest = b"".join([c async for c in response.content.iter_any()])
    assert first + rest == b"".join(PIECES)
    assert first == PIECES[0]
    assert upstream.received[0].headers["Authorization"] == "Bearer s3cr3t-bearer"

    assert await saved(record_dir, 1) == ["hello-there-001.yaml"]
    text = (record_dir / "hello-there-001.yaml").read_text()
    for secret in SECRETS["request"] + SECRETS["response"] + [visitor]:
        assert secret not in text
    interaction = load_cassette(record_dir / "hello-there-001.yaml").interactions[0]
    assert interaction.request_header("Visitor-ID") == VISITOR_ID_PLACEHOLDER
    assert interaction.request_header("Authorization") == "Bearer SCRUBBED"
    assert interaction.body == b"".join(PIECES)
    assert interaction.request_body == body


async def test_proxy_never_overwrites_and_numbers_cassettes(tmp_path: Path, serve: Serve) -> None:
    upstream = Upstream(gap=0)
    upstream_url = await serve(upstream.app())
    proxy_url = await recording_proxy(serve, upstream_url, tmp_path)
    body = b'{"input": "Hi", "inputHistory": [], "outputHistory": [], "model": "%s"}'
    async with aiohttp.ClientSession() as session:
        # Two requests with one slug: numbered files. The same request again: replayed from its
        # cassette (new_episodes, the proxy's default), never a second file for it.
        for model in (b"m1", b"m2", b"m1"):
            async with session.post(proxy_url, data=body % model) as response:
                assert await response.read() == b"".join(PIECES)
    assert await saved(tmp_path, 2) == ["hi-001.yaml", "hi-002.yaml"]
    assert len(upstream.received) == 2


async def test_proxy_without_a_record_dir_saves_in_the_working_directory(
    tmp_path: Path,
    serve: Serve,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not into the cassettes it serves: in a plain install those are in site-packages.
    served = tmp_path / "served"
    served.mkdir()
    monkeypatch.chdir(tmp_path)
    upstream_url = await serve(Upstream(gap=0).app())
    proxy_url = await recording_proxy(serve, upstream_url, None, cassette_dir=served)
    body = b'{"input": "Hi", "inputHistory": [], "outputHistory": [], "model": "m"}'
    async with aiohttp.ClientSession() as session, session.post(proxy_url, data=body) as response:
        await response.read()
    assert await saved(tmp_path / "cassettes", 1) == ["hi-001.yaml"]
    assert files(served) == []


async def test_proxy_answers_502_when_the_upstream_does_not_answer(
    tmp_path: Path, serve: Serve, unused_tcp_port: int
) -> None:
    dead = f"http://127.0.0.1:{unused_tcp_port}/api/gpt/"
    proxy_url = await recording_proxy(serve, dead, tmp_path)
    async with aiohttp.ClientSession() as session, session.post(proxy_url, data=b"{}") as response:
        assert response.status == 502
        assert "did not answer" in await response.text()
    assert files(tmp_path) == []


async def test_proxy_keeps_secrets_with_no_scrub(tmp_path: Path, serve: Serve) -> None:
    upstream_url = await serve(Upstream(gap=0).app())
    proxy_url = await recording_proxy(serve, upstream_url, tmp_path, scrub=False)
    async with (
        aiohttp.ClientSession() as session,
        session.post(proxy_url, data=b"{}", headers={"X-Api-Key": "kept-key"}) as response,
    ):
        await response.read()
    assert await saved(tmp_path, 1) == ["interaction-001.yaml"]
    assert "kept-key" in (tmp_path / "interaction-001.yaml").read_text()


# ----------------------------------------------------------------------------- CLI


def test_cli_record_prints_a_summary_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hello.yaml"
    with KoalaMock(MockConfig(cassette_dir=None, mode="synthetic")) as mock:
        argv = ["record", "--out", str(out), "--prompt", "Hello", "--upstream", mock.api_endpoint]
        assert cli_main(argv) == 0
        printed = capsys.readouterr().out
        assert "status:   200 OK" in printed
        assert f"file:     {out}" in printed
        # The same request again (record mode once): the cassette holds it, nothing is sent.
        assert cli_main(argv) == 0
        assert "already holds this request" in capsys.readouterr().err
        other = ["record", "--out", str(out), "--prompt", "Bye", "--upstream", mock.api_endpoint]
        assert cli_main(other) == 1
        assert "already exists" in capsys.readouterr().err
        assert cli_main([*argv, "--no-scrub", "--force"]) == 0
        assert "scrubbing is OFF" in capsys.readouterr().err
    cassette = load_cassette(out)
    assert is_visitor_id(cassette.interactions[0].request_header("Visitor-ID") or "")
    assert cassette.description == "recorded answer to 'Hello'"


def test_cli_record_reports_an_unreachable_upstream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/api/gpt/"
    assert (
        cli_main(["record", "--out", str(tmp_path / "x.yaml"), "--prompt", "Hi", "--upstream", url])
        == 5  # ExitCode.UNREACHABLE; 2 is argparse's usage error
    )
    assert "did not answer" in capsys.readouterr().err
    assert files(tmp_path) == []


def test_cli_record_reads_messages_from_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = tmp_path / "messages.json"
    messages.write_text(
        '[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]'
    )
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    out = tmp_path / "out" / "conv.yaml"
    with KoalaMock(MockConfig(cassette_dir=None, mode="synthetic")) as mock:
        base = ["record", "--out", str(out), "--upstream", mock.api_endpoint]
        assert cli_main([*base, "--messages", str(bad)]) == 4
        assert "not valid JSON" in capsys.readouterr().err
        assert cli_main([*base, "--messages", str(messages)]) == 0
    assert load_cassette(out).interactions[0].request_json()["input"] == "Hi Be brief."


def test_cli_record_sends_a_model_the_provider_does_not_list_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with KoalaMock(MockConfig(cassette_dir=None, mode="synthetic")) as mock:
        base = ["record", "--prompt", "Hi", "--upstream", mock.api_endpoint]
        assert cli_main([*base, "--out", str(tmp_path / "a.yaml"), "--model", "gpt-4"]) == 0
        assert "does not list the model 'gpt-4'" in capsys.readouterr().err
        alias = "gpt-4o-mini-2024-07-18"
        assert cli_main([*base, "--out", str(tmp_path / "b.yaml"), "--model", alias]) == 0
        assert "warning" not in capsys.readouterr().err
    assert load_cassette(tmp_path / "a.yaml").interactions[0].request_json()["model"] == "gpt-4"
    assert load_cassette(tmp_path / "b.yaml").interactions[0].request_json()["model"] == (
        Koala.get_model(alias)
    )


def test_cli_record_turns_any_provider_error_into_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from koala.errors import InvalidOptionError
    from mockserver.cli import record as record_command

    async def refuse(*args: object, **kwargs: object) -> None:
        raise InvalidOptionError("no such option")

    monkeypatch.setattr(record_command, "record_conversation", refuse)
    out = tmp_path / "x.yaml"
    upstream = "http://127.0.0.1:9/api/gpt/"
    assert cli_main(["record", "--out", str(out), "--prompt", "Hi", "--upstream", upstream]) == 4
    err = capsys.readouterr().err
    assert err.strip() == "koala-mock: record: no such option"


async def test_the_default_upstream_is_the_providers_endpoint(
    tmp_path: Path, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = Upstream(gap=0)
    monkeypatch.setattr(Koala, "api_endpoint", await serve(upstream.app()))
    await record_conversation(MESSAGES, tmp_path / "x.yaml")
    assert len(upstream.received) == 1


def test_cli_record_refuses_a_bad_upstream_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.yaml"
    assert cli_main(["record", "--out", str(out), "--prompt", "Hi", "--upstream", "ftp://x"]) == 4
    assert "expected an http:// or https:// URL" in capsys.readouterr().err
    assert files(tmp_path) == []


def test_slugs_are_file_name_safe() -> None:
    assert slug("Hello, World! ¿Qué?") == "hello-world-qu"
    assert slug("!!!") == "interaction"
    assert len(slug("x" * 100)) == 40


def test_loaded_directory_after_recordings_has_no_temp_files(tmp_path: Path) -> None:
    found, errors = load_cassette_dir(tmp_path)
    assert (found, errors) == ([], [])


@pytest.mark.live
def test_live_api_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Records one greeting from https://koala.sh/api/gpt/ (needs --live and the network)."""
    out = tmp_path / "live.yaml"
    assert cli_main(["record", "--out", str(out), "--prompt", "Hello"]) == 0, (
        capsys.readouterr().err
    )
    assert load_cassette(out).provenance["source"] == "recorded"


async def test_proxy_journals_what_it_forwarded(tmp_path: Path, serve: Serve) -> None:
    upstream_url = await serve(Upstream(gap=0).app())
    proxy_url = await recording_proxy(serve, upstream_url, tmp_path)
    body = b'{"input": "Hi", "inputHistory": [], "outputHistory": [], "model": "m"}'
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy_url, data=body) as response:
            await response.read()
        journal_url = str(URL(proxy_url).with_path("/__admin/requests"))
        async with session.get(journal_url) as response:
            (entry,) = (await response.json())["requests"]
    assert entry["body"] == {"input": "Hi", "inputHistory": [], "outputHistory": [], "model": "m"}
    assert entry["served_by"]["source"] == "upstream"
    assert entry["verdict"] is not None
    assert (entry["status"], entry["ending"]) == (200, "eof")
    assert entry["bytes_sent"] == len(b"".join(PIECES))
    assert entry["events_sent"] == 4
