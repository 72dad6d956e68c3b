"""What ``koala-mock serve`` does before it announces its address (issue 11's start-up work).

The timing itself is bench/bench_startup.py's; these tests hold what makes it fast: the modules
``serve`` leaves unimported (PyYAML too, once the parse cache holds the cassettes), and the
cassettes loaded before the banner, not on the first request.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_process import REPO, STARTUP_TIMEOUT

from koala import Koala, build_headers, build_payload, encode_payload
from mockserver.cassettes import parse_cache
from mockserver.cassettes.cassette import load_cassette_dir
from mockserver.cassettes.locations import DEFAULT_CASSETTE_DIR
from mockserver.cli.main import _command_named, build_parser
from mockserver.server.endpoint import FAULT_HEADER

#: Modules only record, verify, audit, the recording proxy or --version need; PyYAML, which
#: only a cassette missing from the parse cache needs; the UI page's package-data reader; the
#: fault registry and its expectations, which only a fault asked for, queued or listed needs;
#: the stub model, which only a stub added needs.
NOT_FOR_SERVE = (
    "mockserver.wire.stubs",
    "mockserver.wire.faults",
    "mockserver.wire.expectations",
    "mockserver.wire.huge_event",
    "yaml",
    "mockserver.cassettes.yaml_text",
    "mockserver.cassettes.scrub",
    "mockserver.upstream.client",
    "importlib.resources",
    "mockserver.cli.record",
    "mockserver.cli.verify",
    "mockserver.cli.audit_command",
    "mockserver.audit",
    "mockserver.upstream.record",
    "mockserver.upstream.verify",
    "mockserver.upstream.saving",
    "mockserver.server.proxy",
    "mockserver.metadata",
    "importlib.metadata",
    "hypothesis",
    "mockserver.strategies",
)


SERVE_FLAGS = ("--port", "0", "--mode", "replay", "--speed", "0")


@pytest.fixture
def warm_parse_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A parse cache that holds the bundled cassettes, as any start of ``serve`` leaves it."""
    directory = tmp_path / "parse-cache"
    monkeypatch.setenv(parse_cache.CACHE_DIR_ENV_VAR, str(directory))
    cassettes, errors = load_cassette_dir(DEFAULT_CASSETTE_DIR)
    assert cassettes and not errors
    assert len(list(directory.glob("*.json"))) == len(cassettes)
    return directory


@pytest.fixture
def serve_with_import_trace(warm_parse_cache: Path) -> Iterator[subprocess.Popen[str]]:
    """``python -X importtime -m mockserver serve`` in replay mode, stderr merged into stdout.

    ``-X importtime`` writes a line for every module as it is imported, so the one stream
    shows what was imported, what was loaded and what was announced, in that order.
    """
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
        **{parse_cache.CACHE_DIR_ENV_VAR: str(warm_parse_cache)},
    )
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "mockserver", "serve", *SERVE_FLAGS],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watchdog = threading.Timer(STARTUP_TIMEOUT + 60, process.kill)
    watchdog.start()
    try:
        yield process
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
        process.communicate()


def _imported(lines: list[str]) -> set[str]:
    return {
        line.rsplit("|", 1)[1].strip()
        for line in lines
        if line.startswith("import time:") and "|" in line
    }


def _read_until(process: subprocess.Popen[str], marker: str, lines: list[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            return line
    raise AssertionError(f"no line with {marker!r} in:\n{''.join(lines)}")


def test_serve_loads_its_cassettes_before_announcing_and_skips_other_commands_modules(
    serve_with_import_trace: subprocess.Popen[str],
) -> None:
    process = serve_with_import_trace
    lines: list[str] = []
    endpoint_line = _read_until(process, "export KOALA_API_ENDPOINT=", lines)
    endpoint = endpoint_line.strip().split("=", 1)[1]
    before_banner = [line for line in lines if "import time:" not in line]
    serving = next(n for n, line in enumerate(before_banner) if "serving on" in line)
    loaded = [n for n, line in enumerate(before_banner) if " cassettes (" in line]
    assert loaded, before_banner
    assert loaded[0] < serving, "the cassettes were reported after the address"

    # The first request after the announcement is answered from the loaded cassettes.
    answer = Koala.create_completion(
        "gpt-4o-mini", [{"role": "user", "content": "Hello"}], api_endpoint=endpoint
    )
    assert "".join(answer)
    log_line = _read_until(process, "POST /api/gpt/", lines)
    assert " 200 cassette greeting " in log_line, log_line

    imported = _imported(lines)
    assert "mockserver.server.app" in imported  # the trace works: serve's own modules are in it
    unwanted = sorted(
        name
        for name in imported
        if any(name == prefix or name.startswith(prefix + ".") for prefix in NOT_FOR_SERVE)
    )
    assert unwanted == []

    # The fault registry, left unimported, is there as soon as a fault is asked for.
    request = urllib.request.Request(
        endpoint,
        data=encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "Hi"}])),
        headers={**build_headers(), "Content-Type": "application/json", FAULT_HEADER: "rate_limit"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=STARTUP_TIMEOUT)
    assert refused.value.code == 429 and refused.value.headers["Retry-After"] == "30"
    _read_until(process, "rate_limit", lines)
    assert "mockserver.wire.faults" in _imported(lines)


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["serve", "--port", "0"], "serve"),
        (["--version"], None),
        (["-h", "audit"], "audit"),
        ([], None),
    ],
)
def test_the_command_word_is_the_first_argument_not_an_option(
    argv: list[str], command: str | None
) -> None:
    assert _command_named(argv) == command


def test_a_one_command_parser_parses_as_the_whole_parser() -> None:
    argv = ["serve", "--port", "0", "--mode", "replay", "--speed", "2", "--quiet"]
    assert build_parser("serve").parse_args(argv) == build_parser().parse_args(argv)


def test_an_unknown_command_is_refused_naming_every_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mockserver.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["bogus"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    for command in ("serve", "demo", "record", "verify", "audit"):
        assert repr(command) in err


def test_version_is_read_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    from mockserver.cli.main import main
    from mockserver.metadata import VERSION

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"koala-mock {VERSION}\n"
