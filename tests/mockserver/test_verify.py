"""Drift check: no drift against the server that recorded; the specific drift when it changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from koala_servers import Serve, serve_fixture  # noqa: F401 (the serve fixture)

from mockserver.cassettes.cassette import Cassette, load_cassette, load_cassette_dir
from mockserver.cassettes.handmade import CASSETTE_DIR
from mockserver.cli.cassette_commands import verify_exit_code as exit_code
from mockserver.cli.exit_codes import ExitCode
from mockserver.cli.main import main as cli_main
from mockserver.config import MockConfig
from mockserver.server.app import create_app
from mockserver.testing.embedded import KoalaMock
from mockserver.upstream.client import UpstreamUnreachableError
from mockserver.upstream.record import record_conversation
from mockserver.upstream.verify import (
    DRIFT,
    OK,
    UNVERIFIED,
    framing_differences,
    report,
    stream_shape,
    verify_cassettes,
)
from mockserver.wire.streams import WireFormat, encode_stream

MESSAGES = [{"role": "user", "content": "Hello"}]


def mock(**options: object) -> web.Application:
    return create_app(MockConfig(cassette_dir=None, mode="synthetic", **options))  # type: ignore[arg-type]


@pytest.fixture
async def recorded(tmp_path: Path, serve: Serve) -> Cassette:
    """A cassette recorded from the mock server in synthetic mode."""
    url = await serve(mock())
    out = tmp_path / "hello.yaml"
    await record_conversation(MESSAGES, out, upstream=url)
    return load_cassette(out)


def scripted(
    body: bytes, content_type: str = "text/event-stream", status: int = 200
) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_post("/api/gpt/", handle)
    return app


# ----------------------------------------------------------------------------- pure parts


def test_stream_shape_measures_the_framing() -> None:
    shape = stream_shape(
        b'data: "a"\r\n\r\ndata:1\r\n\r\n: ping\r\nevent: x\r\ndata: [DONE]\r\n\r\n'
    )
    assert shape.line_endings == {"CRLF"}
    assert shape.data_forms == {"data: ", "data:"}
    assert shape.value_kinds == {"string", "number"}
    assert shape.other_fields == {"comment", "event"}
    assert shape.done_marker
    assert shape.ends_with_blank_line
    assert shape.events == 3


def test_text_changes_are_not_drift() -> None:
    assert framing_differences(encode_stream(["Hi", " there"]), encode_stream(["Other", "!"])) == []


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        (
            encode_stream(["a", "b"], WireFormat(line_ending="\r\n")),
            "line endings: recorded LF, upstream CRLF",
        ),
        (encode_stream(["a"], WireFormat(space_after_colon=False)), "data line form"),
        (encode_stream(["a", 1, None]), "data values: upstream sends null, number"),
        (
            encode_stream(["a"]) + b"data: [DONE]\n\n",
            "[DONE] marker: recorded none, upstream one",
        ),
        (
            encode_stream(["a"], WireFormat(final_blank_line=False)),
            "blank line after the last event: recorded one, upstream none",
        ),
        (b'data: "a"\ndata: "b"\n\n', "data lines per event: recorded 1, upstream 2"),
        (
            encode_stream(["a"], WireFormat(bom=True)),
            "byte order mark: recorded no BOM, upstream a BOM",
        ),
        (
            encode_stream(["a"], WireFormat(comment_every=1)),
            "other fields: recorded none, upstream comment",
        ),
    ],
)
def test_each_kind_of_framing_drift_is_named(live: bytes, expected: str) -> None:
    differences = framing_differences(encode_stream(["x", "y"]), live)
    assert any(expected in d for d in differences), differences


def test_drift_lines_are_words_not_python_booleans() -> None:
    plain = encode_stream(["x"])
    odd = encode_stream(["x"], WireFormat(bom=True, final_blank_line=False)) + b"data: [DONE]"
    for differences in (framing_differences(plain, odd), framing_differences(odd, plain)):
        assert len(differences) >= 3
        assert not any("True" in d or "False" in d for d in differences), differences


# ----------------------------------------------------------------------------- against servers


async def test_no_drift_against_the_server_that_recorded(recorded: Cassette, serve: Serve) -> None:
    url = await serve(mock())
    [verdict] = await verify_cassettes([recorded], url)
    assert (verdict.outcome, verdict.differences) == (OK, [])
    assert exit_code([verdict]) == 0


async def test_crlf_line_endings_are_drift(recorded: Cassette, serve: Serve) -> None:
    url = await serve(mock(default_fault="crlf"))
    [verdict] = await verify_cassettes([recorded], url)
    assert verdict.outcome == DRIFT
    assert "line endings: recorded LF, upstream CRLF" in verdict.differences
    assert exit_code([verdict]) == 1


async def test_a_different_content_type_is_drift(recorded: Cassette, serve: Serve) -> None:
    url = await serve(mock(default_fault="wrong_content_type"))
    [verdict] = await verify_cassettes([recorded], url)
    assert "content type: recorded text/event-stream, upstream text/plain" in verdict.differences


async def test_non_string_values_are_drift(recorded: Cassette, serve: Serve) -> None:
    url = await serve(scripted(b'data: "Hi"\n\ndata: {"token": "x"}\n\n'))
    [verdict] = await verify_cassettes([recorded], url)
    assert any("upstream sends object" in d for d in verdict.differences), verdict.differences


async def test_a_different_status_is_drift(recorded: Cassette, serve: Serve) -> None:
    url = await serve(mock(default_fault="server_error"))
    [verdict] = await verify_cassettes([recorded], url)
    assert verdict.differences == ["status: recorded 200, upstream 500"]


async def test_situational_answers_are_unverified_not_drift(serve: Serve) -> None:
    cassettes, _ = load_cassette_dir(CASSETTE_DIR)
    limited = [c for c in cassettes if c.name == "rate_limited_429"]
    url = await serve(mock())
    verdicts = await verify_cassettes(limited, url)
    assert [v.outcome for v in verdicts] == [UNVERIFIED]
    assert exit_code(verdicts) == 3
    assert "unverified (recorded 429, upstream answered 200" in report(verdicts)


async def test_the_same_situational_answer_is_compared(serve: Serve) -> None:
    cassettes, _ = load_cassette_dir(CASSETTE_DIR)
    limited = [c for c in cassettes if c.name == "rate_limited_429"]
    url = await serve(scripted(b"{}", "application/json; charset=utf-8", 429))
    [verdict] = await verify_cassettes(limited, url)
    assert verdict.differences == ["Retry-After header: recorded present, upstream absent"]


async def test_unreachable_upstream_raises(recorded: Cassette, unused_tcp_port: int) -> None:
    with pytest.raises(UpstreamUnreachableError, match="did not answer") as raised:
        await verify_cassettes([recorded], f"http://127.0.0.1:{unused_tcp_port}/api/gpt/")
    assert str(raised.value).endswith("; no cassette was verified")


# ----------------------------------------------------------------------------- CLI


def test_cli_verify_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    out = tmp_path / "hello.yaml"
    with KoalaMock(MockConfig(cassette_dir=None, mode="synthetic")) as same:
        assert (
            cli_main(
                ["record", "--out", str(out), "--prompt", "Hi", "--upstream", same.api_endpoint]
            )
            == 0
        )
        capsys.readouterr()
        assert cli_main(["verify", "--upstream", same.api_endpoint, str(out)]) == 0
        assert "hello: ok" in capsys.readouterr().out
    changed = MockConfig(cassette_dir=None, mode="synthetic", default_fault="crlf")
    with KoalaMock(changed) as other:
        assert cli_main(["verify", "--upstream", other.api_endpoint, str(tmp_path)]) == 1
        printed = capsys.readouterr().out
        assert "hello: drift" in printed
        assert "  - line endings: recorded LF, upstream CRLF" in printed
    dead = f"http://127.0.0.1:{unused_tcp_port}/api/gpt/"
    # Not 2, which is argparse's usage error.
    assert cli_main(["verify", "--upstream", dead, str(out)]) == ExitCode.UNREACHABLE == 5
    err = capsys.readouterr().err
    assert "did not answer" in err and "no cassette was verified" in err
    assert "recorded" not in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\n")
    assert cli_main(["verify", "--upstream", dead, str(broken)]) == 4
    assert "broken.yaml: missing key 'interactions'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- live service


@pytest.mark.live
def test_live_api_drift_check(capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped cassettes against https://koala.sh/api/gpt/ (needs --live and the network).

    Exit 2 means the service did not answer: that is a finding about the service, and it fails
    here so that it is seen.
    """
    code = cli_main(["verify", str(CASSETTE_DIR)])
    printed = capsys.readouterr()
    assert code in (0, 1, 3), printed.err
    assert "summary:" in printed.out


