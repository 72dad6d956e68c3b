"""Hostile entries in a cassette directory: each one skipped is named with its reason, none is
fatal, a FIFO is never opened, and the temporary files of a killed write are cleaned up."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import HEADERS
from serve_process import ServeProcess

from koala.request import API_PATH, build_payload, encode_payload
from mockserver.cassettes import files
from mockserver.cassettes.cassette import CassetteError, load_cassette, load_cassette_dir
from mockserver.cassettes.files import (
    DEFAULT_MAX_CASSETTE_BYTES,
    LEFTOVER_AGE,
    FileRefused,
    is_leftover_name,
    read_limited,
    scan_directory,
)
from mockserver.cassettes.library import LOADED_FILES, CassetteLibrary, recorded
from mockserver.cassettes.locations import SOURCE_CASSETTE_DIR
from mockserver.config import MockConfig
from mockserver.server.app import create_app

REPO = Path(__file__).resolve().parents[2]
GREETING = SOURCE_CASSETTE_DIR / "greeting.yaml"

GREETING_REQUEST = encode_payload(
    build_payload("gpt-4o-mini", [{"role": "user", "content": "Hello"}])
)

GITHUB_CASSETTE = """\
interactions:
- request:
    body: null
    headers:
      Accept: [application/vnd.github+json]
    method: GET
    uri: https://api.github.com/repos/octocat/hello-world?per_page=1
  response:
    body: {string: '{"id": 1296269, "name": "Hello-World"}'}
    headers:
      Content-Type: [application/json; charset=utf-8]
    status: {code: 200, message: OK}
- request:
    body: '{"model": "gpt-4o", "messages": []}'
    headers: {}
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body: {string: '{}'}
    headers: {}
    status: {code: 200, message: OK}
