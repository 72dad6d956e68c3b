"""Which entries of a cassette directory are read as cassettes, and why each other one is not.

Decided from the directory entry and ``stat`` alone, before anything is opened: opening a FIFO
would block start-up until something writes to it, and a 60 MB file would be parsed whole.
Only names ending in ``.yaml`` / ``.yml`` are candidates (a ``README.md`` is no cassette and
not worth a word); each of those is either read or skipped with one line saying why:

- a symlink loop, a dangling symlink, or a symlink whose target is outside the directory
  (following it would read any file the user can, ``/etc/passwd`` included: copy the file in,
  or point the server at the directory it lives in);
- not a regular file (a directory, a FIFO, a socket, a device);
- larger than the size limit (:data:`DEFAULT_MAX_CASSETTE_BYTES` unless told otherwise).

The temporary files of :func:`mockserver.cassettes.cassette.write_cassette` are named here too
(:func:`temp_file_prefix`, :data:`TEMP_FILE_SUFFIX`), so that the leftovers of a write that was
killed (``kill -9`` leaves no chance to clean up) are recognised by exactly that naming:
``.<cassette name>.<8 characters of mkstemp's alphabet>.tmp``. A leftover untouched for
:data:`LEFTOVER_AGE` seconds is removed when asked (``remove_leftovers``); a younger one may
belong to a write in progress in another process, and is left alone. Either is reported, and
neither is ever read as a cassette (its name ends in ``.tmp``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import time
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "CASSETTE_SUFFIXES",
    "DEFAULT_MAX_CASSETTE_BYTES",
    "LEFTOVER_AGE",
    "TEMP_FILE_SUFFIX",
    "DirectoryScan",
    "FileRefused",
    "Skipped",
    "is_leftover_name",
    "read_limited",
    "scan_directory",
    "size_text",
    "temp_file_prefix",
]

CASSETTE_SUFFIXES = (".yaml", ".yml")
#: The largest cassette file read (the bundled ones are a few KiB; a long recorded answer is
#: well under 1 MiB). Larger files are skipped without being opened.
DEFAULT_MAX_CASSETTE_BYTES = 16 * 1024 * 1024
#: Seconds after its last change that a temporary file counts as left over by a dead writer
#: (a write takes milliseconds: the text is built and checked before the file is created).
LEFTOVER_AGE = 60.0
TEMP_FILE_SUFFIX = ".tmp"
#: ``.greeting.yaml.k3j_x0qz.tmp``: the prefix, then ``tempfile.mkstemp``'s 8 random characters.
_LEFTOVER_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}" + re.escape(TEMP_FILE_SUFFIX))


def temp_file_prefix(target: Path) -> str:
    """The name prefix of the temporary file that becomes ``target`` (hidden, next to it)."""
    return f".{target.name}."


def is_leftover_name(name: str) -> bool:
    """Whether ``name`` is one of our temporary cassette files (not merely any ``*.tmp``)."""
    match = _LEFTOVER_NAME.fullmatch(name)
    return match is not None and match["target"].lower().endswith(CASSETTE_SUFFIXES)


class FileRefused(Exception):
    """A file that is not read; ``problem`` says why (the caller names the file)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class Skipped(NamedTuple):
    """A directory entry that is not read as a cassette, and why (a named tuple: cheaper than
    a frozen dataclass to define at import)."""

    path: Path
    reason: str


class DirectoryScan:
    """The cassette files of a directory to read (sorted by name) and the entries skipped."""

    __slots__ = ("files", "skipped")

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.skipped: list[Skipped] = []


def size_text(size: int) -> str:
    """A size for a message.

    >>> size_text(16 * 1024 * 1024), size_text(1536), size_text(512)
    ('16 MiB', '1.5 KiB', '512 bytes')
    """
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value.is_integer() else f"{value:.1f} {unit}"
    return f"{size} bytes"


