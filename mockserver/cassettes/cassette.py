"""vcrpy YAML cassettes with the stream's chunk timing: load, match, write.

The format is vcrpy's (version 1), so ``vcr.use_cassette(path)`` and pytest-recording's
``@pytest.mark.vcr`` read our files unchanged. Our extras live inside each interaction's
``response``, which vcrpy and pytest-recording pass through untouched and write back when they
re-save a file:

- ``response.koala_harness``: ``format``, ``description`` and ``provenance`` (who made the file,
  how, from which upstream), the same in every interaction of a file;
- ``response.koala_stream.chunks``: one ``{at, size}`` per network chunk of the body, ``at`` the
  arrival offset in seconds from the start of the body; the sizes add up to the body's length.

Older files kept ``koala_harness`` under a top-level ``metadata:`` key; they still load, but
pytest-recording cannot read them (vcrpy 9.4 returns the metadata as a third value that
pytest-recording's loader does not expect), so files are only written in the new layout.

Files are read with a safe YAML loader (``!!binary`` bodies allowed, no Python tags), as UTF-8
only, and at most ``max_bytes`` of them; a directory is read as :mod:`mockserver.cassettes.files`
decides, and a file none of whose interactions a Koala client could send is skipped. Files are
written atomically: a temporary file in the same directory, then a rename, never a partial file.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from koala.request import API_PATH
from koala.testing import matching_form
from mockserver.cassettes import parse_cache
from mockserver.cassettes.files import CASSETTE_SUFFIXES as CASSETTE_SUFFIXES
from mockserver.cassettes.files import (
    DEFAULT_MAX_CASSETTE_BYTES,
    TEMP_FILE_SUFFIX,
    FileRefused,
    read_limited,
    scan_directory,
    temp_file_prefix,
)
from mockserver.errors import MockServerError
from mockserver.wire.http_headers import control_character, is_field_name

__all__ = [
    "CASSETTE_SUFFIXES",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "STREAM_KEY",
    "VCR_VERSION",
    "Cassette",
    "CassetteError",
    "CassetteExistsError",
    "Chunk",
    "Exchange",
    "Interaction",
    "MatchResult",
    "cassette_dict",
    "cassette_files",
    "chunks_for",
    "dump_cassette",
    "find_match",
    "first_header",
    "interaction_name",
    "json_differences",
    "json_kind",
    "load_cassette",
    "load_cassette_dir",
    "parse_cassette",
    "parse_json",
    "request_differences",
    "single_chunk",
    "write_cassette",
]

FORMAT_VERSION = 1
VCR_VERSION = 1
METADATA_KEY = "koala_harness"
STREAM_KEY = "koala_stream"
_TIME_DIGITS = 6


def _file_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


class CassetteError(MockServerError):
    """A cassette that cannot be read or written. The message names the file and the problem."""

    def __init__(self, path: Path | str | None, problem: str) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        where = str(path) if path is not None else "<cassette>"
        super().__init__(f"{where}: {problem}")


class CassetteExistsError(CassetteError, FileExistsError):
    """The target file exists and overwriting was not asked for."""


class Chunk(NamedTuple):
    """One network chunk of a response body.

    A named tuple, not a frozen dataclass: as immutable, and made for every chunk of every
    cassette loaded, but defining it costs a tenth of a dataclass's ~0.4 ms at import.
    """

    #: Arrival offset, in seconds from the start of the response body.
    at: float
    data: bytes


# Exchange, Interaction and Cassette are dataclasses, although serve defines them at import
# (about 7 M instructions for the three): the scrubber, the recorder and the proxy copy them
# with dataclasses.replace, the upstream client's Capture extends Exchange and reads
# fields(Exchange), and the round-trip tests compare them.
@dataclass
class Exchange:
    """A request and its answer's status line and headers: what an :class:`Interaction` of a
    cassette and a capture of the upstream's answer (``mockserver.upstream.client.Capture``)
    both hold."""

    method: str
    uri: str
    request_headers: dict[str, list[str]]
    request_body: bytes
    status: int
    reason: str
    response_headers: dict[str, list[str]]

    @property
    def path(self) -> str:
        """The URL path (what matching looks at; host and scheme are ignored)."""
        return urlsplit(self.uri).path or "/"

    def request_json(self) -> Any | None:
        """The request body as parsed JSON, or None when it is empty or not JSON."""
        return parse_json(self.request_body)

    def response_header(self, name: str) -> str | None:
        """The first value of a response header (case-insensitive), or None."""
        return first_header(self.response_headers, name)

    def request_header(self, name: str) -> str | None:
        """The first value of a request header (case-insensitive), or None."""
        return first_header(self.request_headers, name)


@dataclass
class Interaction(Exchange):
    """One request and the response it got, with the body's chunk boundaries and timing."""

    body: bytes
    #: Concatenated, the chunks' data is always ``body``.
    chunks: list[Chunk]