version: 1
"""


def reasons(directory: Path, **options: object) -> dict[str, str]:
    """``{file name: reason}`` of every entry ``load_cassette_dir`` skipped."""
    _, errors = load_cassette_dir(directory, **options)  # type: ignore[arg-type]
    named = {e.path.name: e.problem for e in errors if e.path is not None}
    assert len(named) == len(errors), errors  # one line per file, each naming its file
    return named


def good_copy(directory: Path, name: str = "greeting.yaml") -> Path:
    target = directory / name
    shutil.copyfile(GREETING, target)
    return target


# ----------------------------------------------------------------------------- links


def test_a_symlink_loop_is_skipped_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to("b.yaml")
    (tmp_path / "b.yaml").symlink_to("a.yaml")
    (tmp_path / "self.yml").symlink_to("self.yml")
    assert reasons(tmp_path) == {
        "a.yaml": "a symlink loop",
        "b.yaml": "a symlink loop",
        "self.yml": "a symlink loop",
    }


def test_a_dangling_symlink_is_skipped_naming_its_target(tmp_path: Path) -> None:
    (tmp_path / "gone.yaml").symlink_to("deleted-long-ago.yaml")
    assert reasons(tmp_path) == {
        "gone.yaml": "a dangling symlink: its target deleted-long-ago.yaml does not exist"
    }


def test_a_symlink_out_of_the_directory_is_not_followed(tmp_path: Path) -> None:
    directory = tmp_path / "cassettes"
    directory.mkdir()
    outside = good_copy(tmp_path, "outside.yaml")
    (directory / "passwd.yaml").symlink_to("/etc/passwd")
    (directory / "outside.yaml").symlink_to(outside)
    (directory / "up.yaml").symlink_to("../outside.yaml")
    found = reasons(directory)
    assert set(found) == {"passwd.yaml", "outside.yaml", "up.yaml"}
    assert found["passwd.yaml"].startswith(
        f"a symlink to {os.path.realpath('/etc/passwd')}, outside the cassette directory"
    )
    assert found["up.yaml"].startswith(f"a symlink to {outside.resolve()}, outside")
    assert "not followed" in found["outside.yaml"]


def test_a_symlink_inside_the_directory_is_followed(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    good_copy(tmp_path / "sub")
    (tmp_path / "alias.yaml").symlink_to("sub/greeting.yaml")
    loaded, errors = load_cassette_dir(tmp_path)
    assert errors == [] and [c.name for c in loaded] == ["alias"]


def test_a_directory_reached_through_a_symlink_still_reads_its_own_files(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    good_copy(real)
    (real / "alias.yaml").symlink_to("greeting.yaml")
    (tmp_path / "link").symlink_to(real)
    loaded, errors = load_cassette_dir(tmp_path / "link")
    assert errors == [] and sorted(c.name for c in loaded) == ["alias", "greeting"]


# ----------------------------------------------------------------------------- not regular files


def test_a_fifo_is_skipped_and_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    good_copy(tmp_path)
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(load_cassette_dir(tmp_path)))
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():  # unblock the thread before failing: open the FIFO's write end
        os.close(os.open(tmp_path / "pipe.yaml", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("loading the directory blocked on a FIFO")
    ((loaded, errors),) = result  # type: ignore[misc]
    assert [c.name for c in loaded] == ["greeting"]
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'pipe.yaml'}: a FIFO (named pipe), not a regular file; not opened"
    ]


def test_reading_a_fifo_directly_does_not_block(tmp_path: Path) -> None:
    # A FIFO put in place after the directory was scanned: the opened file is checked.
    os.mkfifo(tmp_path / "late.yaml")
    with pytest.raises(FileRefused, match="a FIFO"):
        read_limited(tmp_path / "late.yaml")
    with pytest.raises(CassetteError, match=r"late\.yaml: a FIFO \(named pipe\), not a regular"):
        load_cassette(tmp_path / "late.yaml")


def test_a_directory_named_like_a_cassette_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "folder.yaml").mkdir()
    assert reasons(tmp_path) == {"folder.yaml": "a directory, not a regular file; not opened"}


def test_a_socket_named_like_a_cassette_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a socket path is limited to about 100 bytes
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind("sock.yml")
        assert reasons(tmp_path) == {"sock.yml": "a socket, not a regular file; not opened"}


def test_other_names_are_not_cassettes_and_not_reported(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "README.md").write_text("# my cassettes\n")
    (tmp_path / "notes.txt").symlink_to("nowhere")
    good_copy(tmp_path)
    loaded, errors = load_cassette_dir(tmp_path)
    assert [c.name for c in loaded] == ["greeting"] and errors == []


# ----------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    ("encoding", "problem"),
    [
        ("utf-16", "not UTF-8 text: it starts with a UTF-16 byte-order mark (save it as UTF-8)"),
        ("utf-32", "not UTF-8 text: it starts with a UTF-32 byte-order mark (save it as UTF-8)"),
        ("utf-16-le", "not UTF-8 text: a NUL byte at offset 1 (UTF-16 or UTF-32 text, or binary)"),
        ("utf-16-be", "not UTF-8 text: a NUL byte at offset 0 (UTF-16 or UTF-32 text, or binary)"),
    ],
)
def test_a_utf16_or_utf32_file_is_named_as_such(
    tmp_path: Path, encoding: str, problem: str
) -> None:
    # YAML itself reads UTF-16 with a byte-order mark; vcrpy and the tools around it do not.
    (tmp_path / "wide.yaml").write_bytes(GREETING.read_text().encode(encoding))
    assert reasons(tmp_path) == {"wide.yaml": problem}


def test_a_latin1_file_is_named_with_the_offending_byte(tmp_path: Path) -> None:
    text = "# café\n" + GREETING.read_text()
    (tmp_path / "latin.yaml").write_bytes(text.encode("latin-1"))
    assert reasons(tmp_path) == {
        "latin.yaml": "not UTF-8 text: byte 0xe9 at offset 5 (invalid continuation byte)"
    }


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + GREETING.read_bytes())
    loaded, errors = load_cassette_dir(tmp_path)
    assert errors == [] and [c.name for c in loaded] == ["bom"]


# ----------------------------------------------------------------------------- other APIs


def test_a_vcrpy_cassette_of_another_api_is_not_a_koala_cassette(tmp_path: Path) -> None:
    (tmp_path / "github.yaml").write_text(GITHUB_CASSETTE)
    good_copy(tmp_path)
    loaded, errors = load_cassette_dir(tmp_path)
    assert [c.name for c in loaded] == ["greeting"]
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'github.yaml'}: not a Koala cassette: no interaction is a POST to "
        "/api/gpt/ (what a Koala client sends); it holds GET api.github.com/repos/octocat/"
        "hello-world, POST api.openai.com/v1/chat/completions"
    ]  # the query string is left out: it may hold a credential


def test_a_get_of_the_koala_path_or_no_interaction_at_all_is_no_koala_cassette(
    tmp_path: Path,
) -> None:
    data = yaml.safe_load(GREETING.read_text())
    data["interactions"][0]["request"]["method"] = "GET"
    (tmp_path / "get.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "empty.yaml").write_text("version: 1\ninteractions: []\n")
    found = reasons(tmp_path)
    assert found["empty.yaml"] == "not a Koala cassette: it holds no interactions"
    assert found["get.yaml"].endswith("it holds GET koala.sh/api/gpt/")


def test_the_koala_path_without_its_slash_and_another_host_are_koala(tmp_path: Path) -> None:
    data = yaml.safe_load(GREETING.read_text())
    data["interactions"][0]["request"]["uri"] = "http://127.0.0.1:8080/api/gpt"
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(data))
    loaded, errors = load_cassette_dir(tmp_path)
    assert errors == [] and [c.name for c in loaded] == ["local"]


def test_a_uri_that_is_no_url_is_a_cassette_error(tmp_path: Path) -> None:
    data = yaml.safe_load(GREETING.read_text())
    data["interactions"][0]["request"]["uri"] = "http://[broken/api/gpt/"
    (tmp_path / "ipv6.yaml").write_text(yaml.safe_dump(data))
    assert reasons(tmp_path) == {
        "ipv6.yaml": "interactions[0].request.uri is not a URL: Invalid IPv6 URL"
    }


# ----------------------------------------------------------------------------- size


def test_an_oversized_file_is_skipped_without_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open(tmp_path / "huge.yaml", "wb") as handle:
        handle.truncate(60 * 1024 * 1024)  # sparse: instant, and no disk used
    good_copy(tmp_path)
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(
        files.os, "open", lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k)
    )
    loaded, errors = load_cassette_dir(tmp_path)
    assert [c.name for c in loaded] == ["greeting"]
    assert [e.problem for e in errors] == [
        "too large: 60 MiB, over the 16 MiB limit "
        "(MockConfig.max_cassette_size, serve --max-cassette-size)"
    ]
    # (The parse cache's entries, elsewhere, are opened too: only this directory's count.)
    assert [p for p in opened if Path(p).parent == tmp_path] == [str(tmp_path / "greeting.yaml")]


def test_the_size_limit_is_configurable(tmp_path: Path) -> None:
    size = good_copy(tmp_path).stat().st_size
    assert reasons(tmp_path, max_bytes=size - 1) == {
        "greeting.yaml": f"too large: {files.size_text(size)}, over the "
        f"{files.size_text(size - 1)} limit "
        "(MockConfig.max_cassette_size, serve --max-cassette-size)"
    }
    assert reasons(tmp_path, max_bytes=size) == {}
    assert DEFAULT_MAX_CASSETTE_BYTES == 16 * 1024 * 1024


def test_a_file_that_grows_past_the_limit_is_refused_on_reading(tmp_path: Path) -> None:
    path = good_copy(tmp_path)
    limit = path.stat().st_size - 10
    with pytest.raises(FileRefused, match="too large"):
        read_limited(path, limit)
    with pytest.raises(CassetteError, match="too large"):
        load_cassette(path, max_bytes=limit)
    assert read_limited(path, limit + 10) == GREETING.read_bytes()


def test_the_shared_cache_keeps_the_limit_a_file_was_read_under(tmp_path: Path) -> None:
    path = good_copy(tmp_path)
    with pytest.raises(CassetteError, match="too large"):
        LOADED_FILES.load(path, 100)
    assert LOADED_FILES.load(path).name == "greeting"  # not the cached refusal
    library = CassetteLibrary(tmp_path, max_bytes=100)
    library.reload()
    assert library.cassettes == [] and "too large" in library.errors[0].problem


# ----------------------------------------------------------------------------- leftovers

KILLED_WRITE = """
import os, signal, sys
from mockserver.cassettes.cassette import load_cassette, write_cassette

