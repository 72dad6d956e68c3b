"""The loaded cassettes, indexed for fast matching, and each interaction's replay plan.

Loading, matching and the cassette format belong to :mod:`mockserver.cassettes.cassette`; this
module adds what serving needs on every request: an exact-match index (a dict lookup instead of a
scan) and, per interaction, the plan (headers, chunks, decoded values), built on its first replay
and kept, so later replays cost no parsing at request time.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Any

from koala.errors import StreamError
from koala.request import API_PATH
from koala.response import parse_media_type
from koala.sse import EventStreamDecoder
from koala.testing import matching_form
from mockserver.cassettes.cassette import (
    Cassette,
    CassetteError,
    Interaction,
    MatchResult,
    find_match,
    interaction_name,
    load_cassette,
    load_cassette_dir,
    parse_json,
    same_endpoint,
)
from mockserver.cassettes.files import DEFAULT_MAX_CASSETTE_BYTES
from mockserver.wire.http_headers import HOP_BY_HOP_HEADERS, TRANSFER_HEADERS
from mockserver.wire.plan import ResponsePlan, ServedBy, Write

__all__ = [
    "LOADED_FILES",
    "UNREPLAYED_HEADERS",
    "CassetteLibrary",
    "FileSignature",
    "Recorded",
    "api_path",
    "decoded_values",
    "match_key",
    "recorded",
]

#: Response headers that describe one transfer, not the answer; the server sets its own.
UNREPLAYED_HEADERS = HOP_BY_HOP_HEADERS | TRANSFER_HEADERS | {"date"}


class Recorded:
    """One interaction ready to replay: ``cassette``, the ``index`` of the ``interaction`` in
    it, and the interaction. Read-only, as the plan made from them is never changed once built.

    Its plan is built when first used, not when the cassettes load: decoding every recorded
    stream is most of what loading costs after the file is read, and ``serve`` answers no
    request before it has loaded them all. (A plain class rather than a frozen dataclass,
    which costs ``serve`` ten times as much to define at import.)
    """

    cassette: Cassette
    index: int
    interaction: Interaction

    def __init__(self, cassette: Cassette, index: int, interaction: Interaction) -> None:
        # Past __setattr__, which refuses every change; the cached properties below keep their
        # values in the instance dict too (functools.cached_property writes it directly).
        vars(self).update(cassette=cassette, index=index, interaction=interaction)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Recorded is read-only (setting {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a Recorded is read-only (deleting {name!r})")

    @cached_property
    def plan(self) -> ResponsePlan:
        interaction = self.interaction
        headers = [
            (name, value)
            for name, values in interaction.response_headers.items()
            if name.lower() not in UNREPLAYED_HEADERS
            for value in values
        ]
        writes = [Write(c.data) for c in interaction.chunks or [] if c.data]
        writes = writes or [Write(interaction.body)]
        values, ends = decoded_values(interaction, [w.data for w in writes])
        return ResponsePlan(
            status=interaction.status,
            headers=tuple(headers),
            writes=tuple(writes),
            event_ends=tuple(ends),
            values=values,
            reason=interaction.reason or None,
        )

    @cached_property
    def offsets(self) -> tuple[float, ...]:
        """Seconds from the start of the body at which each write is due (recorded timing)."""
        return tuple(c.at for c in self.interaction.chunks or [] if c.data) or (0.0,)

    @property
    def name(self) -> str:
        return interaction_name(self.cassette, self.index)

    @cached_property
    def has_timing(self) -> bool:
        return any(at > 0 for at in self.offsets)

    @cached_property
    def served_by(self) -> ServedBy:
        """What the journal says served a replay (shared by its entries: never mutate it)."""
        return {"source": "cassette", "cassette": self.cassette.name, "interaction": self.index}

    def timed_plan(self, scale: float) -> ResponsePlan:
        """The plan with the recorded gaps between chunks divided by ``scale`` (0: none)."""
        if scale == 0 or not self.has_timing:
            return self.plan
        writes = []
        previous = 0.0
        for write, at in zip(self.plan.writes, self.offsets, strict=True):
            writes.append(Write(write.data, max(0.0, at - previous) / scale))
            previous = at
        return replace(self.plan, writes=tuple(writes))

    def paced_plan(self, delay: float) -> ResponsePlan:
        """The body cut at its event boundaries, ``delay`` seconds apart (no recorded timing)."""
        body = self.plan.body
        cuts = [0, *self.plan.event_ends]
        if cuts[-1] < len(body):
            cuts.append(len(body))
        pieces = [body[a:b] for a, b in pairwise(cuts) if b > a]
        writes = tuple(Write(p, delay if n else 0.0) for n, p in enumerate(pieces))
        return replace(self.plan, writes=writes)


def recorded(cassette: Cassette, index: int, interaction: Interaction) -> Recorded:
    return Recorded(cassette, index, interaction)


def decoded_values(
    interaction: Interaction, pieces: list[bytes]
) -> tuple[list[Any] | None, list[int]]:
    """The values of a 2xx answer, and where each event is complete.

    An event stream's decoded values, or the ``output`` of a JSON reply ``{"output": "..."}``
    (the keyed API's; one value, no events). None when the answer is neither or does not decode
    (it is replayed as recorded).
    """
    media_type = parse_media_type(interaction.response_header("Content-Type"))
    if not 200 <= interaction.status < 300:
        return None, []
    if media_type.is_json:
        reply = parse_json(interaction.body)
        if isinstance(reply, dict) and isinstance(reply.get("output"), str):
            return [reply["output"]], []
        return None, []
    if not media_type.is_event_stream:
        return None, []
    decoder = EventStreamDecoder(max_event_size=len(interaction.body) + 1)
    values: list[Any] = []
    ends: list[int] = []
    offset = 0
    try:
        for piece in pieces:
            offset += len(piece)
            new = decoder.feed(piece)
            values += new
            ends += [offset] * len(new)
        tail = decoder.close()
    except StreamError:
        return None, []
    values += tail
    ends += [offset] * len(tail)
    return values, ends


def _index_key(method: str, path: str, body: Any) -> str | None:
    """A key equal for requests that ``find_match`` calls equal (None: leave it to find_match).

    Like ``find_match``: object key order is ignored, ``1 == 1.0``, ``true != 1``, and bodies
    are compared in their :func:`matching_form` (omitted histories are empty ones).
    """
    try:
        return json.dumps([method.upper(), path, _canonical(matching_form(body))], sort_keys=True)
    except ValueError:  # NaN never equals itself
        return None


def match_key(method: str, path: str, body: Any, raw: bytes) -> str:
    """A key equal for requests the replay matching rules call equal (a non-JSON body, or one
    with a NaN, by its bytes)."""
    key = _index_key(method, api_path(path), body) if not isinstance(body, bytes) else None
    return key if key is not None else repr((method.upper(), api_path(path), raw))


def _canonical(value: Any) -> Any:
    if isinstance(value, float):
        if value != value:
            raise ValueError("NaN")
        return int(value) if value.is_integer() else value
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def api_path(path: str) -> str:
    """``/api/gpt`` and ``/api/gpt/`` are one endpoint; cassettes record ``/api/gpt/``."""
    return API_PATH if same_endpoint(path, API_PATH) else path


#: What identifies one version of a file: size, modification time (ns), inode; and the size
#: limit it was read under (a file too large for one limit may load under another).
FileSignature = tuple[int, int, int, int]


class _LoadedFiles:
    """Cassette files already parsed, shared by every library in the process.

    A test suite starts a server per test; each would otherwise parse the same files again
    (about 8 ms for the bundled set with libyaml, 60 ms without). A file is parsed again as
    soon as its size, modification time or inode changes.
    """

    def __init__(self) -> None:
        self._files: dict[Path, tuple[FileSignature, Cassette | CassetteError]] = {}
        #: id(cassette) -> (the cassette, its plans), for the cassettes in ``_files``.
        self._plans: dict[int, tuple[Cassette, list[Recorded]]] = {}
        self._lock = threading.Lock()  # servers in several threads may load at once

    def load(self, path: Path, max_bytes: int = DEFAULT_MAX_CASSETTE_BYTES) -> Cassette:
        """The cassette at ``path``, parsed once per version of the file."""
        try:
            info = os.stat(path)
        except OSError:
            return load_cassette(path)  # it raises the CassetteError naming the problem
        signature = (info.st_size, info.st_mtime_ns, info.st_ino, max_bytes)
        key = path.resolve()
        with self._lock:
            cached = self._files.get(key)
        if cached is not None and cached[0] == signature:
            result = cached[1]
        else:
            try:
                result = load_cassette(path, max_bytes=max_bytes)
            except CassetteError as exc:
                result = exc
            with self._lock:
                if cached is not None and not isinstance(cached[1], CassetteError):
                    self._plans.pop(id(cached[1]), None)  # the old version's plans
                self._files[key] = (signature, result)
        if isinstance(result, CassetteError):
            raise result
        return result

    def load_dir(
        self,
        directory: Path,
        *,
        max_bytes: int = DEFAULT_MAX_CASSETTE_BYTES,
        endpoint: str = API_PATH,
        remove_leftovers: bool = False,
    ) -> tuple[list[Cassette], list[CassetteError]]:
        return load_cassette_dir(
            directory,
            lambda path: self.load(path, max_bytes),
            max_bytes=max_bytes,
            endpoint=endpoint,
            remove_leftovers=remove_leftovers,
        )

    def recorded(self, cassette: Cassette) -> list[Recorded]:
        """The replays of ``cassette``'s interactions, made once for a cassette this cache
        holds (each builds its plan once, when first used), else made now."""
        key = id(cassette)
        with self._lock:
            held = self._plans.get(key)
        if held is not None and held[0] is cassette:
            return held[1]
        items = [recorded(cassette, n, i) for n, i in enumerate(cassette.interactions)]
        if cassette.path is not None:
            with self._lock:
                cached = self._files.get(cassette.path.resolve())
                if cached is not None and cached[1] is cassette:
                    self._plans[key] = (cassette, items)
        return items

    def clear(self) -> None:
        with self._lock:
            self._files.clear()
            self._plans.clear()


LOADED_FILES = _LoadedFiles()


class CassetteLibrary:
    """The cassettes of one directory, with the files skipped kept for the admin API.

    ``max_bytes``: larger files are skipped unread. ``endpoint``: the path a cassette must hold
    a POST to (the recording proxy's is its upstream's). Loading removes the temporary files
    that killed writes left behind (:mod:`mockserver.cassettes.files`).
    """

    def __init__(
        self,
        directory: Path | None,
        *,
        max_bytes: int = DEFAULT_MAX_CASSETTE_BYTES,
        endpoint: str = API_PATH,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.endpoint = endpoint
        self.cassettes: list[Cassette] = []
        self.errors: list[CassetteError] = []
        self._index: dict[str, Recorded] = {}
        self._raw_index: dict[tuple[str, str, bytes], Recorded] = {}
        self._recorded: dict[int, Recorded] = {}
        self.duplicates: list[tuple[str, str]] = []
        self.loaded = False
        #: Bumped whenever the cassettes are (re)set: an answer decided earlier may be stale.
        self.version = 0

    def ensure_loaded(self) -> None:
        """Load the cassettes unless done already (keeps ``create_app`` cheap)."""
        if not self.loaded:
            self.reload()

    def reload(self) -> None:
        """(Re)read every cassette from the directory; bad files go to :attr:`errors`."""
        if self.directory is None:
            cassettes: list[Cassette] = []
            errors: list[CassetteError] = []
        else:
            cassettes, errors = LOADED_FILES.load_dir(
                self.directory,
                max_bytes=self.max_bytes,
                endpoint=self.endpoint,
                remove_leftovers=True,
            )
        self.set_cassettes(cassettes, errors)

    def set_cassettes(
        self, cassettes: Sequence[Cassette], errors: Sequence[CassetteError] = ()
    ) -> None:
        index: dict[str, Recorded] = {}
        raw_index: dict[tuple[str, str, bytes], Recorded] = {}
        by_id: dict[int, Recorded] = {}
        duplicates: list[tuple[str, str]] = []
        for cassette in cassettes:
            for item in LOADED_FILES.recorded(cassette):
                interaction = item.interaction
                by_id[id(interaction)] = item
                body = interaction.request_json()
                key = _index_key(interaction.method, interaction.path, body)
                if body is not None and key is not None:
                    winner = index.setdefault(key, item)  # the first recording of a request wins
                    if winner is not item:
                        duplicates.append((item.name, winner.name))
                    raw_key = (
                        interaction.method.upper(),
                        interaction.path,
                        interaction.request_body,
                    )
                    raw_index.setdefault(raw_key, winner)
        self.cassettes, self.errors = list(cassettes), list(errors)
        #: ``(shadowed, replayed)`` names: recordings of a request some earlier one already holds.
        self.duplicates = duplicates
        self._index, self._raw_index, self._recorded = index, raw_index, by_id
        self.loaded = True
        self.version += 1

    def lookup(
        self, method: str, path: str, body: Any, raw: bytes | None = None, *, nearest: bool = True
    ) -> tuple[Recorded | None, MatchResult | None]:
        """The interaction answering the request, else (with ``nearest``) the nearest miss.

        ``raw``, the body's bytes, allows a dict lookup without re-encoding (the provider's
        bytes equal the recorded ones). The dict lookups answer as ``find_match`` would; the
        scan runs only for a miss whose nearest cassette is wanted (a 404's detail).
        """
        path = api_path(path)
        if raw is not None:
            hit = self._raw_index.get((method.upper(), path, raw))
            if hit is not None:
                return hit, None
        key = _index_key(method, path, body) if body is not None else None
        if key is not None:
            hit = self._index.get(key)
            if hit is not None:
                return hit, None
            if not nearest:
                return None, None
        result = find_match(self.cassettes, method, path, body)
        if result.interaction is None:
            return None, result
        return self._recorded.get(id(result.interaction)), result

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory) if self.directory is not None else None,
            "cassettes": [_cassette_json(c, self._recorded) for c in self.cassettes],
            "errors": [str(e) for e in self.errors],
            #: The same, as data: each file not loaded and why.
            "skipped": [
                {"file": str(e.path) if e.path is not None else None, "reason": e.problem}
                for e in self.errors
            ],
        }


def _cassette_json(cassette: Cassette, by_id: dict[int, Recorded]) -> dict[str, Any]:
    interactions = []
    for index, interaction in enumerate(cassette.interactions):
        item = by_id.get(id(interaction))
        interactions.append(
            {
                "name": interaction_name(cassette, index),
                "method": interaction.method,
                "uri": interaction.uri,
                "request": interaction.request_json(),
                "status": interaction.status,
                "content_type": interaction.response_header("Content-Type"),
                "events": len(item.plan.values) if item and item.plan.values is not None else None,
                "bytes": len(interaction.body),
                "chunks": len(interaction.chunks),
                "timed": bool(item and item.has_timing),
            }
        )
    return {
        "name": cassette.name,
        "path": str(cassette.path) if cassette.path is not None else None,
        "description": getattr(cassette, "description", ""),
        "provenance": cassette.provenance,
        "interactions": interactions,
    }