@dataclass
class Cassette:
    name: str
    path: Path | None
    interactions: list[Interaction]
    provenance: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def chunks_for(body: bytes, sizes_and_offsets: Iterable[tuple[int, float]]) -> list[Chunk]:
    """Cut ``body`` into chunks of the given sizes, each with its arrival offset."""
    chunks = []
    start = 0
    for size, at in sizes_and_offsets:
        chunks.append(Chunk(at, body[start : start + size]))
        start += size
    return chunks


def single_chunk(body: bytes) -> list[Chunk]:
    """The whole body as one chunk at 0.0 (a cassette without stream timing)."""
    return [Chunk(0.0, body)]


# ----------------------------------------------------------------------------- loading


# PyYAML (in mockserver.cassettes.yaml_text) is imported late, only where a text is parsed from
# YAML or written: about 30 ms of imports that a start-up whose cassettes are all in the parse
# cache (mockserver.cassettes.parse_cache) skips.


def first_header(headers: Mapping[str, list[str]], name: str) -> str | None:
    """The first value of header ``name`` (case-insensitive) in ``{name: [values]}``, or None."""
    wanted = name.lower()
    for key, values in headers.items():
        if key.lower() == wanted and values:
            return values[0]
    return None


def parse_json(data: bytes) -> Any | None:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:  # includes UnicodeDecodeError
        return None


def load_cassette(
    path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_CASSETTE_BYTES
) -> Cassette:
    """Read and check one cassette file; any problem is a :class:`CassetteError` naming it.

    Only a regular file of at most ``max_bytes`` is read (a FIFO is never waited on).
    """
    path = Path(path)
    try:
        text = read_limited(path, max_bytes)
    except FileRefused as exc:
        raise CassetteError(path, exc.problem) from None
    except OSError as exc:
        raise CassetteError(path, f"cannot read: {exc.strerror or exc}") from None
    return parse_cassette(text, name=path.stem, path=path)


def parse_cassette(
    text: bytes | str, *, name: str = "cassette", path: Path | None = None
) -> Cassette:
    """Parse cassette YAML text (see :func:`load_cassette`)."""
    where: Path | str = path if path is not None else name
    try:
        return _parse_cassette(text, name, path, where)
    except RecursionError:  # PyYAML's constructor and json.dumps recurse per nesting level
        raise CassetteError(where, "nested too deeply to load") from None
    except MemoryError:
        raise CassetteError(where, "too large to load (out of memory)") from None


#: An anchor (``&name``) where YAML could start one: a file with none cannot hold an alias.
_MAYBE_ANCHOR = re.compile(rb"(?:^|[\s\[{,:?-])&[^\s\[\]{},]")


