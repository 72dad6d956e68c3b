"""``koala-mock``: argument parsing, refusals, and ``serve`` as a real process."""

from __future__ import annotations

import json
import re
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import HEADERS
from serve_process import ServeProcess

from koala import Koala, build_payload
from mockserver.cli.exit_codes import ExitCode
from mockserver.cli.main import _config_from_args, build_parser, main
from mockserver.testing.embedded import is_loopback

# -- parsing --------------------------------------------------------------------------------------


def test_serve_defaults_to_loopback_port_8765_and_text_logs() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.log_format) == ("127.0.0.1", 8765, "text")
    assert args.allow_remote is False


def test_serve_flags_become_the_mock_config(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--cassettes",
            str(tmp_path),
            "--mode",
            "replay",
            "--seed",
            "7",
            "--strict",
            "--latency",
            "0.25",
            "--speed",
            "2",
            "--fault",
            "rate_limit",
            "--max-body-size",
            "1000",
        ]
    )
    config = _config_from_args(args)
    assert config.cassette_dir == tmp_path
    assert (config.mode, config.seed, config.strict) == ("replay", 7, True)
    assert (config.latency, config.speed) == (0.25, 2.0)
    assert config.default_fault == "rate_limit"
    assert config.max_body_size == 1000
    assert config.record_upstream is None


def test_flags_left_out_keep_the_config_defaults() -> None:
    from mockserver.config import MockConfig

    config = _config_from_args(build_parser().parse_args(["serve"]))
    assert config == MockConfig()


def test_record_flags_configure_the_recording_proxy(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--record",
            "--upstream",
            "http://127.0.0.1:9/api/gpt/",
            "--record-dir",
            str(tmp_path),
            "--no-scrub",
        ]
    )
    config = _config_from_args(args)
    assert config.record_upstream == "http://127.0.0.1:9/api/gpt/"
    assert config.record_dir == tmp_path
    assert config.scrub is False


def test_record_without_upstream_records_from_the_live_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # --record creates ./cassettes
    config = _config_from_args(build_parser().parse_args(["serve", "--record"]))
    assert config.record_upstream == Koala.api_endpoint
    assert config.scrub is True


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "70000"],
        ["serve", "--port", "http"],
        ["serve", "--speed", "-1"],
        ["serve", "--latency", "nan"],
        ["serve", "--mode", "chaos"],
        ["serve", "--max-body-size", "0"],
        ["serve", "--max-body-size", str(2**40 + 1)],
        ["serve", "--max-cassette-size", "99999999999999999999"],
        ["serve", "--max-generated-bytes", "99999999999999999999"],
        ["serve", "--journal-max-bytes", "99999999999999999999999"],
        ["serve", "--log-format", "xml"],
        ["serve", "--seed", "-5"],
        ["serve", "--seed", str(2**63)],
        ["serve", "--latency", "1e308"],
        ["serve", "--latency", "60.5"],
        ["demo", "--seed", "-1"],
        ["demo", "--prompt", "a", "--messages", "m.json"],
    ],
)
def test_bad_flags_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_flag_range_errors_name_the_range(capsys: pytest.CaptureFixture[str]) -> None:
    from mockserver.config import MAX_LATENCY_SECONDS
    from mockserver.wire.fuzz import MAX_SEED

    for argv, expected in [
        (["serve", "--seed", "-5"], f"--seed: expected a whole number in 0..{MAX_SEED}, got '-5'"),
        (["serve", "--latency", "99999"], f"in 0..{MAX_LATENCY_SECONDS:g}, got '99999'"),
        (["serve", "--latency", "1e308"], "--latency: expected seconds, got '1e308'"),
    ]:
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)
        assert expected in capsys.readouterr().err


def test_the_largest_seed_the_server_accepts_is_accepted() -> None:
    from mockserver.wire.fuzz import MAX_SEED

    args = build_parser().parse_args(["serve", "--mode", "fuzz", "--seed", str(MAX_SEED)])
    assert _config_from_args(args).seed == MAX_SEED


def test_the_seed_help_says_it_is_for_fuzz_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--seed N fuzz mode only" in text and "synthetic answers" not in text


