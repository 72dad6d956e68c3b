"""The cassettes' parse cache (mockserver.cassettes.parse_cache): what YAML made of a text, kept
as JSON under the text's SHA-256, read back instead of parsing the same bytes again, and never
trusted further than a parse: every check of the data still runs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from mockserver.cassettes import parse_cache
from mockserver.cassettes.cassette import CassetteError, load_cassette, parse_cassette
from mockserver.cassettes.handmade import CASSETTE_DIR


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv(parse_cache.CACHE_DIR_ENV_VAR, str(directory))
    return directory


def greeting_text() -> bytes:
    return (CASSETTE_DIR / "greeting.yaml").read_bytes()


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json"))


def forbid_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any YAML parse from here on fails the test (a cache hit must not need one)."""
    from mockserver.cassettes import yaml_text

    def refuse(text: bytes | str) -> None:
        raise AssertionError("parsed from YAML again")

    monkeypatch.setattr(yaml_text, "load", refuse)


def test_a_second_parse_of_the_same_bytes_reads_the_cache_and_gives_the_same_cassette(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = greeting_text()
    parsed = parse_cassette(text, name="greeting")
    (entry,) = entries(cache)
    assert entry.stem == hashlib.sha256(text).hexdigest()
    forbid_yaml(monkeypatch)
    assert parse_cassette(text, name="greeting") == parsed


def test_a_changed_text_is_parsed_from_yaml_again(cache: Path) -> None:
    text = greeting_text()
    parse_cassette(text)
    changed = parse_cassette(text.replace(b"Hello!", b"Howdy!"))
    assert b"Howdy!" in changed.interactions[0].body
    assert len(entries(cache)) == 2


def test_a_file_edited_with_its_size_and_time_kept_is_never_served_stale(
    cache: Path, tmp_path: Path
) -> None:
    path = tmp_path / "greeting.yaml"
    path.write_bytes(greeting_text())
    load_cassette(path)
    stat = path.stat()
    path.write_bytes(greeting_text().replace(b"Hello!", b"Hallo!"))  # the same length
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert b"Hallo!" in load_cassette(path).interactions[0].body


def test_a_broken_entry_is_a_miss_and_is_rewritten(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = greeting_text()
    parsed = parse_cassette(text)
    (entry,) = entries(cache)
    entry.write_bytes(b'{"interactions": [')  # cut short
    assert parse_cassette(text) == parsed
    forbid_yaml(monkeypatch)
    assert parse_cassette(text) == parsed  # the entry was written again


def test_a_cached_entry_is_checked_like_parsed_data(cache: Path) -> None:
    text = greeting_text()
    parse_cassette(text, name="greeting")
    (entry,) = entries(cache)
    data = json.loads(entry.read_bytes())
    data["interactions"][0]["response"]["status"] = {"code": "two hundred"}
    entry.write_text(json.dumps(data))
    with pytest.raises(CassetteError) as refused:
        parse_cassette(text, name="greeting")
    assert "status" in str(refused.value)


def test_the_text_checks_run_on_a_cached_load_too(cache: Path) -> None:
    text = greeting_text()
    parse_cassette(text)
    (entry,) = entries(cache)
    with_alias = b"a: &x 1\nb: *x\n"
    # An entry planted under the alias text's key is never reached: the alias check comes first.
    entry.rename(cache / (hashlib.sha256(with_alias).hexdigest() + ".json"))
    with pytest.raises(CassetteError, match="alias"):
        parse_cassette(with_alias)


def test_data_json_cannot_hold_exactly_is_not_cached(cache: Path) -> None:
    text = greeting_text()
    binary = text.replace(b"version: 1", b"version: 1\nrecorded: !!binary aGk=", 1)
    parse_cassette(binary)
    dated = text.replace(b"version: 1", b"version: 1\nrecorded: 2024-01-02", 1)
    parse_cassette(dated)
    infinite = text.replace(b"version: 1", b"version: 1\nlimit: .inf", 1)
    parse_cassette(infinite)
    assert entries(cache) == []


@pytest.mark.parametrize(
    ("value", "exact"),
    [
        ({"a": [1, 2.5, "x", True, None]}, True),
        ({"a": b"bytes"}, False),
        ({1: "int key"}, False),
        ({"a": float("nan")}, False),
        ({"a": (1, 2)}, False),
    ],
)
def test_only_what_json_gives_back_unchanged_is_exact(value: object, exact: bool) -> None:
    assert parse_cache._exact_in_json(value) is exact


def test_an_empty_setting_turns_the_cache_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(parse_cache.CACHE_DIR_ENV_VAR, "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert parse_cache.cache_dir() is None
    parse_cassette(greeting_text())
    assert list(tmp_path.iterdir()) == []


def test_without_a_setting_the_cache_is_in_the_users_cache_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(parse_cache.CACHE_DIR_ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert parse_cache.cache_dir() == tmp_path / "koala-mock" / "parsed-cassettes-v1"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_cache.cache_dir() == tmp_path / ".cache" / "koala-mock" / "parsed-cassettes-v1"


def test_a_cache_that_cannot_be_written_never_fails_a_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(parse_cache.CACHE_DIR_ENV_VAR, str(blocker / "cache"))
    assert parse_cassette(greeting_text()).interactions


def test_the_oldest_entries_go_beyond_the_bound(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parse_cache, "MAX_ENTRIES", 3)
    text = greeting_text()
    versions = [text.replace(b"Hello!", f"Hell{n}!".encode()) for n in range(5)]
    for n, version in enumerate(versions):
        parse_cassette(version)
        entry = cache / (hashlib.sha256(version).hexdigest() + ".json")
        os.utime(entry, (n, n))  # distinct times even on a coarse clock
    kept = {path.stem for path in entries(cache)}
    assert kept == {hashlib.sha256(version).hexdigest() for version in versions[2:]}


# -- an entry stands in for its cassette's text: only one the user could have written is read --


def _entry_path(cache: Path, text: bytes) -> Path:
    return cache / (hashlib.sha256(text).hexdigest() + ".json")


def test_a_fifo_or_a_link_in_an_entrys_place_is_a_miss_and_never_blocks(cache: Path) -> None:
    text = greeting_text()
    parse_cassette(text)  # makes the directory (and the entry, replaced below)
    entry = _entry_path(cache, text)
    entry.unlink()
    os.mkfifo(entry)  # reading it without O_NONBLOCK would wait for a writer forever
    assert parse_cache.lookup(text) is None
    entry.unlink()
    target = cache.parent / "elsewhere.json"
    target.write_text(json.dumps({"interactions": []}))
    entry.symlink_to(target)
    assert parse_cache.lookup(text) is None
    assert parse_cassette(text).interactions  # parsed from YAML instead


def test_an_entry_larger_than_its_text_could_need_is_a_miss(cache: Path) -> None:
    text = greeting_text()
    parse_cassette(text)
    entry = _entry_path(cache, text)
    data = json.loads(entry.read_bytes())
    data["padding"] = "x" * (6 * len(text) + 64 * 1024)
    entry.write_text(json.dumps(data))
    assert parse_cache.lookup(text) is None


def test_a_directory_others_may_write_to_is_neither_read_nor_written(cache: Path) -> None:
    text = greeting_text()
    parse_cassette(text)
    assert parse_cache.lookup(text) is not None
    assert cache.stat().st_mode & 0o077 == 0  # made private
    cache.chmod(0o777)
    assert parse_cache.lookup(text) is None
    _entry_path(cache, text).unlink()
    parse_cassette(text)
    assert entries(cache) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file another user's needs root")
def test_an_entry_another_user_owns_is_a_miss(cache: Path) -> None:
    text = greeting_text()
    parse_cassette(text)
    os.chown(_entry_path(cache, text), 12345, 12345)
    assert parse_cache.lookup(text) is None


def test_a_text_that_does_not_load_leaves_no_entry(cache: Path) -> None:
    with pytest.raises(CassetteError):
        parse_cassette(b"interactions: [1, 2]\n")
    assert entries(cache) == []


def test_an_entry_too_large_to_keep_is_not_written(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parse_cache, "MAX_ENTRY_BYTES", 100)
    parse_cassette(greeting_text())
    assert entries(cache) == []


def test_a_killed_writes_leftover_goes_once_it_is_stale(cache: Path) -> None:
    parse_cassette(greeting_text())
    stale, fresh = cache / ".old.tmp", cache / ".new.tmp"
    for leftover in (stale, fresh):
        leftover.write_bytes(b"{")
    os.utime(stale, (0, 0))
    parse_cassette(greeting_text().replace(b"Hello!", b"Howdy!"))  # a new entry: a prune
    assert not stale.exists() and fresh.exists()
