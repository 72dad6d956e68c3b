"""The cassette library's dict lookups answer exactly as ``cassettes.find_match`` does."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mockserver.cassettes.cassette import Cassette, Chunk, Interaction, find_match
from mockserver.cassettes.library import CassetteLibrary
from mockserver.wire.streams import encode_stream

# A small space of values, so that requests often collide (1 and 1.0, true and 1, key order).
small_values = st.sampled_from([0, 1, 1.0, 1.5, True, False, None, "a", "b", [], [1], [1.0]])
bodies = st.dictionaries(st.sampled_from(["input", "model", "x"]), small_values, max_size=3)


def interaction(body: dict[str, Any], spacing: bool, answer: str) -> Interaction:
    separators = (", ", ": ") if spacing else (",", ":")
    keys = list(body)[::-1] if spacing else list(body)  # another key order, same JSON object
    raw = json.dumps({k: body[k] for k in keys}, separators=separators).encode()
    stream = encode_stream([answer])
    return Interaction(
        method="POST",
        uri="https://koala.sh/api/gpt/",
        request_headers={},
        request_body=raw,
        status=200,
        reason="OK",
        response_headers={"Content-Type": ["text/event-stream"]},
        body=stream,
        chunks=[Chunk(0.0, stream)],
    )


@given(
    recorded=st.lists(st.tuples(bodies, st.booleans()), max_size=6),
    query=bodies,
    raw_spacing=st.booleans(),
)
def test_lookup_agrees_with_find_match(
    recorded: list[tuple[dict[str, Any], bool]], query: dict[str, Any], raw_spacing: bool
) -> None:
    cassettes = [
        Cassette(f"c{n}", None, [interaction(body, spacing, f"answer {n}")])
        for n, (body, spacing) in enumerate(recorded)
    ]
    library = CassetteLibrary(None)
    library.set_cassettes(cassettes)
    raw = interaction(query, raw_spacing, "").request_body
    expected = find_match(cassettes, "POST", "/api/gpt/", query).interaction
    for given_raw in (raw, None):
        found, _ = library.lookup("POST", "/api/gpt", query, given_raw, nearest=False)
        assert (found.interaction if found else None) is expected


def test_a_miss_names_the_nearest_only_when_asked() -> None:
    library = CassetteLibrary(None)
    library.set_cassettes([Cassette("hello", None, [interaction({"input": "a"}, True, "x")])])
    found, miss = library.lookup("POST", "/api/gpt/", {"input": "b"}, nearest=True)
    assert found is None and miss is not None and miss.nearest_name == "hello"
    assert library.lookup("POST", "/api/gpt/", {"input": "b"}, nearest=False) == (None, None)
