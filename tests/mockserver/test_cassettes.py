"""mockserver.cassettes.cassette: the format, loading errors, matching and atomic writes."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from koala.request import build_payload, encode_payload
from mockserver.cassettes import cassette as cassettes_module
from mockserver.cassettes.cassette import (
    Cassette,
    CassetteError,
    CassetteExistsError,
    Chunk,
    Interaction,
    chunks_for,
    dump_cassette,
    find_match,
    load_cassette,
    load_cassette_dir,
    parse_cassette,
    single_chunk,
    write_cassette,
)
from mockserver.cassettes.locations import SOURCE_CASSETTE_DIR

BODY = b'data: "Hi"\n\ndata: " there"\n\n'
PAYLOAD = build_payload("gpt-4o-mini", [{"role": "user", "content": "Hello"}])


def interaction(
    body: bytes = BODY, chunks: list[Chunk] | None = None, **changes: object
) -> Interaction:
    fields: dict[str, object] = {
        "method": "POST",
        "uri": "https://koala.sh/api/gpt/",
        "request_headers": {"Accept": ["text/event-stream"]},
        "request_body": encode_payload(PAYLOAD),
        "status": 200,
        "reason": "OK",
        "response_headers": {"Content-Type": ["text/event-stream"]},
        "body": body,
        "chunks": chunks if chunks is not None else chunks_for(body, [(12, 0.0), (16, 0.05)]),
    }
    fields.update(changes)
    return Interaction(**fields)  # type: ignore[arg-type]


def cassette(*interactions: Interaction, name: str = "greeting") -> Cassette:
    return Cassette(
        name=name,
        path=None,
        interactions=list(interactions) or [interaction()],
        provenance={"source": "test"},
        description="a test cassette",
    )


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ----------------------------------------------------------------------------- round trip


def test_written_cassette_reads_back_identical(tmp_path: Path) -> None:
    path = tmp_path / "greeting.yaml"
    write_cassette(path, cassette())
    loaded = load_cassette(path)
    assert loaded.name == "greeting"
    assert loaded.path == path
    assert loaded.description == "a test cassette"
    assert loaded.provenance == {"source": "test"}
    assert loaded.interactions == [interaction()]
    assert loaded.interactions[0].request_json() == PAYLOAD


def test_format_is_the_agreed_vcrpy_layout(tmp_path: Path) -> None:
    data = yaml.safe_load(dump_cassette(cassette()))
    assert data["version"] == 1
    assert "metadata" not in data  # pytest-recording cannot load a cassette that has it
    response = data["interactions"][0]["response"]
    assert response["koala_harness"] == {
        "format": 1,
        "description": "a test cassette",
        "provenance": {"source": "test"},
    }
    assert response["status"] == {"code": 200, "message": "OK"}
    assert response["body"] == {"string": BODY.decode()}
    assert response["koala_stream"] == {
        "chunks": [{"at": 0.0, "size": 12}, {"at": 0.05, "size": 16}]
    }
    assert set(data["interactions"][0]["request"]) == {"method", "uri", "body", "headers"}


def test_vcrpy_loads_our_files_and_keeps_the_extras(tmp_path: Path) -> None:
    from vcr.persisters.filesystem import FilesystemPersister
    from vcr.serializers import yamlserializer

    path = tmp_path / "greeting.yaml"
    write_cassette(path, cassette())
    loaded = FilesystemPersister.load_cassette(str(path), yamlserializer)
    assert len(loaded) == 2  # requests and responses; no third "metadata" value
    requests, responses = loaded
    assert requests[0].method == "POST"
    assert responses[0]["body"]["string"] == BODY
    assert responses[0]["koala_stream"]["chunks"][1]["size"] == 16
    assert responses[0]["koala_harness"]["provenance"] == {"source": "test"}


def test_vcrpy_resaving_a_file_keeps_provenance_and_timing(tmp_path: Path) -> None:
    from vcr.persisters.filesystem import FilesystemPersister
    from vcr.serializers import yamlserializer

    path = tmp_path / "greeting.yaml"
    write_cassette(path, cassette(interaction(), interaction()))
    requests, responses = FilesystemPersister.load_cassette(str(path), yamlserializer)
    resaved = tmp_path / "resaved.yaml"
    FilesystemPersister.save_cassette(
        str(resaved), {"requests": requests, "responses": responses}, yamlserializer
    )
    again = load_cassette(resaved)
    assert again.provenance == {"source": "test"}
    assert again.description == "a test cassette"
    original = load_cassette(path).interactions
    assert [i.chunks for i in again.interactions] == [i.chunks for i in original]


def test_the_older_layout_with_top_level_metadata_still_loads(tmp_path: Path) -> None:
    data = yaml.safe_load(dump_cassette(cassette()))
    ours = data["interactions"][0]["response"].pop("koala_harness")
    data["metadata"] = {"koala_harness": ours}
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    loaded = load_cassette(path)
    assert loaded.provenance == {"source": "test"}
    assert loaded.description == "a test cassette"
    assert loaded.interactions == [interaction()]


def test_a_provenance_that_is_not_a_mapping_is_named_where_it_is(tmp_path: Path) -> None:
    data = yaml.safe_load(dump_cassette(cassette()))
    data["interactions"][0]["response"]["koala_harness"]["provenance"] = "somewhere"
    with pytest.raises(CassetteError, match=r"interactions\[0\]\.response\.koala_harness"):
        parse_cassette(yaml.safe_dump(data))


def test_invalid_utf8_body_is_written_as_binary(tmp_path: Path) -> None:
    body = b'data: "\xff"\r\n\r\n'
    path = tmp_path / "binary.yaml"
    write_cassette(path, cassette(interaction(body, single_chunk(body))))
    assert "!!binary" in path.read_text()
    assert load_cassette(path).interactions[0].body == body


@given(
    body=st.binary(max_size=300),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=8),
    text=st.text(max_size=60),
)
def test_any_body_and_chunking_round_trips(body: bytes, cuts: list[int], text: str) -> None:
    body = body + text.encode("utf-8")
    bounds = sorted({0, len(body), *(c for c in cuts if c <= len(body))})
    sizes = [(b - a, n * 0.01) for n, (a, b) in enumerate(itertools.pairwise(bounds))]
    original = cassette(interaction(body, chunks_for(body, sizes) if sizes else single_chunk(body)))
    back = parse_cassette(dump_cassette(original))
    assert back.interactions[0].body == body
    assert back.interactions[0].chunks == original.interactions[0].chunks


def test_without_stream_timing_the_body_is_one_chunk_at_zero() -> None:
    text = dump_cassette(cassette()).replace("koala_stream:", "ignored_extra:")
    loaded = parse_cassette(text)
    assert loaded.interactions[0].chunks == [Chunk(0.0, BODY)]


# ----------------------------------------------------------------------------- load errors


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("interactions: [\n  - {", "not valid YAML at line"),
        ("version: 1\n", "missing key 'interactions'"),
        ("- 1\n- 2\n", "expected a mapping at the top"),
        ("interactions: {}\n", "'interactions' is a mapping, expected a list"),
        ("interactions:\n- request: {}\n  response: {}\n", "missing key 'method'"),
        ("!!python/object/apply:os.system ['true']\n", "not valid YAML"),
    ],
)
def test_load_errors_name_the_file_and_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(CassetteError) as caught:
        load_cassette(path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_chunk_sizes_that_do_not_add_up_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "sizes.yaml"
    path.write_text(dump_cassette(cassette()).replace("size: 16", "size: 15"))
    with pytest.raises(
        CassetteError, match=r"sizes.yaml: .*add up to 27 bytes but the body has 28"
    ):
        load_cassette(path)


def test_chunk_offsets_going_back_in_time_are_an_error() -> None:
    text = dump_cassette(cassette()).replace("at: 0.05", "at: -1")
    with pytest.raises(CassetteError, match=r"chunks\[1\]\.at is -1"):
        parse_cassette(text)


def test_a_missing_file_is_a_cassette_error(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match="cannot read"):
        load_cassette(tmp_path / "nope.yaml")


def test_directory_loading_reports_bad_files_without_failing(tmp_path: Path) -> None:
    write_cassette(tmp_path / "b.yaml", cassette(name="b"))
    write_cassette(tmp_path / "a.yml", cassette(name="a"))
    (tmp_path / "c.yaml").write_text("version: 1\n")
    (tmp_path / "notes.txt").write_text("not a cassette")
    found, errors = load_cassette_dir(tmp_path)
    assert [c.name for c in found] == ["a", "b"]
    assert len(errors) == 1
    assert "c.yaml" in str(errors[0])


# ----------------------------------------------------------------------------- matching


def test_match_ignores_key_order_spacing_and_host() -> None:
    recorded = cassette()
    body = {"model": "gpt-4o-mini", "outputHistory": [], "inputHistory": [], "input": "Hello"}
    result = find_match([recorded], "post", "/api/gpt/", body)
    assert result.interaction is recorded.interactions[0]
    assert result.cassette is recorded
    assert result.differences == []


def test_a_miss_names_the_nearest_and_what_differs() -> None:
    result = find_match([cassette()], "POST", "/api/gpt/", {**PAYLOAD, "input": "Hi"})
    assert result.interaction is None
    assert result.nearest_name == "greeting"
    assert result.differences == ["body.input: 'Hi' != 'Hello'"]


def test_json_types_are_compared_strictly() -> None:
    recorded = cassette(interaction(request_body=b'{"flag": 1}'))
    assert find_match([recorded], "POST", "/api/gpt/", {"flag": True}).interaction is None
    assert find_match([recorded], "POST", "/api/gpt/", {"flag": 1}).interaction is not None


def test_method_and_path_must_match() -> None:
    result = find_match([cassette()], "GET", "/api/other", PAYLOAD)
    assert result.interaction is None
    assert "method: 'GET' != 'POST'" in result.differences
    assert "path: '/api/other' != '/api/gpt/'" in result.differences


def test_non_json_bodies_compare_as_bytes() -> None:
    recorded = cassette(interaction(request_body=b"plain text"))
    assert find_match([recorded], "POST", "/api/gpt/", b"plain text").interaction is not None
    miss = find_match([recorded], "POST", "/api/gpt/", b"other")
    assert miss.differences and "compared as bytes" in miss.differences[0]


def test_no_cassettes_no_match() -> None:
    result = find_match([], "POST", "/api/gpt/", PAYLOAD)
    assert (result.interaction, result.nearest_name, result.differences) == (None, None, [])


# ----------------------------------------------------------------------------- writing


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "greeting.yaml"
    path.write_text("precious")
    with pytest.raises(CassetteExistsError, match="already exists"):
        write_cassette(path, cassette())
    assert path.read_text() == "precious"
    write_cassette(path, cassette(), force=True)
    assert load_cassette(path).interactions == [interaction()]
    assert leftovers(tmp_path) == ["greeting.yaml"]


def test_a_failed_write_leaves_neither_file_nor_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(fd: int) -> None:
        raise KeyboardInterrupt  # as if Ctrl-C arrived mid-write

    monkeypatch.setattr(cassettes_module.os, "fsync", broken_fsync)
    with pytest.raises(KeyboardInterrupt):
        write_cassette(tmp_path / "greeting.yaml", cassette())
    assert leftovers(tmp_path) == []


def test_losing_a_race_to_another_writer_keeps_their_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "greeting.yaml"
    real_link = os.link

    def link_after_rival(source: str, target: Path) -> None:
        Path(target).write_text("rival")
        real_link(source, target)

    monkeypatch.setattr(cassettes_module.os, "link", link_after_rival)
    with pytest.raises(CassetteExistsError):
        write_cassette(path, cassette())
    assert path.read_text() == "rival"
    assert leftovers(tmp_path) == ["greeting.yaml"]


def test_chunks_that_do_not_make_the_body_are_refused(tmp_path: Path) -> None:
    bad = interaction(chunks=[Chunk(0.0, b"something else")])
    with pytest.raises(CassetteError, match="chunk data does not add up"):
        write_cassette(tmp_path / "bad.yaml", cassette(bad))
    assert leftovers(tmp_path) == []


#: Nested block sequences: deep enough for PyYAML's recursive constructor, quick to scan.
DEEPLY_NESTED = "x:\n" + "- " * 3000 + "y\n"
#: The reported case (PyYAML scans deep flow nesting in quadratic time: about a second).
DEEPLY_NESTED_FLOW = "x: " + "[" * 5000 + "]" * 5000 + "\n"


@pytest.mark.parametrize("text", [DEEPLY_NESTED, DEEPLY_NESTED_FLOW], ids=["block", "flow"])
def test_a_deeply_nested_cassette_is_a_cassette_error_naming_the_file(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    with pytest.raises(CassetteError, match=r"deep\.yaml: nested too deeply"):
        load_cassette(path)
    found, errors = load_cassette_dir(tmp_path)
    assert found == [] and [e.path for e in errors] == [path]


async def test_reloading_a_deeply_nested_cassette_reports_it(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    from mockserver.config import MockConfig
    from mockserver.server.app import create_app

    client = await aiohttp_client(create_app(MockConfig(cassette_dir=tmp_path)))
    (tmp_path / "deep.yaml").write_text(DEEPLY_NESTED)
    response = await client.post(
        "/__admin/cassettes/reload", headers={"Content-Type": "application/json"}
    )
    assert response.status == 200
    assert "nested too deeply" in await response.text()


def test_verify_reports_a_deeply_nested_cassette_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mockserver.cli.main import main

    (tmp_path / "deep.yaml").write_text(DEEPLY_NESTED)
    assert main(["verify", "--upstream", "http://127.0.0.1:9/api/gpt/", str(tmp_path)]) == 4
    err = capsys.readouterr().err
    assert "deep.yaml: nested too deeply" in err and "Traceback" not in err


@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029"])
@pytest.mark.parametrize("around", ["{}", "data: {}\n\n" * 3, " {} ", "a{}b\n" * 20])
def test_yaml_line_break_characters_in_a_body_read_back_exactly(
    tmp_path: Path, char: str, around: str
) -> None:
    # NEL, LS and PS are line breaks to YAML: written raw they came back as "\n" or " ".
    body = around.replace("{}", char).encode("utf-8")
    path = tmp_path / "breaks.yaml"
    write_cassette(path, cassette(interaction(body, single_chunk(body))))
    assert load_cassette(path).interactions[0].body == body
    from vcr.persisters.filesystem import FilesystemPersister
    from vcr.serializers import yamlserializer

    _, responses = FilesystemPersister.load_cassette(str(path), yamlserializer)
    assert responses[0]["body"]["string"] == body


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda r: r["status"].update(message="OK\r\nX-Injected: 1"),
            "status.message holds a line break",
        ),
        (
            lambda r: r["headers"].update({"X-Evil\r\nSet-Cookie": ["a"]}),
            "is not a valid header name",
        ),
        (
            lambda r: r["headers"].update({"X-Ok": ["a\r\nb"]}),
            "holds a line break or control character",
        ),
        (
            lambda r: r["headers"].update({"X-Ok": ["a\x00b"]}),
            "holds a line break or control character",
        ),
    ],
)
def test_a_cassette_that_would_split_the_answer_is_refused_naming_why(
    tmp_path: Path, edit: Any, problem: str
) -> None:
    # Replayed, CR/LF in a status line or header would forge headers or make aiohttp refuse
    # the answer (a 500): refused at load instead, with the file named.
    data = yaml.safe_load((SOURCE_CASSETTE_DIR / "greeting.yaml").read_text())
    edit(data["interactions"][0]["response"])
    (tmp_path / "hostile.yaml").write_text(yaml.safe_dump(data))
    loaded, errors = load_cassette_dir(tmp_path)
    assert loaded == []
    assert len(errors) == 1 and problem in str(errors[0]) and "hostile.yaml" in str(errors[0])


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("not a mapping", "koala_stream.chunks[1] is a string, expected a mapping"),
        ({"at": 0.1}, "koala_stream.chunks[1]: missing key 'size'"),
        ({"size": 3}, "koala_stream.chunks[1]: missing key 'at'"),
        ({"size": -1, "at": 0.1}, "koala_stream.chunks[1].size is -1, expected an int >= 0"),
        ({"size": 3, "at": "soon"}, "koala_stream.chunks[1].at is 'soon', expected seconds"),
    ],
)
def test_a_bad_chunk_entry_is_refused_naming_it(entry: Any, problem: str) -> None:
    data = yaml.safe_load((SOURCE_CASSETTE_DIR / "greeting.yaml").read_text())
    data["interactions"][0]["response"]["koala_stream"]["chunks"][1] = entry
    with pytest.raises(CassetteError) as refused:
        parse_cassette(yaml.safe_dump(data), name="greeting")
    assert f"interactions[0].response.{problem}" in str(refused.value)