def _refuse_aliases(text: bytes | str, where: Path | str) -> None:
    """A CassetteError for a file with YAML aliases: a few hundred bytes of nested aliases
    ("billion laughs") expand to gigabytes, and no cassette writer makes them. The event scan
    (libyaml's when present, and lazy: nothing is expanded) runs only for a file that may hold
    an anchor, so ordinary cassettes cost nothing more."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    # An anchor needs an "&": the byte search is far quicker than the pattern's over a file.
    if b"&" not in raw or _MAYBE_ANCHOR.search(raw) is None:
        return
    from mockserver.cassettes import yaml_text  # late: PyYAML

    try:
        line = yaml_text.first_alias(text)
    except yaml_text.YAMLError:
        return  # the load that follows reports it
    if line is not None:
        at = f" at line {line + 1}" if line >= 0 else ""
        raise CassetteError(
            where,
            f"holds a YAML alias{at}; aliases are refused (they can expand "
            "without bound, and no cassette writer makes them)",
        )


_UNICODE_MARKS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),  # before UTF-16's, which it starts with
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def _refuse_non_utf8(data: bytes, where: Path | str) -> None:
    """A CassetteError unless ``data`` is UTF-8 text, as vcrpy writes and reads cassettes
    (YAML would also take UTF-16 and UTF-32, which vcrpy and most editors' diff views do not)."""
    for mark, encoding in _UNICODE_MARKS:
        if data.startswith(mark):
            raise CassetteError(
                where,
                f"not UTF-8 text: it starts with a {encoding} byte-order mark (save it as UTF-8)",
            )
    if b"\x00" in data:
        at = data.index(b"\x00")
        raise CassetteError(
            where, f"not UTF-8 text: a NUL byte at offset {at} (UTF-16 or UTF-32 text, or binary)"
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = f"0x{data[exc.start]:02x}"
        raise CassetteError(
            where, f"not UTF-8 text: byte {byte} at offset {exc.start} ({exc.reason})"
        ) from None


def _parse_cassette(text: bytes | str, name: str, path: Path | None, where: Path | str) -> Cassette:
    if isinstance(text, bytes):
        _refuse_non_utf8(text, where)
    _refuse_aliases(text, where)
    data = parse_cache.lookup(text) if isinstance(text, bytes) else None
    parsed_from_yaml = data is None
    if data is None:
        data = _load_yaml(text, where)
    cassette = _cassette_from(data, name, path, where)
    if parsed_from_yaml and isinstance(text, bytes):
        parse_cache.store(text, data)  # only a text that loaded: a refused one is parsed again
    return cassette


def _cassette_from(data: Any, name: str, path: Path | None, where: Path | str) -> Cassette:
    if not isinstance(data, dict):
        raise CassetteError(where, f"expected a mapping at the top, got {_kind(data)}")
    interactions = data.get("interactions")
    if interactions is None:
        raise CassetteError(where, "missing key 'interactions'")
    if not isinstance(interactions, list):
        raise CassetteError(where, f"'interactions' is {_kind(interactions)}, expected a list")
    parsed = [_interaction(where, n, item) for n, item in enumerate(interactions)]
    ours, ctx = _our_metadata(data, interactions)
    provenance = ours.get("provenance") or {}
    if not isinstance(provenance, dict):
        raise CassetteError(where, f"{ctx}.provenance is not a mapping")
    description = ours.get("description") or ""
    return Cassette(
        name=name,
        path=path,
        interactions=parsed,
        provenance=dict(provenance),
        description=str(description),
    )


def _load_yaml(text: bytes | str, where: Path | str) -> Any:
    from mockserver.cassettes import yaml_text  # late: PyYAML

    try:
        return yaml_text.load(text)
    except yaml_text.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "nesting depth" in problem:  # libyaml's own limit; the pure loader recurses instead
            raise CassetteError(where, "nested too deeply to load") from None
        raise CassetteError(where, f"not valid YAML{at}: {problem}") from None
    except UnicodeDecodeError as exc:
        raise CassetteError(where, f"not UTF-8 text: {exc.reason}") from None


def _our_metadata(data: dict[Any, Any], interactions: list[Any]) -> tuple[dict[str, Any], str]:
    """Our ``koala_harness`` mapping, and where it was: the first interaction's response that
    has one, else the top-level ``metadata`` (the older layout)."""
    for n, item in enumerate(interactions):
        response = item.get("response") if isinstance(item, dict) else None
        ours = response.get(METADATA_KEY) if isinstance(response, dict) else None
        if isinstance(ours, dict):
            return ours, f"interactions[{n}].response.{METADATA_KEY}"
    metadata = data.get("metadata")
    ours = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    return (ours if isinstance(ours, dict) else {}), f"metadata.{METADATA_KEY}"


def cassette_files(
    directory: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_CASSETTE_BYTES
) -> tuple[list[Path], list[CassetteError]]:
    """The cassette files to read in ``directory``, sorted by name, and every ``*.yaml`` /
    ``*.yml`` entry skipped, with its reason (see :mod:`mockserver.cassettes.files`);
    :class:`CassetteError` when ``directory`` cannot be listed. Nothing is opened."""
    return _scan(Path(directory), max_bytes, remove_leftovers=False)


def _scan(
    directory: Path, max_bytes: int, *, remove_leftovers: bool
) -> tuple[list[Path], list[CassetteError]]:
    if not directory.is_dir():
        raise CassetteError(directory, "not a directory")
    try:
        scan = scan_directory(directory, max_bytes=max_bytes, remove_leftovers=remove_leftovers)
    except OSError as exc:
        raise CassetteError(directory, f"cannot list: {exc.strerror or exc}") from None
    return scan.files, [CassetteError(s.path, s.reason) for s in scan.skipped]


def load_cassette_dir(
    directory: str | os.PathLike[str],
    load: Callable[[Path], Cassette] | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_CASSETTE_BYTES,
    remove_leftovers: bool = False,
    endpoint: str = API_PATH,
) -> tuple[list[Cassette], list[CassetteError]]:
    """Every cassette in ``directory`` (:func:`cassette_files`), loaded by ``load`` (default
    :func:`load_cassette` with ``max_bytes``), that holds an interaction a Koala client could
    send (a POST to ``endpoint``: :func:`koala_problem`).

    Every file skipped is reported in the second list with its reason, never raised.
    ``remove_leftovers``: delete the temporary files that killed writes left behind.
    """
    if load is None:

        def load(path: Path) -> Cassette:
            return load_cassette(path, max_bytes=max_bytes)

    try:
        paths, errors = _scan(Path(directory), max_bytes, remove_leftovers=remove_leftovers)
    except CassetteError as exc:
        return [], [exc]
    cassettes: list[Cassette] = []
    for path in paths:
        try:
            cassette = load(path)
        except CassetteError as exc:
            errors.append(exc)
            continue
        problem = koala_problem(cassette, endpoint)
        if problem is None:
            cassettes.append(cassette)
        else:
            errors.append(CassetteError(path, problem))
    errors.sort(key=lambda e: str(e.path))
    return cassettes, errors


def same_endpoint(path: str, endpoint: str = API_PATH) -> bool:
    """``/api/gpt`` and ``/api/gpt/`` are one endpoint (the server routes both)."""
    return path.rstrip("/") == endpoint.rstrip("/")


def koala_problem(cassette: Cassette, endpoint: str = API_PATH) -> str | None:
    """Why ``cassette`` can answer no Koala client (None: an interaction is a POST to
    ``endpoint``, the Koala API's path). A vcrpy cassette of another API (GitHub's, OpenAI's)
    would otherwise load and answer nothing, with no word."""
    interactions = cassette.interactions
    if any(i.method.upper() == "POST" and same_endpoint(i.path, endpoint) for i in interactions):
        return None
    if not interactions:
        return "not a Koala cassette: it holds no interactions"
    seen = sorted({f"{i.method.upper()[:10]} {_where(i.uri)}" for i in interactions})
    listed = ", ".join(seen[:3]) + (f" and {len(seen) - 3} more" if len(seen) > 3 else "")
    return (
        f"not a Koala cassette: no interaction is a POST to {endpoint} "
        f"(what a Koala client sends); it holds {listed}"
    )


def _where(uri: str) -> str:
    """Host and path of ``uri``, no user-info or query (they may hold credentials)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    text = f"{host}{parts.path or '/'}"
    return text if len(text) <= 60 else text[:60] + "…"


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    names: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string", bytes: "binary"}
    return names.get(type(value), f"a {type(value).__name__}")


def _require(where: Path | str, ctx: str, mapping: Any, key: str) -> Any:
    if not isinstance(mapping, dict):
        raise CassetteError(where, f"{ctx} is {_kind(mapping)}, expected a mapping")
    if key not in mapping:
        raise CassetteError(where, f"{ctx}: missing key '{key}'")
    return mapping[key]


def _headers(where: Path | str, ctx: str, value: Any) -> dict[str, list[str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CassetteError(where, f"{ctx} is {_kind(value)}, expected a mapping")
    headers: dict[str, list[str]] = {}
    for name, values in value.items():
        items = values if isinstance(values, list) else [values]
        if not all(isinstance(v, (str, int, float)) for v in items):
            raise CassetteError(where, f"{ctx}.{name}: expected a string or a list of strings")
        if not is_field_name(str(name)):
            raise CassetteError(where, f"{ctx}: {str(name)[:40]!r} is not a valid header name")
        texts = [str(v) for v in items]
        # CR, LF and the other controls would split a replayed answer (or make aiohttp refuse
        # it, a 500). Joined, the values hold one exactly when one of them does.
        if control_character("".join(texts)) is not None:
            raise CassetteError(
                where, f"{ctx}.{name}: a value holds a line break or control character"
            )
        headers[str(name)] = texts
    return headers


def _as_bytes(where: Path | str, ctx: str, value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", errors="surrogateescape")
    if isinstance(value, (dict, list)):  # vcrpy records aiohttp's json= body as the object
        return json.dumps(value).encode("utf-8")
    raise CassetteError(where, f"{ctx} is {_kind(value)}, expected text or !!binary")


def _interaction(where: Path | str, number: int, item: Any) -> Interaction:
    ctx = f"interactions[{number}]"
    request = _require(where, ctx, item, "request")
    response = _require(where, ctx, item, "response")
    method = _require(where, f"{ctx}.request", request, "method")
    uri = _require(where, f"{ctx}.request", request, "uri")
    if not isinstance(method, str) or not isinstance(uri, str):
        raise CassetteError(where, f"{ctx}.request: 'method' and 'uri' must be strings")
    try:
        urlsplit(uri)  # what matching reads the path from
    except ValueError as exc:
        raise CassetteError(where, f"{ctx}.request.uri is not a URL: {exc}") from None
    request_body = _as_bytes(where, f"{ctx}.request.body", request.get("body"))
    request_headers = _headers(where, f"{ctx}.request.headers", request.get("headers"))
    status = _require(where, f"{ctx}.response", response, "status")
    code = _require(where, f"{ctx}.response.status", status, "code")
    if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 999:
        raise CassetteError(where, f"{ctx}.response.status.code is {code!r}, expected 100-999")
    reason = status.get("message") or ""
    if control_character(str(reason)) is not None:
        raise CassetteError(
            where,
            f"{ctx}.response.status.message holds a line break or control character",
        )
    response_headers = _headers(where, f"{ctx}.response.headers", response.get("headers"))
    body_field = response.get("body") or {}
    if not isinstance(body_field, dict):
        raise CassetteError(
            where, f"{ctx}.response.body is {_kind(body_field)}, expected a mapping"
        )
    body = _as_bytes(where, f"{ctx}.response.body.string", body_field.get("string"))
    chunks = _chunks(where, f"{ctx}.response.{STREAM_KEY}", response.get(STREAM_KEY), body)
    return Interaction(
        method=method,
        uri=uri,
        request_headers=request_headers,
        request_body=request_body,
        status=code,
        reason=str(reason),
        response_headers=response_headers,
        body=body,
        chunks=chunks,
    )


def _chunks(where: Path | str, ctx: str, stream: Any, body: bytes) -> list[Chunk]:
    if stream is None:
        return single_chunk(body)
    entries = _require(where, ctx, stream, "chunks")
    if not isinstance(entries, list):
        raise CassetteError(where, f"{ctx}.chunks is {_kind(entries)}, expected a list")
    pairs: list[tuple[int, float]] = []
    previous = 0.0
    for n, entry in enumerate(entries):
        if not (isinstance(entry, dict) and "size" in entry and "at" in entry):
            # The error's context is written out only for an entry that fails (a stream has
            # hundreds of chunks, and formatting it for each was most of a cassette's load).
            _require(where, f"{ctx}.chunks[{n}]", entry, "size")
            _require(where, f"{ctx}.chunks[{n}]", entry, "at")
        size, at = entry["size"], entry["at"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise CassetteError(where, f"{ctx}.chunks[{n}].size is {size!r}, expected an int >= 0")
        if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
            raise CassetteError(where, f"{ctx}.chunks[{n}].at is {at!r}, expected seconds")
        if at < previous:
            raise CassetteError(
                where, f"{ctx}.chunks[{n}].at is {at}, earlier than the chunk before ({previous})"
            )
        previous = float(at)
        pairs.append((size, float(at)))
    total = sum(size for size, _ in pairs)
    if total != len(body):
        raise CassetteError(
            where,
            f"{ctx}: chunk sizes add up to {total} bytes but the body has {len(body)} bytes",
        )
    return chunks_for(body, pairs) if pairs else single_chunk(body)


# ----------------------------------------------------------------------------- matching


class MatchResult:
    """The interaction that answers a request, or the nearest miss and what differs."""

    __slots__ = ("cassette", "differences", "interaction", "nearest_name")

    def __init__(
        self,
        interaction: Interaction | None = None,
        cassette: Cassette | None = None,
        nearest_name: str | None = None,
        differences: list[str] | None = None,
    ) -> None:
        self.interaction = interaction
        self.cassette = cassette
        #: Name of the nearest interaction (``cassette`` or ``cassette#n`` for n > 0) on a miss.
        self.nearest_name = nearest_name
        #: On a miss: what differs from the nearest, ``"<where>: <request> != <recorded>"``.
        self.differences = differences if differences is not None else []


def interaction_name(cassette: Cassette, index: int) -> str:
    return cassette.name if index == 0 else f"{cassette.name}#{index}"


def find_match(cassettes: Sequence[Cassette], method: str, path: str, body: Any) -> MatchResult:
    """The first interaction whose method, URL path and JSON body equal the request's.

    ``body`` is the request body already parsed from JSON, or ``bytes`` when it is not JSON
    (then compared byte for byte). Headers are ignored (the Visitor-ID changes on every call).
    """
    best: tuple[int, str, list[str]] | None = None
    for cassette in cassettes:
        for index, interaction in enumerate(cassette.interactions):
            differences = request_differences(interaction, method, path, body)
            if not differences:
                return MatchResult(interaction, cassette)
            score = _distance(differences)
            if best is None or score < best[0]:
                best = (score, interaction_name(cassette, index), differences)
    if best is None:
        return MatchResult()
    return MatchResult(nearest_name=best[1], differences=best[2])


def _distance(differences: list[str]) -> int:
    # A different method or path weighs more than any number of body differences.
    return sum(1000 if d.startswith(("method:", "path:")) else 1 for d in differences)


def request_differences(interaction: Interaction, method: str, path: str, body: Any) -> list[str]:
    """What differs between a request and a recorded one (empty when they match).

    JSON bodies are compared in their :func:`matching_form`.
    """
    differences = []
    if method.upper() != interaction.method.upper():
        differences.append(f"method: {method.upper()!r} != {interaction.method.upper()!r}")
    if path != interaction.path:
        differences.append(f"path: {path!r} != {interaction.path!r}")
    recorded: Any = interaction.request_json()
    if isinstance(body, (bytes, bytearray)) or recorded is None:
        raw = bytes(body) if isinstance(body, (bytes, bytearray)) else _json_bytes(body)
        if raw != interaction.request_body:
            differences.append(
                f"body: {_short(raw)} != {_short(interaction.request_body)} (compared as bytes)"
            )
        return differences
    differences.extend(json_differences(matching_form(body), matching_form(recorded), "body"))
    return differences


def json_differences(got: Any, recorded: Any, where: str) -> list[str]:
    """Differences between two JSON values, by path; ``True`` never equals ``1`` here."""
    if isinstance(got, dict) and isinstance(recorded, dict):
        out: list[str] = []
        for key in got:
            if key not in recorded:
                out.append(f"{where}.{key}: present in the request, not in the cassette")
            else:
                out.extend(json_differences(got[key], recorded[key], f"{where}.{key}"))
        out.extend(
            f"{where}.{key}: in the cassette, missing from the request"
            for key in recorded
            if key not in got
        )
        return out
    if isinstance(got, list) and isinstance(recorded, list):
        if len(got) != len(recorded):
            return [f"{where}: {_short_value(got)} != {_short_value(recorded)}"]
        out = []
        for n, (a, b) in enumerate(zip(got, recorded, strict=True)):
            out.extend(json_differences(a, b, f"{where}[{n}]"))
        return out
    if json_kind(got) != json_kind(recorded) or got != recorded:
        return [f"{where}: {_short_value(got)} != {_short_value(recorded)}"]
    return []


def json_kind(value: Any) -> str:
    """The JSON type of a parsed value: string, number, boolean, null, object, array."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _json_bytes(value: Any) -> bytes:
    try:
        return json.dumps(value).encode("utf-8")
    except (TypeError, ValueError):
        return repr(value).encode("utf-8")


def _short(data: bytes, limit: int = 80) -> str:
    text = data.decode("utf-8", errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _short_value(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


# ----------------------------------------------------------------------------- writing


def _body_value(data: bytes) -> str | bytes:
    """Text when the bytes are UTF-8 (readable, as vcrpy writes them), else ``!!binary``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def _headers_value(headers: Mapping[str, list[str]]) -> dict[str, Any]:
    from mockserver.cassettes.yaml_text import FlowList  # late: PyYAML

    return {name: FlowList(values) for name, values in headers.items()}


def cassette_dict(cassette: Cassette) -> dict[str, Any]:
    """The cassette as the plain data written to YAML."""
    from mockserver.cassettes.yaml_text import FlowDict  # late: PyYAML

    interactions = []
    for interaction in cassette.interactions:
        if b"".join(chunk.data for chunk in interaction.chunks) != interaction.body:
            raise CassetteError(
                cassette.path or cassette.name, "chunk data does not add up to the body"
            )
        interactions.append(
            {
                "request": {
                    "method": interaction.method,
                    "uri": interaction.uri,
                    "body": _body_value(interaction.request_body),
                    "headers": _headers_value(interaction.request_headers),
                },
                "response": {
                    "status": FlowDict(code=interaction.status, message=interaction.reason),
                    "headers": _headers_value(interaction.response_headers),
                    "body": {"string": _body_value(interaction.body)},
                    STREAM_KEY: {
                        "chunks": [
                            FlowDict(at=round(chunk.at, _TIME_DIGITS), size=len(chunk.data))
                            for chunk in interaction.chunks
                        ]
                    },
                    METADATA_KEY: _metadata_value(cassette),
                },
            }
        )
    # No top-level "metadata": pytest-recording cannot load a cassette that has one.
    return {"version": VCR_VERSION, "interactions": interactions}


def _metadata_value(cassette: Cassette) -> dict[str, Any]:
    """A new copy for each interaction (a shared one would be written as a YAML alias)."""
    ours: dict[str, Any] = {"format": FORMAT_VERSION}
    if cassette.description:
        ours["description"] = cassette.description
    ours["provenance"] = copy.deepcopy(cassette.provenance)
    return ours


def dump_cassette(cassette: Cassette) -> str:
    """The cassette's YAML text."""
    from mockserver.cassettes import yaml_text  # late: PyYAML

    return yaml_text.dump(cassette_dict(cassette))


def write_cassette(
    path: str | os.PathLike[str], cassette: Cassette, *, force: bool = False
) -> None:
    """Write ``cassette`` to ``path`` atomically.

    Without ``force`` an existing file is never replaced (:class:`CassetteExistsError`, also when
    another writer wins a race). The text is read back and checked before it takes the file's
    place, and the temporary file is removed whatever happens (errors, Ctrl-C, cancellation).
    """
    path = Path(path)
    if not force and path.exists():
        raise CassetteExistsError(path, "already exists; use --force to overwrite it")
    text = dump_cassette(cassette)
    _check_round_trip(path, cassette, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(
        prefix=temp_file_prefix(path), suffix=TEMP_FILE_SUFFIX, dir=path.parent
    )
    try:
        os.chmod(temp_name, _FILE_MODE)  # mkstemp makes it 0600; a cassette is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            os.replace(temp_name, path)
        else:
            _link_without_overwrite(temp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)


def _link_without_overwrite(temp_name: str, path: Path) -> None:
    try:
        os.link(temp_name, path)  # atomic, and fails if the target appeared meanwhile
    except FileExistsError:
        raise CassetteExistsError(path, "already exists; use --force to overwrite it") from None
    except OSError:  # a file system without hard links
        if path.exists():
            raise CassetteExistsError(path, "already exists; use --force to overwrite it") from None
        os.replace(temp_name, path)


def _check_round_trip(path: Path, cassette: Cassette, text: str) -> None:
    back = parse_cassette(text, name=cassette.name, path=path)
    for original, reread in zip(cassette.interactions, back.interactions, strict=True):
        if (original.body, original.request_body) != (reread.body, reread.request_body):
            raise CassetteError(
                path, "the YAML text would not read back byte-identical; not written"
            )
