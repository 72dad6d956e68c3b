"""The API key never reaches a file, a log line, the journal, an error message or a repr.

Each test plants a key (and a wrong key: it may be someone's real key sent to the wrong place)
and then looks for them in everything that was written or printed.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_process import ServeProcess

from koala import ApiKey, AuthenticationError, InvalidOptionError, Koala, KoalaConnectionError
from mockserver.cassettes.cassette import load_cassette
from mockserver.cli.exit_codes import ExitCode
from mockserver.cli.main import main as cli_main
from mockserver.config import MockConfig
from mockserver.testing.embedded import KoalaMock

KEY = "sk-planted-7d1e93b2c4a5f608"
WRONG = "sk-wrong-0a9b8c7d6e5f4321"
HI = [{"role": "user", "content": "Hi"}]


def leaked(*texts: str | bytes) -> list[str]:
    found = []
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        found += [key for key in (KEY, WRONG) if key.encode() in data]
    return found


def every_file(directory: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()]


async def answer(endpoint: str, prompt: str = "Hi", **options: Any) -> str:
    messages = [{"role": "user", "content": prompt}]
    return await Koala.create_async("", messages, api_endpoint=endpoint, **options)


@pytest.fixture
def upstream() -> Iterator[KoalaMock]:
    """A stand-in for the keyed API: it refuses every key but KEY."""
    with KoalaMock(MockConfig(cassette_dir=None, mode="synthetic", api_key=KEY)) as mock:
        yield mock


def test_record_keyed_writes_the_keyed_shape_without_the_key(
    upstream: KoalaMock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KOALA_API_KEY", KEY)
    out = tmp_path / "keyed.yaml"
    argv = ["record", "--keyed", "--json-reply", "--prompt", "Hi", "--upstream"]
    assert cli_main([*argv, upstream.api_endpoint, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert leaked(printed.out, printed.err, *every_file(tmp_path)) == []
    interaction = load_cassette(out).interactions[0]
    assert interaction.request_header("Authorization") == "Bearer SCRUBBED"
    assert interaction.request_header("Visitor-ID") is None
    assert json.loads(interaction.body)["output"].startswith('You said "Hi"')
    assert upstream.requests[-1]["shape"] == "keyed"


def test_record_keyed_without_the_key_in_the_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KOALA_API_KEY", raising=False)
    argv = ["record", "--keyed", "--prompt", "Hi", "--out", str(tmp_path / "x.yaml")]
    assert cli_main(argv) == ExitCode.BAD_INPUT
    assert "KOALA_API_KEY" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


async def test_the_recording_proxy_forwards_the_key_and_records_it_scrubbed(
    upstream: KoalaMock, tmp_path: Path
) -> None:
    config = MockConfig(
        cassette_dir=None,
        record_upstream=upstream.api_endpoint,
        record_dir=tmp_path,
    )
    with KoalaMock(config) as proxy:
        # Three conversations: each is its own recording.
        json_answer = await answer(proxy.api_endpoint, "one", api_key=KEY, json_reply=True)
        assert json_answer.startswith("You said")
        assert (await answer(proxy.api_endpoint, "two", api_key=KEY)).startswith("You said")
        with pytest.raises(AuthenticationError) as refused:
            await answer(proxy.api_endpoint, "three", api_key=WRONG)
        journal = json.dumps(proxy.requests)
    assert leaked(str(refused.value), repr(refused.value), journal, *every_file(tmp_path)) == []
    recorded = [load_cassette(path) for path in sorted(tmp_path.glob("*.yaml"))]
    assert recorded, "the proxy recorded nothing"
    interactions = [i for c in recorded for i in c.interactions]
    assert {i.status for i in interactions} == {200, 401}
    # The 401's WWW-Authenticate: Bearer is a challenge, not a secret: kept, and "Bearer" is
    # not scrubbed out of the Authorization headers as if it were an echo of one.
    assert {i.request_header("Authorization") for i in interactions} == {"Bearer SCRUBBED"}
    assert {i.response_header("WWW-Authenticate") for i in interactions if i.status == 401} == {
        "Bearer"
    }


def test_serve_with_a_key_keeps_it_out_of_its_output_and_journal() -> None:
    server = ServeProcess(
        "--port", "0", "--mode", "synthetic", "--log-format", "json",
        env={"KOALA_MOCK_API_KEY": KEY},
    )  # fmt: skip
    try:
        endpoint = server.wait_for_endpoint()
        assert list(Koala.create_completion("", HI, api_endpoint=endpoint, api_key=KEY))
        with pytest.raises(AuthenticationError) as refused:
            list(Koala.create_completion("", HI, api_endpoint=endpoint, api_key=WRONG))
        with urllib.request.urlopen(f"{server.base_url}/__admin/requests", timeout=10) as reply:
            journal = reply.read()
        server.process.terminate()
        out, err = server.stop_output()
    finally:
        server.close()
    assert "keyed requests need the API key" in out
    assert json.loads(journal)["requests"][0]["shape"] == "keyed"
    assert leaked(out, err, journal, str(refused.value)) == []
    assert err.count('"status": 401') + err.count('"status":401') == 1  # the refusal was logged


def test_serve_refuses_a_bad_key_without_quoting_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["serve", "--api-key", "sk-has space-inside"]) == 2
    err = capsys.readouterr().err
    assert "--api-key may hold only visible ASCII" in err and "space-inside" not in err


async def test_provider_errors_and_reprs_never_show_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert leaked(repr(ApiKey(KEY)), str(ApiKey(KEY)), repr(MockConfig(api_key=KEY))) == []
    with pytest.raises(KoalaConnectionError) as unreachable:
        await answer("http://127.0.0.1:9/api/gpt/", api_key=KEY, timeout=5)
    with pytest.raises(InvalidOptionError) as bad:
        await answer("http://127.0.0.1:9/api/gpt/", api_key=KEY + "\n")
    assert f"character {len(KEY) + 1} of {len(KEY) + 1}" in str(bad.value)
    texts = [str(unreachable.value), repr(unreachable.value), str(bad.value), caplog.text]
    assert leaked(*texts) == []