async def test_the_bundled_cassettes_verify_against_the_mock_and_keyed_ones_need_a_key() -> None:
    from mockserver import MockConfig
    from mockserver.cassettes.cassette import load_cassette_dir
    from mockserver.config import DEFAULT_CASSETTE_DIR
    from mockserver.testing import KoalaMock
    from mockserver.upstream.verify import NEEDS_API_KEY, verify_cassettes

    cassettes, broken = load_cassette_dir(DEFAULT_CASSETTE_DIR)
    assert broken == []
    keyed = [c.name for c in cassettes if c.name.startswith("keyed")]
    assert keyed, "the bundled set has a keyed cassette"
    config = MockConfig(cassette_dir=DEFAULT_CASSETTE_DIR, mode="replay", speed=0)
    with KoalaMock(config) as mock:
        without_key = await verify_cassettes(cassettes, mock.api_endpoint)
        with_key = await verify_cassettes(cassettes, mock.api_endpoint, api_key="any-key")
    for verdict in without_key:
        if any(verdict.name.startswith(name) for name in keyed):
            assert (verdict.outcome, verdict.note) == ("unverified", NEEDS_API_KEY)
        else:
            assert verdict.outcome == "ok", verdict
    assert [v.outcome for v in with_key] == ["ok"] * len(with_key), with_key