def scan_directory(
    directory: Path,
    *,
    max_bytes: int = DEFAULT_MAX_CASSETTE_BYTES,
    remove_leftovers: bool = False,
) -> DirectoryScan:
    """The cassette files of ``directory`` and the entries skipped, each with its reason.

    ``OSError`` when the directory itself cannot be listed. Nothing is opened.
    """
    root = os.path.realpath(directory)
    scan = DirectoryScan()
    with os.scandir(directory) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            path = Path(directory) / entry.name
            if is_leftover_name(entry.name):
                reason = _leftover(path, remove_leftovers)
                if reason is not None:
                    scan.skipped.append(Skipped(path, reason))
            elif Path(entry.name).suffix.lower() in CASSETTE_SUFFIXES:
                reason = _problem(path, root, max_bytes)
                if reason is None:
                    scan.files.append(path)
                else:
                    scan.skipped.append(Skipped(path, reason))
    return scan


def _problem(path: Path, root: str, max_bytes: int) -> str | None:
    """Why ``path`` is not read as a cassette, or None when it is."""
    try:
        link = os.lstat(path)
    except OSError as exc:  # gone since the listing
        return f"cannot read: {exc.strerror or exc}"
    if stat.S_ISLNK(link.st_mode):
        try:
            info = os.stat(path)
        except OSError as exc:
            return _broken_link(path, exc)
        target = os.path.realpath(path)
        if os.path.commonpath([root, target]) != root:
            return (
                f"a symlink to {target}, outside the cassette directory; not followed "
                "(copy the file in, or serve the directory it is in)"
            )
    else:
        info = link
    kind = _not_regular(info.st_mode)
    if kind is not None:
        return f"{kind}, not a regular file; not opened"
    return _too_large(info.st_size, max_bytes)


def _broken_link(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symlink loop"
    if exc.errno == errno.ENOENT:
        with contextlib.suppress(OSError):
            return f"a dangling symlink: its target {os.readlink(path)} does not exist"
        return "a dangling symlink: its target does not exist"
    return f"a symlink that cannot be followed: {exc.strerror or exc}"


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _too_large(size: int, max_bytes: int) -> str | None:
    if size <= max_bytes:
        return None
    return (
        f"too large: {size_text(size)}, over the {size_text(max_bytes)} limit "
        "(MockConfig.max_cassette_size, serve --max-cassette-size)"
    )


def _leftover(path: Path, remove: bool) -> str | None:
    """What happened to one of our temporary files (None: not a regular file, so not ours)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None  # the writer finished meanwhile
    if not stat.S_ISREG(info.st_mode):
        return None  # mkstemp makes regular files: this is someone else's
    if time.time() - info.st_mtime < LEFTOVER_AGE:
        return (
            "the temporary file of a cassette write in progress (or one interrupted under "
            f"{LEFTOVER_AGE:g} s ago); not read, left alone"
        )
    if not remove:
        return "left over by an interrupted cassette write; not read (serve removes it)"
    try:
        os.unlink(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return (
            "left over by an interrupted cassette write; not read, and it could not be "
            f"removed: {exc.strerror or exc}"
        )
    return "left over by an interrupted cassette write; removed"


def read_limited(path: Path, max_bytes: int = DEFAULT_MAX_CASSETTE_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them.

    :class:`FileRefused` for anything else: the check is made on the opened file, so a FIFO
    put in place after a directory scan still never blocks (it is opened non-blocking) and a
    file that grew is still refused. ``OSError`` when it cannot be opened or read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        kind = _not_regular(info.st_mode)
        if kind is not None:
            raise FileRefused(f"{kind}, not a regular file")
        problem = _too_large(info.st_size, max_bytes)
        if problem is not None:
            raise FileRefused(problem)
        pieces: list[bytes] = []
        size = 0
        chunk = info.st_size + 1  # one read, unless the file grows meanwhile
        while size <= max_bytes and (piece := os.read(fd, min(chunk, max_bytes + 1 - size))):
            pieces.append(piece)
            size += len(piece)
    finally:
        os.close(fd)
    problem = _too_large(size, max_bytes)
    if problem is not None:
        raise FileRefused(problem)  # it grew since it was opened
    return b"".join(pieces)
