"""Hostile cassette files: YAML aliases ("billion laughs") are refused, naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from mockserver.cassettes.cassette import CassetteError, parse_cassette
from mockserver.cassettes.library import CassetteLibrary

LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
)


@pytest.mark.parametrize(
    "text",
    [
        LAUGHS + "interactions: []\n",
        "interactions:\n- &one {request: {}}\n- *one\n",
        "x: &anchor 1\ninteractions: *anchor\n",
    ],
)
def test_an_alias_is_refused_before_it_is_expanded(text: str) -> None:
    with pytest.raises(CassetteError, match="YAML alias at line"):
        parse_cassette(text)
    with pytest.raises(CassetteError, match="YAML alias"):
        parse_cassette(text.encode())


def test_an_ampersand_in_a_string_is_no_alias() -> None:
    text = "interactions: []\nnote: 'a &b *c'\nother: \"&x\"\n"
    assert parse_cassette(text).interactions == []


def test_the_library_names_the_file_and_loads_the_rest(tmp_path: Path) -> None:
    (tmp_path / "laughs.yaml").write_text(LAUGHS + "interactions: []\n")
    library = CassetteLibrary(tmp_path)
    library.ensure_loaded()
    assert library.cassettes == []
    assert any("laughs.yaml" in str(e) and "alias" in str(e) for e in library.errors)
