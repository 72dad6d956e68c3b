"""A cache of what PyYAML made of a cassette's text, as JSON, keyed by the text's SHA-256.

Parsing the bundled cassettes takes about 15 ms and importing PyYAML about 30 ms more; reading
the same data back as JSON takes under 1 ms. So the data of a cassette text that loaded is
kept in the user's cache directory, ``$KOALA_MOCK_CACHE_DIR`` if set (empty: no cache), else
``$XDG_CACHE_HOME/koala-mock/parsed-cassettes-v1``, else ``~/.cache/koala-mock/...`` — never
beside the cassettes. What makes it safe:

- the key is the SHA-256 of the exact bytes read, so a changed file (whatever its size and
  modification time say) is a different key and is parsed from YAML again: never served stale;
- only the YAML step is skipped: the text's own checks (UTF-8, no aliases) and every check of
  the data (:func:`~mockserver.cassettes.cassette.parse_cassette`) run on a cached load as on a
  parsed one, so an entry can hold nothing a cassette could not. An entry does stand in for
  its cassette's text, so only one the user could have written is read: a regular file (no
  FIFO, device or link followed), owned by the user, no larger than :func:`_entry_limit`, in a
  directory owned by the user that nobody else may write to (made with mode 0700);
- JSON, never pickle: reading an entry runs no code. Only data that JSON holds exactly (text
  keys, lists, text, whole numbers, finite floats, booleans, null) is stored; a cassette with a
  ``!!binary`` body or a date is parsed from YAML every time;
- an entry that cannot be read or decoded is a miss; one that cannot be written is skipped
  (read-only home, full disk): the cache never makes a load fail. Entries are written to a
  temporary file and renamed into place (a leftover one is removed once it is a minute old),
  only for a text that loaded, at most :data:`MAX_ENTRY_BYTES` each, and at most
  :data:`MAX_ENTRIES` are kept (the least recently written go).

The cache holds a copy of each cassette's data (what the cassette holds, scrubbed as it was
recorded) outside the project; ``KOALA_MOCK_CACHE_DIR=`` (empty) keeps none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["CACHE_DIR_ENV_VAR", "MAX_ENTRIES", "MAX_ENTRY_BYTES", "cache_dir", "lookup", "store"]

CACHE_DIR_ENV_VAR = "KOALA_MOCK_CACHE_DIR"
#: Bounds the directory however often cassettes are edited (each version is an entry).
MAX_ENTRIES = 256
#: The largest entry written (a larger cassette is parsed from YAML each time): with
#: :data:`MAX_ENTRIES`, at most 256 MiB of disk.
MAX_ENTRY_BYTES = 1024 * 1024
#: A temporary file this much older than now is a killed write's leftover.
_STALE_TEMP_SECONDS = 60.0
_SUBDIR = Path("koala-mock") / "parsed-cassettes-v1"  # v1: the entry's layout; bump to change it
_SUFFIX = ".json"


def cache_dir() -> Path | None:
    """Where entries live, read from the environment on every call; None: caching is off."""
    chosen = os.environ.get(CACHE_DIR_ENV_VAR)
    if chosen is not None:
        return Path(chosen) if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):  # "~" unexpanded (no home): no cache rather than one in cwd
        return None
    return Path(base) / _SUBDIR


def _entry(directory: Path, text: bytes) -> Path:
    return directory / (hashlib.sha256(text).hexdigest() + _SUFFIX)


def lookup(text: bytes) -> dict[str, Any] | None:
    """The data stored for exactly ``text``, or None (no entry, caching off, unreadable)."""
    directory = cache_dir()
    if directory is None:
        return None
    try:
        raw = _read_trusted(_entry(directory, text), _entry_limit(text))
        data = json.loads(raw) if raw is not None else None
    except (OSError, ValueError, RecursionError):  # ValueError includes JSON's and UTF-8's
        return None
    return data if isinstance(data, dict) else None


def _entry_limit(text: bytes) -> int:
    """The most bytes an entry for ``text`` can need: JSON with every character escaped as
    ``\\uXXXX`` is at most six times the text, plus room for the structure."""
    return min(MAX_ENTRY_BYTES, 6 * len(text) + 64 * 1024)


def _private_directory(directory: Path) -> bool:
    """Whether ``directory`` is one only this user can write to (so an entry in it is theirs)."""
    info = os.stat(directory, follow_symlinks=False)
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _read_trusted(path: Path, limit: int) -> bytes | None:
    """The bytes of ``path`` if it is a regular file of this user's, at most ``limit`` bytes, in
    a private directory; else None. Never follows a link, never blocks on a FIFO."""
    if not _private_directory(path.parent):
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_size > limit:
            return None
        data = handle.read(limit + 1)  # (it may have grown since)
    return data if len(data) <= limit else None


def store(text: bytes, data: Any) -> None:
    """Keep ``data``, what YAML made of ``text``, if JSON holds it exactly; never raises for
    the file system."""
    directory = cache_dir()
    if directory is None or not isinstance(data, dict) or not _exact_in_json(data):
        return
    try:
        encoded = json.dumps(data, ensure_ascii=True, allow_nan=False).encode("ascii")
    except (ValueError, RecursionError):
        return
    if len(encoded) > _entry_limit(text):
        return
    with contextlib.suppress(OSError):
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir(mode=0o700, exist_ok=True)
        if not _private_directory(directory):
            return
        _prune(directory)
        fd, temp_name = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(encoded)
            os.replace(temp_name, _entry(directory, text))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)


def _exact_in_json(value: Any, depth: int = 0) -> bool:
    """Whether ``json.loads(json.dumps(value))`` gives ``value`` back, types included."""
    if depth > 100:  # deeper than any cassette; the load recurses as deep again
        return False
    if value is None or type(value) in (str, int, bool):
        return True
    if type(value) is float:
        return value - value == 0.0  # finite (inf - inf and nan - nan are nan)
    if type(value) is list:
        return all(_exact_in_json(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(
            type(key) is str and _exact_in_json(item, depth + 1) for key, item in value.items()
        )
    return False  # bytes (!!binary), dates, sets...


def _prune(directory: Path) -> None:
    """Room for one more entry: the oldest go while there are :data:`MAX_ENTRIES` or more; a
    killed write's temporary file goes once it is stale."""
    entries: list[tuple[int, Path]] = []
    stale_before = time.time() - _STALE_TEMP_SECONDS
    for path in directory.iterdir():
        try:
            info = path.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed by another process meanwhile
            continue
        if path.suffix == _SUFFIX:
            entries.append((info.st_mtime_ns, path))
        elif path.name.startswith(".") and path.suffix == ".tmp" and info.st_mtime < stale_before:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    if len(entries) < MAX_ENTRIES:
        return
    entries.sort()
    for _, path in entries[: len(entries) - MAX_ENTRIES + 1]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
