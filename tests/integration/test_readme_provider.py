"""The README's "Use the provider" examples run against the mock server, as written.

The first block is a whole program: it runs in a subprocess with ``KOALA_API_ENDPOINT`` set, as
the README tells a user to. The second is a snippet (``await`` at top level, ``messages`` from the
first): it runs inside a coroutine that defines ``messages``. (The "Testing your code" examples
have their own test, test_readme_testing.py.)
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mockserver import MockConfig
from mockserver.testing import KoalaMock

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Use the provider"


def section_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


BLOCKS = section_blocks()


def test_the_section_has_a_program_and_a_keyed_snippet() -> None:
    assert len(BLOCKS) == 2
    assert "asyncio.run(main())" in BLOCKS[0]
    assert "api_key=" in BLOCKS[1]


def test_the_program_streams_an_answer_from_the_mock() -> None:
    with KoalaMock(MockConfig(cassette_dir=None, mode="synthetic")) as mock:
        env = {**os.environ, "KOALA_API_ENDPOINT": mock.api_endpoint}
        run = subprocess.run(
            [sys.executable, "-c", BLOCKS[0]], env=env, capture_output=True, text=True, timeout=60
        )
        sent = mock.requests
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith('You said "Hello, how are you? Be brief."'), run.stdout
    assert "failed:" not in run.stdout
    assert len(sent) == 1


def test_the_keyed_snippet_gets_the_whole_answer_once(monkeypatch: pytest.MonkeyPatch) -> None:
    namespace: dict[str, Any] = {}
    body = textwrap.indent(BLOCKS[1], "    ")
    exec(  # the README's snippet, in the coroutine a user would write around it
        "from koala import Koala\n"
        "async def snippet():\n"
        '    messages = [{"role": "user", "content": "Hello"}]\n'
        f"{body}\n"
        "    return answer\n",
        namespace,
    )
    with KoalaMock(MockConfig(cassette_dir=None, mode="synthetic")) as mock:
        monkeypatch.setenv("KOALA_API_ENDPOINT", mock.api_endpoint)
        answer = asyncio.run(namespace["snippet"]())
        entry = mock.requests[-1]
    assert answer.startswith('You said "Hello"')
    assert entry["shape"] == "keyed"