os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of a write
write_cassette(sys.argv[2], load_cassette(sys.argv[1]))
"""


def killed_write(directory: Path, name: str = "new.yaml") -> Path:
    """The temporary file a write killed with SIGKILL left behind in ``directory``."""
    before = set(directory.iterdir())
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WRITE, str(GREETING), str(directory / name)],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=120,
        capture_output=True,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    (leftover,) = set(directory.iterdir()) - before
    assert not (directory / name).exists()
    return leftover


def aged(path: Path, seconds: float = LEFTOVER_AGE + 1) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)
    return path


def test_a_killed_write_leaves_a_file_named_as_the_writer_names_it(tmp_path: Path) -> None:
    leftover = killed_write(tmp_path)
    assert leftover.name.startswith(".new.yaml.") and leftover.name.endswith(".tmp")
    assert is_leftover_name(leftover.name)


def test_an_old_leftover_is_removed_when_the_library_loads(tmp_path: Path) -> None:
    leftover = aged(killed_write(tmp_path))
    good_copy(tmp_path)
    library = CassetteLibrary(tmp_path)
    library.reload()
    assert [c.name for c in library.cassettes] == ["greeting"]
    assert [str(e) for e in library.errors] == [
        f"{leftover}: left over by an interrupted cassette write; removed"
    ]
    assert not leftover.exists()
    library.reload()
    assert library.errors == []


def test_a_young_leftover_may_be_a_write_in_progress_and_is_left_alone(tmp_path: Path) -> None:
    leftover = killed_write(tmp_path)
    library = CassetteLibrary(tmp_path)
    library.reload()
    assert library.cassettes == []
    assert [e.problem for e in library.errors] == [
        "the temporary file of a cassette write in progress (or one interrupted under 60 s "
        "ago); not read, left alone"
    ]
    assert leftover.exists()


def test_loading_without_cleanup_reports_a_leftover_and_keeps_it(tmp_path: Path) -> None:
    leftover = aged(killed_write(tmp_path))
    assert reasons(tmp_path) == {
        leftover.name: "left over by an interrupted cassette write; not read (serve removes it)"
    }
    assert leftover.exists()


def test_a_leftover_that_cannot_be_removed_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leftover = aged(killed_write(tmp_path))

    def refuse(path: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.os, "unlink", refuse)
    assert reasons(tmp_path, remove_leftovers=True) == {
        leftover.name: "left over by an interrupted cassette write; not read, and it could not "
        "be removed: Permission denied"
    }


@pytest.mark.parametrize(
    "name",
    [
        "notes.tmp",
        "greeting.yaml.tmp",
        ".greeting.yaml.tmp",
        ".greeting.yaml.ABCDEFGH.tmp",  # mkstemp never uses capitals
        ".greeting.yaml.abcdefg.tmp",  # seven characters, not eight
        ".notes.abcdefgh.tmp",  # not a cassette's temporary file
        ".greeting.json.abcdefgh.tmp",
    ],
)
def test_a_users_tmp_file_is_never_touched(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("mine")
    aged(path)
    assert not is_leftover_name(name)
    assert scan_directory(tmp_path, remove_leftovers=True).skipped == []
    assert path.read_text() == "mine"


def test_a_symlink_named_like_a_leftover_is_not_ours(tmp_path: Path) -> None:
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    link = tmp_path / ".greeting.yaml.abcd_123.tmp"
    link.symlink_to(keep)
    aged(link)
    assert is_leftover_name(link.name)
    assert scan_directory(tmp_path, remove_leftovers=True).skipped == []
    assert link.is_symlink() and keep.read_text() == "mine"


# ----------------------------------------------------------------------------- all at once


def hostile_directory(directory: Path) -> dict[str, str]:
    """A directory holding one of every kind of bad entry, and the start of each reason."""
    (directory / "loop.yaml").symlink_to("loop.yaml")
    (directory / "dangling.yaml").symlink_to("missing.yaml")
    (directory / "passwd.yaml").symlink_to("/etc/passwd")
    os.mkfifo(directory / "fifo.yaml")
    (directory / "folder.yaml").mkdir()
    (directory / "utf16.yaml").write_bytes(GREETING.read_text().encode("utf-16"))
    (directory / "github.yaml").write_text(GITHUB_CASSETTE)
    with open(directory / "huge.yaml", "wb") as handle:
        handle.truncate(60 * 1024 * 1024)
    (directory / "line\nbreak.yaml").write_text("not: [valid")
    return {
        "loop.yaml": "a symlink loop",
        "dangling.yaml": "a dangling symlink",
        "passwd.yaml": "a symlink to ",
        "fifo.yaml": "a FIFO (named pipe), not a regular file",
        "folder.yaml": "a directory, not a regular file",
        "utf16.yaml": "not UTF-8 text",
        "github.yaml": "not a Koala cassette",
        "huge.yaml": "too large",
        "line\nbreak.yaml": "not valid YAML",
    }


def test_a_directory_of_only_bad_files_loads_nothing_and_names_each(tmp_path: Path) -> None:
    expected = hostile_directory(tmp_path)
    leftover = aged(killed_write(tmp_path))
    library = CassetteLibrary(tmp_path)
    library.reload()
    assert library.cassettes == []
    skipped = {Path(item["file"]).name: item["reason"] for item in library.to_json()["skipped"]}
    assert skipped.pop(leftover.name) == "left over by an interrupted cassette write; removed"
    assert set(skipped) == set(expected)
    for name, start in expected.items():
        assert skipped[name].startswith(start), (name, skipped[name])


async def test_the_app_starts_with_a_hostile_directory_and_serves_the_good_cassette(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    expected = hostile_directory(tmp_path)
    good_copy(tmp_path)
    client = await aiohttp_client(
        create_app(MockConfig(cassette_dir=tmp_path, mode="replay", speed=0))
    )
    listing = await (await client.get("/__admin/cassettes")).json()
    assert [c["name"] for c in listing["cassettes"]] == ["greeting"]
    assert {Path(s["file"]).name for s in listing["skipped"]} == set(expected)
    assert len(listing["errors"]) == len(expected)
    health = await (await client.get("/__admin/health")).json()
    assert health["cassette_errors"] == len(expected)

    answer = await client.post(
        API_PATH,
        data=GREETING_REQUEST,
        headers=HEADERS,
    )
    assert answer.status == 200
    assert await answer.read() == load_cassette(GREETING).interactions[0].body


def test_serve_warns_once_per_skipped_file_and_replays_the_good_one(tmp_path: Path) -> None:
    expected = hostile_directory(tmp_path)
    leftover = aged(killed_write(tmp_path))
    good_copy(tmp_path)
    server = ServeProcess(
        "--port", "0", "--cassettes", str(tmp_path), "--mode", "replay", "--speed", "0"
    )
    try:
        server.wait_for_endpoint()
        answer = server.ask("Hello")
        _, err = server.terminate()
    finally:
        server.close()
    assert server.process.returncode == 0, err
    greeting = load_cassette(GREETING)
    assert answer == "".join(recorded(greeting, 0, greeting.interactions[0]).plan.values or ["?"])
    assert "Traceback" not in err
    assert "1 cassette (1 interaction) from" in err
    warnings = [line for line in err.splitlines() if "cassette skipped: " in line]
    assert len(warnings) == len(expected) + 1, warnings  # one line each, none split
    assert not leftover.exists()
    for name, start in {**expected, leftover.name: "left over by"}.items():
        shown = name.replace("\n", "\\x0a")  # a line break in a name is escaped
        (line,) = [w for w in warnings if f"{tmp_path / shown}: " in w]
        assert line.split(f"{tmp_path / shown}: ", 1)[1].startswith(start), line


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_skipped_files_warning_is_one_line_in_either_log_format(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    log_format: str,
) -> None:
    from mockserver.cli.console import Console

    cli_main = importlib.import_module("mockserver.cli.main")  # the package exports main()

    (tmp_path / "a\nb.yaml").write_text("not: [valid")
    monkeypatch.setattr(cli_main, "CONSOLE", Console(log_format))
    config = MockConfig(cassette_dir=tmp_path)
    cli_main._report_cassettes(create_app(config), config)
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if "cassette skipped" in x]
    assert len(lines) == 1, err
    line = lines[0]
    if log_format == "text":
        assert f"cassette skipped: {tmp_path}/a\\x0ab.yaml: not valid YAML" in line
    else:
        record = json.loads(line)
        assert record["message"].startswith(f"cassette skipped: {tmp_path}/a\nb.yaml: not valid")
        assert record["file"] == str(tmp_path / "a\nb.yaml")
        assert record["reason"].startswith("not valid YAML")
