"""Every Python block of the README's "Testing your code" section runs as a user's test module
(a fresh folder, no conftest, the plugin from its entry point) and all its tests pass.

A ``<!-- readme-test: ARGS -->`` line before a block gives pytest arguments (``-n 2``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pytester_runs import run_inline, run_subprocess

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Testing your code"
_BLOCK = re.compile(
    r"(?:<!-- readme-test: (?P<args>[^>]*) -->\n)?```python\n(?P<code>.*?)```", re.S
)


def section_blocks() -> list[tuple[str, list[str]]]:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    body = text[start : end if end != -1 else None]
    return [(m["code"], (m["args"] or "").split()) for m in _BLOCK.finditer(body)]


BLOCKS = section_blocks()


def test_the_section_has_its_examples() -> None:
    assert len(BLOCKS) >= 7
    assert any("-n" in args for _, args in BLOCKS)


@pytest.mark.parametrize(("code", "args"), BLOCKS, ids=[f"block{n}" for n in range(len(BLOCKS))])
def test_readme_example_passes(pytester: pytest.Pytester, code: str, args: list[str]) -> None:
    pytester.makepyfile(test_readme_example=code)
    # In this process unless the block needs its own (pytest-xdist starts workers).
    run = run_subprocess if args else run_inline
    result = run(pytester, *args)
    tests = len(re.findall(r"^(?:async )?def test_", code, re.M))
    counts = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert counts.get("passed", 0) >= tests > 0
    assert not counts.get("failed") and not counts.get("errors")
