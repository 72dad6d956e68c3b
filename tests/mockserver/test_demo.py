"""``koala-mock demo``: the one command a newcomer runs to see the whole loop work."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mockserver.cli.demo import run_demo, summary_line
from mockserver.cli.messages_file import MessagesFileError, load_messages
from mockserver.config import MockConfig
from mockserver.testing.embedded import KoalaMock

REPO = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "Tell me about koalas"}]


def _demo(*flags: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "mockserver", "demo", "--speed", "0", *flags],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_prints_the_answer_and_a_summary_then_exits_0() -> None:
    result = _demo()
    assert result.returncode == 0, result.stderr
    answer, summary = result.stdout.rstrip("\n").rsplit("\n", 1)
    assert answer.strip()
    assert summary.startswith("-- ")
    assert " events, " in summary
    assert "served by" in summary
    assert "Traceback" not in result.stderr


def test_demo_prints_what_the_provider_gets_from_the_same_server(tmp_path: Path) -> None:
    messages_file = tmp_path / "messages.json"
    messages_file.write_text(json.dumps(MESSAGES))
    result = _demo("--mode", "synthetic", "--messages", str(messages_file))
    assert result.returncode == 0, result.stderr

    from koala import Koala

    with KoalaMock(MockConfig(mode="synthetic", speed=0)) as mock:
        expected = "".join(
            Koala.create_completion("gpt-4o-mini", MESSAGES, api_endpoint=mock.api_endpoint)
        )
    assert result.stdout.startswith(expected + "\n")


class RecordingOutput(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self.flushes = 0

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)

    def flush(self) -> None:
        self.flushes += 1


def test_demo_writes_and_flushes_each_token_as_it_arrives() -> None:
    out, err = RecordingOutput(), io.StringIO()
    config = MockConfig(mode="synthetic", speed=0)
    assert asyncio.run(run_demo(config, MESSAGES, "gpt-4o-mini", out, err)) == 0
    summary = out.getvalue().rstrip("\n").rsplit("\n", 1)[1]
    events = int(summary.split()[1])
    assert events >= 2
    tokens = out.writes[: out.writes.index("\n")]
    assert len(tokens) == events
    assert out.flushes >= events


def test_demo_reports_a_provider_error_and_exits_1() -> None:
    out, err = io.StringIO(), io.StringIO()
    config = MockConfig(mode="synthetic", speed=0, default_fault="server_error")
    assert asyncio.run(run_demo(config, MESSAGES, "gpt-4o-mini", out, err)) == 1
    assert "ResponseStatusError" in err.getvalue()


def test_demo_with_an_unreadable_messages_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[{'role': 'user'")
    result = _demo("--messages", str(bad))
    assert result.returncode == 2
    assert "bad.json" in result.stderr
    assert "not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{}", "non-empty JSON list .*, got a JSON object$"),
        ("[]", "non-empty JSON list .*, got an empty list$"),
        ('{"messages": []}', "got an empty list$"),
        ('"hi"', "got a JSON string$"),
        ("nope", "not valid JSON"),
        (None, "cannot read"),  # no such file
    ],
)
def test_load_messages_names_the_problem(tmp_path: Path, text: str | None, problem: str) -> None:
    path = tmp_path / "m.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(MessagesFileError, match=problem):
        load_messages(path)


def test_summary_line_reads_the_journal_entry() -> None:
    served = {"source": "cassette", "cassette": "greeting", "interaction": 0}
    entry = {"events_sent": 12, "bytes_sent": 345, "served_by": served}
    assert (
        summary_line(entry, 0.5) == "-- 12 events, 345 bytes, served by cassette greeting, 0.50 s"
    )
    assert "served by unknown" in summary_line({}, 0.5)


def test_demo_with_a_fault_shows_the_typed_error() -> None:
    result = _demo("--fault", "rate_limit")
    assert result.returncode == 1
    assert "RateLimitError" in result.stderr
    assert "Traceback" not in result.stderr