@pytest.mark.parametrize(
    ("command", "codes"),
    [
        ([], {0, 2}),
        (["serve"], {0, 1, 2}),
        (["demo"], {0, 1, 2, 130}),
        (["record"], {0, 1, 2, 4, 5, 130}),
        (["verify"], {0, 1, 2, 3, 4, 5, 130}),
    ],
)
def test_every_help_lists_its_exit_codes(
    command: list[str], codes: set[int], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*command, "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    _, heading, listed = help_text.partition("exit codes:\n")
    assert heading, help_text
    assert {int(line.split()[0]) for line in listed.splitlines() if line.strip()} == codes


def test_an_unreachable_upstream_is_not_the_usage_error_code() -> None:
    assert len({int(code) for code in ExitCode}) == len(ExitCode)
    assert ExitCode.USAGE == 2 and ExitCode.UNREACHABLE not in (0, 1, 2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--upstream", "http://127.0.0.1:9/"], "--upstream only applies with --record"),
        (["serve", "--record-mode", "all"], "--record-mode only applies with --record"),
        (["serve", "--keep-header", "X-A"], "--keep-header only applies with --record"),
        (["serve", "--record", "--mode", "replay"], "--mode does not apply with --record"),
        (["serve", "--record", "--fault", "rate_limit"], "nothing would be recorded"),
        (["serve", "--record", "--seed", "3"], "send X-Koala-Mock-Seed"),
        (["serve", "--record", "--latency", "1"], "keep their own timing"),
        (["serve", "--record", "--strict"], "forwards every request as the client sent it"),
        (["serve", "--record", "--cassettes", "."], "records into --record-dir"),
        (["serve", "--no-scrub"], "only applies with --record"),
        (["serve", "--record", "--upstream", "notaurl"], "expected an http:// or https:// URL"),
        (["serve", "--record", "--upstream", "ftp://x/"], "expected an http:// or https:// URL"),
        (["serve", "--cassettes", "/nonexistent/koala-cassettes"], "does not exist"),
        (["serve", "--fault", "no_such_fault"], "no_such_fault"),
        (["serve", "--host", "0.0.0.0"], "--allow-remote"),
        (["serve", "--host", "example.com"], "--allow-remote"),
    ],
)
def test_refused_combinations_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_a_cassette_path_that_is_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_dir = tmp_path / "cassette.yaml"
    not_a_dir.write_text("interactions: []\n")
    assert main(["serve", "--cassettes", str(not_a_dir)]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# -- serve as a process ---------------------------------------------------------------------------


@pytest.fixture
def serve_process() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for process in started:
        process.close()


def _start(started: list[ServeProcess], *flags: str) -> ServeProcess:
    process = ServeProcess(*flags)
    started.append(process)
    return process


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_answers_then_exits_0_on_a_signal(
    signum: int, serve_process: list[ServeProcess]
) -> None:
    server = _start(serve_process, "--port", "0", "--mode", "synthetic", "--speed", "0")
    endpoint = server.wait_for_endpoint()
    port = int(endpoint.split(":")[2].split("/")[0])
    assert port != 0
    assert endpoint == f"http://127.0.0.1:{port}/api/gpt/"
    assert any(f"http://127.0.0.1:{port}" in line for line in server.banner[:-1])

    assert server.process.stdout is not None
    admin_line = server.process.stdout.readline()  # the banner's last line
    admin_urls = re.findall(r"http://\S+/__admin/\S*", admin_line)
    assert len(admin_urls) >= 2
    for url in admin_urls:  # every admin URL the banner points to answers
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
    answer = Koala.create_completion(
        "gpt-4o-mini", [{"role": "user", "content": "hi"}], api_endpoint=endpoint
    )
    assert "".join(answer)

    server.process.send_signal(signum)
    _, err = server.stop_output()
    assert server.process.returncode == 0, err
    assert "Traceback" not in err
    assert "shutting down" in err


def test_serve_logs_one_json_line_per_request(serve_process: list[ServeProcess]) -> None:
    server = _start(
        serve_process, "--port", "0", "--mode", "synthetic", "--speed", "0", "--log-format", "json"
    )
    server.wait_for_endpoint()
    answer = server.ask("log me")
    _, err = server.terminate()
    records = [json.loads(line) for line in err.splitlines()]  # every line is JSON
    assert all({"time", "level"} <= set(r) for r in records), records
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]) for r in records)
    assert any(r.get("message") == "shutting down" for r in records)
    posts = [r for r in records if r.get("path") == "/api/gpt/"]
    assert len(posts) == 1
    post = posts[0]
    assert post["request"] == 1 and post["level"] == "info"
    assert (post["method"], post["status"]) == ("POST", 200)
    assert post["events"] >= 1
    assert post["bytes"] >= len(answer.encode())
    assert post["served_by"]
    assert post["duration_ms"] >= 0


