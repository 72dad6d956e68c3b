"""Parsed cassettes are shared by every library in the process, per version of each file
(size, modification time, inode): a new server does not parse the same files again."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mockserver.cassettes.handmade import CASSETTE_DIR
from mockserver.cassettes.library import LOADED_FILES, CassetteLibrary


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("greeting.yaml", "multi_turn.yaml"):
        shutil.copy(CASSETTE_DIR / name, tmp_path / name)
    return tmp_path


def loaded(directory: Path) -> CassetteLibrary:
    library = CassetteLibrary(directory)
    library.ensure_loaded()
    return library


def names(library: CassetteLibrary) -> list[str]:
    return [c.name for c in library.cassettes]


def test_a_second_library_reuses_the_parsed_cassettes_and_plans(folder: Path) -> None:
    first, second = loaded(folder), loaded(folder)
    assert names(first) == names(second) == ["greeting", "multi_turn"]
    assert all(a is b for a, b in zip(first.cassettes, second.cassettes, strict=True))
    body = first.cassettes[0].interactions[0].request_json()
    hit_a, _ = first.lookup("POST", "/api/gpt/", body)
    hit_b, _ = second.lookup("POST", "/api/gpt/", body)
    assert hit_a is not None and hit_a is hit_b  # the same replay plan, built once


def test_a_changed_file_is_parsed_again(folder: Path) -> None:
    before = loaded(folder).cassettes[0]
    path = folder / "greeting.yaml"
    text = path.read_text(encoding="utf-8").replace("Hello!", "Howdy!")
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a new modification time even on a coarse clock
    after = loaded(folder).cassettes[0]
    assert after is not before
    assert b"Howdy!" in after.interactions[0].body


def test_same_size_and_time_but_a_new_file_is_parsed_again(folder: Path) -> None:
    path = folder / "greeting.yaml"
    stat = path.stat()
    before = loaded(folder).cassettes[0]
    replacement = folder / "new.tmp"
    replacement.write_text(path.read_text(encoding="utf-8").replace("Hello!", "Hallo!"))
    os.replace(replacement, path)  # a new inode
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = loaded(folder).cassettes[0]
    assert after is not before and b"Hallo!" in after.interactions[0].body


def test_a_broken_file_stays_reported_until_it_is_fixed(folder: Path) -> None:
    broken = folder / "broken.yaml"
    broken.write_text("interactions: [", encoding="utf-8")
    for _ in range(2):
        library = loaded(folder)
        assert [e.path for e in library.errors] == [broken]
    shutil.copy(CASSETTE_DIR / "unicode_emoji.yaml", broken)
    assert loaded(folder).errors == []
    assert "broken" in names(loaded(folder))


def test_removed_and_added_files_follow_the_directory(folder: Path) -> None:
    loaded(folder)
    (folder / "multi_turn.yaml").unlink()
    shutil.copy(CASSETTE_DIR / "long_answer.yaml", folder / "long_answer.yaml")
    assert names(loaded(folder)) == ["greeting", "long_answer"]


def test_reload_sees_a_change_without_a_new_library(folder: Path) -> None:
    library = loaded(folder)
    (folder / "multi_turn.yaml").unlink()
    library.reload()
    assert names(library) == ["greeting"]


def test_clear_forgets_everything(folder: Path) -> None:
    before = loaded(folder).cassettes[0]
    LOADED_FILES.clear()
    assert loaded(folder).cassettes[0] is not before


def test_a_replay_plan_is_built_on_first_use_and_kept(folder: Path) -> None:
    # Loading decodes no stream (serve answers nothing before every cassette is loaded); the
    # first replay builds its plan, and every later one gets the same object.
    library = loaded(folder)
    items = [LOADED_FILES.recorded(c) for c in library.cassettes]
    assert all("plan" not in vars(item) for group in items for item in group)
    body = library.cassettes[0].interactions[0].request_json()
    hit, _ = library.lookup("POST", "/api/gpt/", body)
    assert hit is not None
    plan = hit.plan
    assert plan.values and b"".join(w.data for w in plan.writes) == hit.interaction.body
    again, _ = loaded(folder).lookup("POST", "/api/gpt/", body)
    assert again is not None and again.plan is plan


def test_what_a_plan_is_built_from_cannot_be_changed(folder: Path) -> None:
    # A built plan is kept: its interaction, cassette and index are read-only.
    library = loaded(folder)
    body = library.cassettes[0].interactions[0].request_json()
    hit, _ = library.lookup("POST", "/api/gpt/", body)
    assert hit is not None and hit.index == 0 and hit.interaction in hit.cassette.interactions
    plan = hit.plan
    for name in ("cassette", "index", "interaction", "plan"):
        with pytest.raises(AttributeError, match="read-only"):
            setattr(hit, name, getattr(hit, name))
        with pytest.raises(AttributeError, match="read-only"):
            delattr(hit, name)
    assert hit.plan is plan
    assert hit.name == hit.cassette.name
