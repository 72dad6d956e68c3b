"""Recording you can trust: no secret in what is written, no redirect followed, the mock's own
headers kept to itself, vcrpy's record modes. Every upstream is a local aiohttp server."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import decode_stream, recording_proxy
from koala_servers import Serve, serve_fixture  # noqa: F401 (the serve fixture)
from secret_planting import BODY, through_record, through_the_proxy

from koala.testing import SCRUBBED, VISITOR_ID_PLACEHOLDER
from mockserver.cassettes.cassette import load_cassette, load_cassette_dir
from mockserver.cassettes.scrub import mask_url
from mockserver.cli.main import _print_banner
from mockserver.cli.main import main as cli_main
from mockserver.cli.record import Progress
from mockserver.config import ConfigError, MockConfig
from mockserver.testing.embedded import ServerAddress
from mockserver.upstream.record import RecordRefusedError, record_conversation
from mockserver.upstream.verify import OK, Verdict, verify_cassettes

MESSAGES = [{"role": "user", "content": "Hello"}]
STREAM = b'data: "Hi"\n\ndata: " there"\n\n'


class Upstream:
    """A scripted upstream that remembers every request it got."""

    def __init__(
        self,
        status: int = 200,
        headers: dict[str, str] | None = None,
        body: bytes = STREAM,
    ) -> None:
        self.status, self.body = status, body
        self.headers = headers if headers is not None else {"Content-Type": "text/event-stream"}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        #: Called with each request before it is answered (e.g. to see what verify printed).
        self.on_request: Callable[[], None] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.method, request.path_qs, dict(request.headers), body))
        if self.on_request is not None:
            self.on_request()
        return web.Response(status=self.status, headers=self.headers, body=self.body)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


async def saved(directory: Path, count: int) -> list[str]:
    """The cassette files once ``count`` are there (the proxy saves just after the stream)."""
    for _ in range(300):
        names = sorted(p.name for p in directory.glob("*.yaml")) if directory.exists() else []
        if len(names) >= count:
            return names
        await asyncio.sleep(0.01)
    return sorted(p.name for p in directory.glob("*.yaml")) if directory.exists() else []


Post = Callable[..., Awaitable[tuple[int, dict[str, str], bytes]]]


@pytest.fixture
async def post() -> Any:
    async with aiohttp.ClientSession() as session:

        async def send(
            url: str, body: bytes = BODY, headers: dict[str, str] | None = None
        ) -> tuple[int, dict[str, str], bytes]:
            async with session.post(
                url, data=body, headers=headers or {}, allow_redirects=False
            ) as response:
                return response.status, dict(response.headers), await response.read()

        yield send


# ----------------------------------------------------------------------------- planted secrets


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_no_planted_secret_reaches_the_proxys_cassettes_or_journal(
    tmp_path: Path, seed: int
) -> None:
    plant, leaked, _ = await through_the_proxy(seed, tmp_path)
    assert len(plant.planted) >= 30
    assert leaked == []
    # Not vacuous: both interactions were recorded, with the contract's headers.
    browser = load_cassette_dir(tmp_path / "browser")[0]
    keyed = load_cassette_dir(tmp_path / "keyed")[0]
    assert len(browser) == len(keyed) == 1
    for cassette in (browser[0], keyed[0]):
        interaction = cassette.interactions[0]
        assert interaction.request_body == BODY
        assert interaction.status == 200
        assert interaction.request_header("Content-Type") == "application/json"
        assert len(decode_stream(interaction.body)) == 3
    assert keyed[0].interactions[0].request_header("Authorization") == f"Bearer {SCRUBBED}"
    assert browser[0].interactions[0].request_header("Visitor-ID") == VISITOR_ID_PLACEHOLDER
    # The upstream's own basic auth is what the browser-shape request carried upstream.
    assert browser[0].interactions[0].request_header("Authorization") == f"Basic {SCRUBBED}"


@pytest.mark.parametrize("seed", [4, 5])
def test_no_planted_secret_reaches_records_cassette_or_output(tmp_path: Path, seed: int) -> None:
    plant, leaked = through_record(seed, tmp_path)
    assert len(plant.planted) >= 15
    assert leaked == []
    [interaction] = load_cassette(tmp_path / "hostile.yaml").interactions
    assert interaction.status == 200 and len(decode_stream(interaction.body)) == 3
    assert (
        interaction.response_header(
            "Location",
        )
        is not None
    )  # kept, with its query scrubbed


def test_upstream_urls_are_printed_masked() -> None:
    url = "http://someone:hunter22pw@127.0.0.1:9/api/gpt/?sig=abcdef123456&lang=de"
    config = MockConfig(cassette_dir=None, record_upstream=url)
    out = io.StringIO()
    _print_banner(ServerAddress("127.0.0.1", 8765), config, out)
    printed = out.getvalue()
    assert "hunter22pw" not in printed and "someone" not in printed
    assert "abcdef123456" not in printed
    assert mask_url(url) in printed


def test_record_says_the_upstream_is_down_without_its_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    url = f"http://someone:hunter22pw@127.0.0.1:{unused_tcp_port}/api/gpt/?sig=abcdef123456"
    assert cli_main(["record", "--out", str(tmp_path / "x.yaml"), "--prompt", "Hi",
                     "--upstream", url]) == 5  # fmt: skip
    err = capsys.readouterr().err
    assert "did not answer" in err
    assert "hunter22pw" not in err and "abcdef123456" not in err and "someone" not in err


async def test_user_info_is_basic_auth_only_without_a_client_authorization(
    tmp_path: Path, serve: Serve, post: Post
) -> None:
    upstream = Upstream()
    base = await serve(upstream.app())
    url = base.replace("http://", "http://me:pw@") + "?region=eu"
    proxy = await recording_proxy(serve, url, tmp_path)
    status, _, _ = await post(proxy + "?trace=1", headers={"Authorization": "Bearer mine"})
    assert status == 200  # was a 500: aiohttp refuses user-info and an Authorization together
    status, _, _ = await post(proxy, body=BODY.replace(b"Hello", b"Other"))
    assert status == 200
    (_, first_path, first, _), (_, second_path, second, _) = upstream.requests
    assert first["Authorization"] == "Bearer mine"
    assert second["Authorization"] == "Basic " + base64.b64encode(b"me:pw").decode()
    # The upstream's own query string is kept, the client's appended.
    assert first_path == "/api/gpt/?region=eu&trace=1"
    assert second_path == "/api/gpt/?region=eu"


# ----------------------------------------------------------------------------- redirects


async def test_no_redirect_is_followed_by_record_the_proxy_or_verify(
    tmp_path: Path, serve: Serve, post: Post
) -> None:
    elsewhere = Upstream()
    target = await serve(elsewhere.app())
    redirecting = Upstream(
        status=302, headers={"Location": target + "?token=abcdef123456"}, body=b""
    )
    url = await serve(redirecting.app())

    recording = await record_conversation(MESSAGES, tmp_path / "r.yaml", upstream=url)
    assert recording.interaction.status == 302

    proxy = await recording_proxy(serve, url, tmp_path / "proxy")
    status, headers, _ = await post(proxy, headers={"X-Api-Key": "k"})
    assert status == 302  # passed to the client as it is
    assert headers["Location"] == target + "?token=abcdef123456"
    [name] = await saved(tmp_path / "proxy", 1)

    verdicts = await verify_cassettes([load_cassette(tmp_path / "r.yaml")], url)
    assert [v.outcome for v in verdicts] == [OK]
    assert elsewhere.requests == []  # the other server saw nothing, from any of the three
    assert len(redirecting.requests) == 3
    for path in (tmp_path / "r.yaml", tmp_path / "proxy" / name):
        [interaction] = load_cassette(path).interactions
        assert interaction.status == 302
        assert interaction.response_header("Location") == target + f"?token={SCRUBBED}"


# ----------------------------------------------------------------------------- control headers


async def test_control_headers_are_never_forwarded_or_stored(
    tmp_path: Path, serve: Serve, post: Post
) -> None:
    upstream = Upstream()
    proxy = await recording_proxy(serve, await serve(upstream.app()), tmp_path)

    status, headers, body = await post(proxy, headers={"X-Koala-Mock-Seed": "7"})
    assert status == 200
    assert headers["X-Koala-Mock-Seed"] == "7"
    assert decode_stream(body) == decode_stream(STREAM)  # the same values...
    assert body != STREAM  # ...fuzzed for the client
    [(_, _, sent, _)] = upstream.requests
    assert not any(name.lower().startswith("x-koala-mock") for name in sent)
    [name] = await saved(tmp_path, 1)
    interaction = load_cassette(tmp_path / name).interactions[0]
    assert interaction.body == STREAM  # the cassette keeps the upstream's bytes
    assert not any(n.lower().startswith("x-koala-mock") for n in interaction.request_headers)

    fault_body = BODY.replace(b"Hello", b"Faulty")
    status, _, _ = await post(proxy, body=fault_body, headers={"X-Koala-Mock-Fault": "rate_limit"})
    assert status == 429
    assert len(upstream.requests) == 1  # the upstream never heard of it
    assert await saved(tmp_path, 2) == [name]  # and nothing was recorded
    # A recorded answer then still answers normally (no stored fault header).
    status, _, body = await post(proxy)
    assert (status, decode_stream(body)) == (200, decode_stream(STREAM))


def test_settings_that_mean_nothing_to_the_proxy_are_refused() -> None:
    for options in ({"mode": "replay"}, {"default_fault": "rate_limit"}, {"seed": 3}):
        with pytest.raises(ConfigError, match="does not apply to the recording proxy"):
            MockConfig(record_upstream="http://127.0.0.1:9/", **options)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- record modes

# A row per mode: (cassette existed at start, request held, the upstream called?, answer's status)
PROXY_MATRIX = {
    "once": [(False, False, True, 200), (True, True, False, 200), (True, False, False, 404)],
    "new_episodes": [(True, True, False, 200), (True, False, True, 200), (False, False, True, 200)],
    "none": [(True, True, False, 200), (True, False, False, 404), (False, False, False, 404)],
    "all": [(True, True, True, 200), (True, False, True, 200), (False, False, True, 200)],
}
PROXY_CASES = [(mode, *case) for mode, cases in PROXY_MATRIX.items() for case in cases]


@pytest.mark.parametrize(("mode", "existed", "held", "calls", "status"), PROXY_CASES)
async def test_proxy_record_mode_matrix(
    tmp_path: Path,
    serve: Serve,
    post: Post,
    mode: str,
    existed: bool,
    held: bool,
    calls: bool,
    status: int,
) -> None:
    upstream = Upstream(body=b'data: "fresh"\n\n')
    url = await serve(upstream.app())
    if existed:  # a directory recorded before, holding "Hello" (held) or "Other" (not held)
        source = Upstream(body=b'data: "old"\n\n')
        old = await recording_proxy(serve, await serve(source.app()), tmp_path)
        await post(old, body=BODY if held else BODY.replace(b"o", b"0"))
        assert await saved(tmp_path, 1)
    before = sorted(p.name for p in tmp_path.glob("*.yaml"))
    got, _, body = await post(await recording_proxy(serve, url, tmp_path, record_mode=mode))
    assert got == status
    assert bool(upstream.requests) == calls
    if status == 200:
        assert decode_stream(body) == (["fresh"] if calls else ["old"])
    after = await saved(tmp_path, len(before) + (1 if calls and not held else 0))
    # Never two cassettes for one request: a re-recording replaces the file that held it.
    assert len(after) == len(before) + (1 if calls and not held else 0)
    if calls:
        texts = [load_cassette(tmp_path / n).interactions[0].body for n in after]
        assert texts.count(b'data: "fresh"\n\n') == 1
    # A second, identical request never calls the upstream again (except in mode all).
    if status == 200:
        await post(await recording_proxy(serve, url, tmp_path, record_mode=mode))
        assert len(upstream.requests) == (2 if mode == "all" else int(calls))


async def test_concurrent_identical_requests_are_recorded_once(
    tmp_path: Path, serve: Serve, post: Post
) -> None:
    upstream = Upstream()
    proxy = await recording_proxy(serve, await serve(upstream.app()), tmp_path)
    answers = await asyncio.gather(*(post(proxy) for _ in range(5)))
    assert [a[0] for a in answers] == [200] * 5
    assert len(upstream.requests) == 1
    assert await saved(tmp_path, 1) == ["hello-001.yaml"]


@pytest.mark.parametrize(
    ("mode", "existed", "held", "calls"),
    [
        ("once", False, False, True),
        ("once", True, True, False),
        ("once", True, False, None),
        ("new_episodes", True, True, False),
        ("new_episodes", True, False, True),
        ("none", True, True, False),
        ("none", True, False, None),
        ("none", False, False, None),
        ("all", True, True, True),
        ("all", True, False, True),
    ],
)
async def test_record_mode_matrix(
    tmp_path: Path, serve: Serve, mode: str, existed: bool, held: bool, calls: bool | None
) -> None:
    """``calls`` None: refused before anything is sent, the file unchanged."""
    upstream = Upstream(body=b'data: "fresh"\n\n')
    url = await serve(upstream.app())
    out = tmp_path / "c.yaml"
    if existed:
        old = Upstream(body=b'data: "old"\n\n')
        prompt = MESSAGES if held else [{"role": "user", "content": "Other"}]
        await record_conversation(prompt, out, upstream=await serve(old.app()))
    before = out.read_bytes() if existed else None
    if calls is None:
        with pytest.raises(RecordRefusedError, match="--record-mode"):
            await record_conversation(MESSAGES, out, upstream=url, record_mode=mode)  # type: ignore[arg-type]
        assert upstream.requests == []
        assert (out.read_bytes() if out.exists() else None) == before
        return
    recording = await record_conversation(MESSAGES, out, upstream=url, record_mode=mode)  # type: ignore[arg-type]
    assert bool(upstream.requests) == calls
    interactions = load_cassette(out).interactions
    bodies = [i.body for i in interactions]
    assert recording.interaction.body == (b'data: "fresh"\n\n' if calls else b'data: "old"\n\n')
    # new_episodes adds to the file; all rewrites it; one request is never held twice.
    expected = {
        ("new_episodes", False): [b'data: "old"\n\n', b'data: "fresh"\n\n'],
        ("all", True): [b'data: "fresh"\n\n'],
        ("all", False): [b'data: "fresh"\n\n'],
    }.get((mode, held))
    if expected is not None:
        assert bodies == expected
    assert sum(i.request_body == interactions[-1].request_body for i in interactions) == 1


# ----------------------------------------------------------------------------- reports


def test_record_progress_shows_the_answer_as_it_streams() -> None:
    out = io.StringIO()
    progress = Progress(out)
    asyncio.run(progress(b'data: "Hel'))
    assert out.getvalue() == ""
    asyncio.run(progress(b'lo"\n\ndata: " you"\n\n'))
    assert out.getvalue() == "Hello you"
    # Not an event stream (any more): a byte count instead.
    asyncio.run(progress(b"data: not json\n\n"))
    asyncio.run(progress(b"x"))
    progress.end()
    assert out.getvalue() == "Hello you\r45 bytes received\r46 bytes received\n"


def test_record_is_quiet_but_for_its_summary_when_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], serve_thread: str
) -> None:
    assert cli_main(["record", "--out", str(tmp_path / "a.yaml"), "--prompt", "Hello",
                     "--upstream", serve_thread]) == 0  # fmt: skip
    printed = capsys.readouterr()
    assert printed.err == ""
    assert f"bytes:    {len(STREAM)} in 1 chunk\n" in printed.out  # singular


@pytest.fixture
def serve_thread() -> Any:
    from koala_servers import server_in_thread, sse_handler

    with server_in_thread(sse_handler(STREAM)) as url:
        yield url


async def test_verify_reports_each_result_as_it_finishes(tmp_path: Path, serve: Serve) -> None:
    upstream = Upstream()
    url = await serve(upstream.app())
    for prompt in ("One", "Two", "Three"):
        await record_conversation([{"role": "user", "content": prompt}],
                                  tmp_path / f"{prompt}.yaml", upstream=url)  # fmt: skip
    cassettes, _ = load_cassette_dir(tmp_path)
    heard: list[Verdict] = []
    seen_at_request: list[int] = []
    upstream.on_request = lambda: seen_at_request.append(len(heard))
    await verify_cassettes(cassettes, url, on_verdict=heard.append)
    assert seen_at_request[-3:] == [0, 1, 2]  # each verdict out before the next request
    assert [v.outcome for v in heard] == [OK, OK, OK]


def test_verify_checks_every_loadable_cassette_and_says_one_was_broken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], serve_thread: str
) -> None:
    assert cli_main(["record", "--out", str(tmp_path / "good.yaml"), "--prompt", "Hello",
                     "--upstream", serve_thread]) == 0  # fmt: skip
    (tmp_path / "broken.yaml").write_text("version: 1\n")
    capsys.readouterr()
    assert cli_main(["verify", "--upstream", serve_thread, str(tmp_path)]) == 4
    printed = capsys.readouterr()
    assert "verifying 1 cassette (1 interaction) against" in printed.out
    assert "good: ok" in printed.out
    assert "summary: 1 ok, 0 drift, 0 unverified, 1 broken cassette" in printed.out
    assert "broken.yaml: missing key 'interactions'" in printed.err

    assert cli_main(["verify", "--format", "json", "--upstream", serve_thread, str(tmp_path)]) == 4
    document = json.loads(capsys.readouterr().out)
    assert document["results"] == [{"name": "good", "outcome": "ok", "differences": [], "note": ""}]
    assert document["summary"] == {"ok": 1, "drift": 0, "unverified": 0, "broken": 1}
    assert [b["problem"] for b in document["broken"]] == ["missing key 'interactions'"]
    assert document["exit_code"] == 4


# ----------------------------------------------------------------------------- the keyed shape


@pytest.mark.parametrize("json_reply", [False, True])
def test_record_records_the_keyed_shape_and_replays_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    json_reply: bool,
) -> None:
    from koala import Koala
    from mockserver.testing.embedded import KoalaMock

    key = "kx9" + "Q" * 20 + "secretkey"
    monkeypatch.setenv("KOALA_API_KEY", key)
    out = tmp_path / "keyed.yaml"
    argv = ["record", "--out", str(out), "--prompt", "Hello", "--keyed"]
    if json_reply:
        argv.append("--json-reply")
    live = MockConfig(cassette_dir=None, mode="synthetic", api_key=key)
    with KoalaMock(live) as mock:
        assert cli_main([*argv, "--upstream", mock.api_endpoint]) == 0, capsys.readouterr().err
        [sent] = mock.requests.api()
    assert (sent["status"], sent["shape"]) == (200, "keyed")  # the mock required the key
    printed = capsys.readouterr()
    assert key not in out.read_text() + printed.out + printed.err
    [interaction] = load_cassette(out).interactions
    assert interaction.request_header("Authorization") == f"Bearer {SCRUBBED}"
    assert interaction.request_header("Visitor-ID") is None  # the keyed shape has none
    assert interaction.request_json()["realTimeData"] is False
    expected_type = "application/json" if json_reply else "text/event-stream"
    assert (interaction.response_header("Content-Type") or "").startswith(expected_type)
    with KoalaMock(MockConfig(cassette_dir=tmp_path, mode="replay")) as replay:
        answer = asyncio.run(
            Koala.create_async(
                "gpt-4o-mini",
                MESSAGES,
                api_endpoint=replay.api_endpoint,
                api_key=key,
                json_reply=json_reply,
            )
        )
    assert answer.startswith("You said")


def test_record_keyed_without_a_key_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KOALA_API_KEY", raising=False)
    argv = ["record", "--out", str(tmp_path / "k.yaml"), "--prompt", "Hi", "--keyed",
            "--upstream", "http://127.0.0.1:9/api/gpt/"]  # fmt: skip
    assert cli_main(argv) == 4
    assert "needs the key in $KOALA_API_KEY" in capsys.readouterr().err


async def test_two_cassettes_of_one_request_are_reported(tmp_path: Path, serve: Serve) -> None:
    """Hand-copied files can still hold one request twice: the library names the shadowed one
    (serve warns at start-up) instead of silently taking the first."""
    from mockserver.cassettes.library import CassetteLibrary

    url = await serve(Upstream().app())
    await record_conversation(MESSAGES, tmp_path / "a.yaml", upstream=url)
    (tmp_path / "b.yaml").write_bytes((tmp_path / "a.yaml").read_bytes())
    library = CassetteLibrary(tmp_path)
    library.reload()
    assert library.duplicates == [("b", "a")]


async def test_an_answer_too_large_to_hold_is_not_recorded(tmp_path: Path, serve: Serve) -> None:
    from mockserver.upstream.client import AnswerTooLargeError, UpstreamClient, UpstreamURL

    url = await serve(Upstream(body=b"data: " + b"x" * 5000 + b"\n\n").app())
    async with UpstreamClient(max_answer_bytes=1000) as client:
        with pytest.raises(AnswerTooLargeError, match="1,000-byte limit"):
            await client.capture("POST", UpstreamURL.parse(url), {}, BODY)


def test_verify_json_says_the_upstream_did_not_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], serve_thread: str, unused_tcp_port: int
) -> None:
    assert cli_main(["record", "--out", str(tmp_path / "good.yaml"), "--prompt", "Hello",
                     "--upstream", serve_thread]) == 0  # fmt: skip
    capsys.readouterr()
    dead = f"http://127.0.0.1:{unused_tcp_port}/api/gpt/?key=abcdef123456"
    assert cli_main(["verify", "--format", "json", "--upstream", dead, str(tmp_path)]) == 5
    printed = capsys.readouterr()
    document = json.loads(printed.out)
    assert document["results"] == [] and document["exit_code"] == 5
    assert "did not answer" in document["unreachable"]
    assert "no cassette was verified" in document["unreachable"]
    assert "abcdef123456" not in printed.out + printed.err


def test_record_force_and_another_record_mode_contradict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["record", "--out", str(tmp_path / "x.yaml"), "--prompt", "Hi", "--force",
            "--record-mode", "none", "--upstream", "http://127.0.0.1:9/api/gpt/"]  # fmt: skip
    assert cli_main(argv) == 2
    assert "contradicts --record-mode none" in capsys.readouterr().err