def test_serve_loses_no_buffered_log_line_on_sigterm(serve_process: list[ServeProcess]) -> None:
    """Lines are buffered; a SIGTERM right after the last answer still writes every one."""
    server = _start(serve_process, "--port", "0", "--mode", "synthetic", "--speed", "0")
    endpoint = server.wait_for_endpoint()
    payload = json.dumps(build_payload("gpt-4o-mini", [{"role": "user", "content": "hi"}]))
    for number in range(40):
        request = urllib.request.Request(
            f"{endpoint}?n={number}", data=payload.encode(), headers=HEADERS, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            response.read()
    server.process.send_signal(signal.SIGTERM)  # well within the buffer's flush interval
    _, err = server.stop_output()
    assert server.process.returncode == 0, err
    logged = [line for line in err.splitlines() if line.startswith("POST /api/gpt/ 200 ")]
    assert len(logged) == 40
    before = err.partition("shutting down")[0]
    assert before.count("POST /api/gpt/ 200 ") == 40  # flushed before the shutdown note


def test_serve_on_a_taken_port_is_a_one_line_error(serve_process: list[ServeProcess]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = _start(serve_process, "--port", str(port))
        _, err = server.stop_output()
    assert server.process.returncode == 1
    assert "already in use" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_text_log_line_says_what_served_the_request() -> None:
    from mockserver.server.access_log import describe_source, format_text

    served = describe_source({"source": "cassette", "cassette": "greeting", "interaction": 0})
    record = {
        "method": "POST",
        "path": "/api/gpt/",
        "status": 200,
        "served_by": served,
        "events": 7,
        "bytes": 102,
        "duration_ms": 4.25,
        "client_disconnected": True,
    }
    assert format_text(record) == (
        "POST /api/gpt/ 200 cassette greeting 7 events 102 bytes 4.2 ms (client disconnected)"
    )
    assert describe_source({"source": "fault", "fault": "stall", "seed": 3}) == "fault stall seed=3"


def test_a_missing_cassette_dir_from_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KOALA_MOCK_CASSETTES", str(tmp_path / "gone"))
    assert main(["serve"]) == 2
    assert "$KOALA_MOCK_CASSETTES=" in capsys.readouterr().err


def test_serve_reports_the_cassettes_it_loaded_and_the_bad_ones(
    tmp_path: Path, serve_process: list[ServeProcess]
) -> None:
    (tmp_path / "broken.yaml").write_text("interactions: [unclosed\n")
    server = _start(serve_process, "--port", "0", "--cassettes", str(tmp_path))
    server.wait_for_endpoint()
    server.process.send_signal(signal.SIGINT)
    _, err = server.stop_output()
    assert server.process.returncode == 0
    assert "0 cassettes (0 interactions)" in err
    assert "cassette skipped:" in err
    assert "broken.yaml" in err


def test_a_signal_ends_serve_even_with_a_stalled_stream_open(
    serve_process: list[ServeProcess],
) -> None:
    server = _start(serve_process, "--port", "0", "--mode", "synthetic", "--speed", "0")
    endpoint = server.wait_for_endpoint()
    port = int(endpoint.split(":")[2].split("/")[0])
    body = b'{"input": "hi", "inputHistory": [], "outputHistory": [], "model": "gpt-4o-mini"}'
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(
            b"POST /api/gpt/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"X-Koala-Mock-Fault: stall;seconds=60\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = client.recv(65536)
        assert head.startswith(b"HTTP/1.1 200"), head
        server.process.send_signal(signal.SIGTERM)
        _, err = server.stop_output()  # well before the 60 s stall ends
        assert server.process.returncode == 0, err
        rest = b""
        while chunk := client.recv(65536):  # the server closed the stalled stream
            rest += chunk
    assert "Traceback" not in err


def test_a_wildcard_bind_prints_a_loopback_endpoint_to_paste() -> None:
    import io

    from mockserver.cli.main import _print_banner
    from mockserver.config import MockConfig
    from mockserver.testing.embedded import ServerAddress

    out = io.StringIO()
    _print_banner(ServerAddress("0.0.0.0", 8765), MockConfig(), out)
    assert "serving on http://0.0.0.0:8765" in out.getvalue()
    assert "export KOALA_API_ENDPOINT=http://127.0.0.1:8765/api/gpt/\n" in out.getvalue()


def test_recording_without_scrubbing_warns(serve_process: list[ServeProcess]) -> None:
    server = _start(
        serve_process,
        "--port",
        "0",
        "--record",
        "--upstream",
        "http://127.0.0.1:9/api/gpt/",
        "--no-scrub",
    )
    server.wait_for_endpoint()
    assert any("recording from http://127.0.0.1:9/api/gpt/" in line for line in server.banner)
    server.process.send_signal(signal.SIGINT)
    _, err = server.stop_output()
    assert server.process.returncode == 0
    assert "warning: --no-scrub" in err


MALFORMED_HTTP = [
    b"POST /api/gpt/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /\x00 HTTP/1.1\r\n\r\n",
]


def _send_raw(base_url: str, data: bytes) -> bytes:
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(data)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize("quiet", [False, True], ids=["logged", "quiet"])
def test_malformed_http_is_a_400_and_one_line_not_a_traceback(
    quiet: bool, serve_process: list[ServeProcess]
) -> None:
    flags = ["--port", "0", "--mode", "synthetic", *(["--quiet"] if quiet else [])]
    server = _start(serve_process, *flags)
    server.wait_for_endpoint()
    for data in MALFORMED_HTTP:
        assert b" 400 Bad Request\r\n" in _send_raw(server.base_url, data)
    server.process.send_signal(signal.SIGTERM)
    _, err = server.stop_output()
    assert server.process.returncode == 0
    assert "Traceback" not in err
    notes = [line for line in err.splitlines() if "malformed HTTP request" in line]
    if quiet:
        assert notes == []
    else:
        assert len(notes) == len(MALFORMED_HTTP), err
        assert "chunk size" in notes[0] and "answered 400" in notes[0]


def test_the_parser_error_filter_lets_other_errors_through() -> None:
    import logging

    from aiohttp.http_exceptions import BadHttpMessage

    from mockserver.server.parser_errors import ParserErrorFilter

    def record(error: BaseException) -> logging.LogRecord:
        return logging.LogRecord(
            "aiohttp.server",
            logging.ERROR,
            __file__,
            1,
            "Error handling request from %s",
            ("127.0.0.1",),
            (type(error), error, None),
        )

    other = record(ValueError("a real bug"))
    assert ParserErrorFilter("koala-mock: ").filter(other)
    assert other.exc_info is not None and other.getMessage().startswith("Error handling")
    bad = record(BadHttpMessage("Invalid header value char:\n\n  b'x'"))
    assert ParserErrorFilter("koala-mock: ").filter(bad)
    assert bad.exc_info is None
    assert bad.getMessage() == (
        "koala-mock: malformed HTTP request from 127.0.0.1, answered 400 Invalid header value char"
    )
    assert not ParserErrorFilter("koala-mock: ", quiet=True).filter(record(BadHttpMessage("x")))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": -5}, "seed must be an integer 0.."),
        ({"seed": 2**63}, "seed must be an integer 0.."),
        ({"seed": True}, "seed must be an integer 0.."),
        ({"latency": 1e308}, "latency must be 0..60 seconds"),
        ({"speed": 1e-300}, "speed must be 0 .* or at least 0.01"),
        ({"speed": float("inf")}, "speed must be 0 .* or at least 0.01"),
    ],
)
def test_the_config_refuses_what_the_flags_refuse(options: dict[str, object], message: str) -> None:
    from mockserver.config import MockConfig

    with pytest.raises(ValueError, match=message):
        MockConfig(**options)  # type: ignore[arg-type]


def test_fault_limits_are_whole_numbers_with_separators(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--fault", "huge_event;size=67108865"]) == 2
    assert "is above the maximum 67,108,864" in capsys.readouterr().err


def test_allow_remote_without_a_token_prints_a_generated_one(
    serve_process: list[ServeProcess],
) -> None:
    # Loopback still (tests never bind other addresses); --allow-remote alone makes the token.
    server = _start(serve_process, "--port", "0", "--allow-remote", "--mode", "synthetic")
    server.wait_for_endpoint()
    assert server.process.stdout is not None
    lines = [server.process.stdout.readline() for _ in range(2)]
    token_line = next(line for line in lines if "admin token" in line)
    token = token_line.strip().rsplit(" ", 1)[1]
    assert len(token) >= 24
    page_line = server.process.stdout.readline()
    assert page_line.strip().endswith(f"/__admin/ui#token={token}")
    health = server.base_url + "/__admin/health"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(health, timeout=10)
    assert refused.value.code == 401
    request = urllib.request.Request(health, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    server.process.send_signal(signal.SIGTERM)
    _, err = server.stop_output()
    assert server.process.returncode == 0 and token not in err
