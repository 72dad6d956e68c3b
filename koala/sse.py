"""Incremental decoder of the Koala event stream. Pure: bytes in, JSON values out, no I/O.

Lines and fields follow the WHATWG HTML "event stream interpretation" rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
LF, CR and CRLF end a line; one leading UTF-8 BOM is dropped; a line starting with ``:`` is a
comment; ``field: value`` loses one space after the colon; a blank line dispatches the event;
``event``, ``id`` and ``retry`` are understood (and kept on the decoder) but carry no data.

Where this decoder deliberately differs from WHATWG, to stay compatible with the original
provider (which parsed each ``data: `` line on its own as JSON):

- Each ``data`` line of an event that is a JSON value on its own is yielded separately, in order.
  Only when they are not, but their WHATWG join (with ``\\n``) is, the joined value is yielded once.
- An event still open when the stream ends is dispatched, not discarded.
- ``data: [DONE]`` ends the stream; ``data:[DONE]`` (no space: a line the original never read)
  is skipped; data that is empty or only white space is skipped.

Anything else that is not JSON, invalid UTF-8, or a line or event above ``max_event_size``
raises a :class:`StreamError` naming the event number (1-based) and the line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

from .errors import EventTooLargeError, InvalidEncodingError, MalformedEventError, StreamError

__all__ = [
    "BOM",
    "DEFAULT_MAX_EVENT_SIZE",
    "DONE_MARKER",
    "EventStreamDecoder",
]

BOM = b"\xef\xbb\xbf"
DONE_MARKER = "[DONE]"
_DONE_BYTES = DONE_MARKER.encode()
DEFAULT_MAX_EVENT_SIZE = 4 * 1024 * 1024


@dataclass
class EventStreamDecoder:
    """Feed it the body in chunks of any size; it returns the values decoded so far.

    >>> decoder = EventStreamDecoder()
    >>> decoder.feed(b'data: "Hel')
    []
    >>> decoder.feed(b'lo"\\n\\ndata: " world"\\n\\n')
    ['Hello', ' world']
    >>> decoder.close()
    []
    """

    max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    #: True once ``data: [DONE]`` was seen; later input is ignored.
    done: bool = False
    #: The last ``event``, ``id`` and ``retry`` fields seen (WHATWG keeps them; Koala ignores them).
    event_type: str = ""
    last_event_id: str = ""
    retry: int | None = None
    #: How many events have been dispatched (the number of the event being read is this + 1).
    events_dispatched: int = 0
    _pending: bytes = b""
    _skip_lf: bool = False
    _started: bool = False
    _data_lines: list[bytes] = field(default_factory=list)
    #: Indices in ``_data_lines`` of lines written ``data:value`` (no space), for error offsets.
    _unspaced_data_lines: set[int] = field(default_factory=set)
    _data_size: int = 0
    _deferred_error: StreamError | None = None

    def feed(self, chunk: bytes) -> list[Any]:
        """Decode ``chunk`` (any slice of the body) and return the values it completed.

        When ``chunk`` completes good events and then a bad one, the good values are returned
        and the error is raised by the next call, so the values do not depend on the chunking.
        """
        self._raise_deferred_error()
        if self.done or not chunk:
            return []
        if not self._started:
            chunk = self._pending + chunk
            if len(chunk) < len(BOM) and BOM.startswith(chunk):
                self._pending = chunk  # may still become a BOM
                return []
            self._pending = b""
            self._started = True
            if chunk.startswith(BOM):
                chunk = chunk[len(BOM) :]
        if self._skip_lf:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        buffer = self._pending + chunk if self._pending else chunk
        end = max(buffer.rfind(b"\n"), buffer.rfind(b"\r")) + 1
        if end == 0:
            self._pending = buffer
            self._check_size(buffer)
            return []
        self._pending = buffer[end:]
        # A CR that ends the buffer: its LF may start the next chunk.
        self._skip_lf = end == len(buffer) and buffer[-1] == 13
        out: list[Any] = []
        block = buffer[:end]
        try:
            start = 0
            if self._data_lines and block[:1] in (b"\n", b"\r"):
                # The blank line of an event whose data line came in the previous read.
                self._read_lines([b""], out)
                start = 2 if block[:2] == b"\r\n" else 1
            if not self.done:
                start += self._read_simple_events(block[start:] if start else block, out)
                self._read_lines(block[start:].splitlines(), out)
            if self._pending and not self.done:
                self._check_size(self._pending)
        except StreamError as error:
            if not out:
                raise
            self._deferred_error = error
        return out

    def close(self) -> list[Any]:
        """End of stream: decode an unterminated last line and dispatch an open event."""
        self._raise_deferred_error()
        out: list[Any] = []
        if self.done:
            return out
        # Not started: what is pending is shorter than a BOM, so it cannot be one.
        lines = [self._pending] if self._pending else []
        self._pending = b""
        lines.append(b"")  # dispatch whatever event is still open
        self._read_lines(lines, out)
        return out

    def _raise_deferred_error(self) -> None:
        if self._deferred_error is not None:
            raise self._deferred_error

    def _check_size(self, line: bytes) -> None:
        """Raise if ``line``, still open, is already too large, counted as it will be once
        complete (so the verdict does not depend on where the body was cut): a data line by its
        value added to the event's data so far, any other line by its whole length."""
        if line.startswith(b"data:"):
            size = len(line) - (6 if line.startswith(b"data: ") else 5) + self._data_size
        else:
            size = len(line)
        if size > self.max_event_size:
            raise self._too_large(line)

    def _too_large(self, line: bytes) -> EventTooLargeError:
        return EventTooLargeError(
            f"larger than max_event_size={self.max_event_size} bytes",
            self.events_dispatched + 1,
            line,
        )

    def _read_simple_events(self, block: bytes, out: list[Any]) -> int:
        """Fast path: decode the leading runs of one-line events (``data: <JSON>``, blank line).

        Returns how many bytes of ``block`` it consumed: every event before the first one it
        doubts (bad UTF-8, not exactly one JSON value, ``[DONE]``, white space around the value,
        any other field...), which the line-by-line path then reads and reports precisely.
        """
        if self._data_lines or len(block) > self.max_event_size:
            return 0
        position = 0
        while True:
            taken = self._read_string_run(block, position, out)
            taken += self._read_value_run(block, position + taken, out)
            if not taken:
                return position
            position += taken

    def _read_string_run(self, block: bytes, position: int, out: list[Any]) -> int:
        """A run of ``data: "<JSON string>"`` events (LF), decoded as one JSON array."""
        run = _STRING_RUN.match(block, position)
        if run is None:
            return 0
        # The pattern keeps newlines out of the strings, so "\n\ndata: " only stands between events.
        array = b"[" + block[position + 6 : run.end() - 2].replace(b"\n\ndata: ", b",") + b"]"
        try:
            values = json.loads(array)
        except ValueError:  # a bad escape or bad UTF-8: let the other paths name it
            return 0
        self.events_dispatched += len(values)
        out.extend(values)
        return run.end() - position

    def _read_value_run(self, block: bytes, position: int, out: list[Any]) -> int:
        """A run of ``data: <JSON>`` events, each value read alone by json's C scanner."""
        run = _LF_RUN.match(block, position)
        separator = b"\n\n"
        if run is None:
            run = _CRLF_RUN.match(block, position)
            separator = b"\r\n\r\n"
            if run is None:
                return 0
        end = run.end()
        try:
            text = block[position + 6 : end - len(separator)].decode("utf-8")
        except UnicodeDecodeError:
            return 0
        # The patterns keep line ends out of the values, so this only stands between events.
        pieces = text.split(separator.decode() + "data: ")
        values: list[Any] = []
        append = values.append
        try:
            for piece in pieces:
                value, stop = _scan_once(piece, 0)
                if stop != len(piece):  # more than one value (or white space) on the line
                    break
                append(value)
        except (StopIteration, ValueError, RecursionError):  # no value, or not JSON
            pass
        count = len(values)
        if count == len(pieces):
            consumed = end
        else:  # stop before the doubtful event
            consumed = position
            for _ in range(count):
                consumed = block.index(separator, consumed) + len(separator)
        self.events_dispatched += count
        out.extend(values)
        return consumed - position

    def _read_lines(self, lines: list[bytes], out: list[Any]) -> None:
        data_lines = self._data_lines
        for line in lines:
            if not line:
                if data_lines:
                    self._dispatch(out)
                    if self.done:
                        return
                    data_lines = self._data_lines
                continue
            if line.startswith(b"data:"):
                if line.startswith(b"data: "):
                    value = line[6:]
                else:
                    value = line[5:]
                    if value.strip() == _DONE_BYTES:
                        continue  # the original never saw this form, so it must not end the stream
                    self._unspaced_data_lines.add(len(data_lines))
                data_lines.append(value)
                self._data_size += len(value)
                if self._data_size > self.max_event_size:
                    raise self._too_large(line)
            elif len(line) > self.max_event_size:
                raise self._too_large(line)
            elif line[0] != 58:  # not a ":" comment
                self._read_field(line)

    def _read_field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        if name == b"data":  # "data" with no colon: an empty data line
            self._data_lines.append(b"")
            return
        text = self._decode(value, line)
        if name == b"event":
            self.event_type = text
        elif name == b"id" and "\0" not in text:
            self.last_event_id = text
        elif name == b"retry" and text.isascii() and text.isdigit():
            self.retry = int(text)
        # Unknown fields are ignored, as WHATWG says.

    def _decode(self, raw: bytes, line: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEncodingError(
                f"invalid UTF-8 at byte {exc.start + len(line) - len(raw)}",
                self.events_dispatched + 1,
                line,
            ) from None

    def _decode_data_lines(self, lines: list[bytes]) -> list[str]:
        try:
            return [raw.decode("utf-8") for raw in lines]
        except UnicodeDecodeError:
            unspaced, self._unspaced_data_lines = self._unspaced_data_lines, set()
            for index, raw in enumerate(lines):  # find the bad line, for the error's offset
                self._decode(raw, (b"data:" if index in unspaced else b"data: ") + raw)
            raise
        finally:
            if self._unspaced_data_lines:
                self._unspaced_data_lines = set()

    def _dispatch(self, out: list[Any]) -> None:
        lines = self._data_lines
        self._data_lines = []
        self._data_size = 0
        texts = self._decode_data_lines(lines)
        self.events_dispatched += 1
        values: list[Any] = []
        first_error: str | None = None
        for text in texts:
            if not text or text.isspace():
                continue
            if text.strip() == DONE_MARKER:
                out.extend(values)
                self.done = True
                return
            try:
                values.append(_loads(text))
            except (ValueError, RecursionError):  # RecursionError: nested too deeply
                first_error = text
                break
        if first_error is None:
            out.extend(values)
            return
        joined = "\n".join(texts)
        try:
            out.append(json.loads(joined))
        except (ValueError, RecursionError):
            raise MalformedEventError(
                "data is not JSON", self.events_dispatched, "data: " + first_error
            ) from None


# A run of events in the Koala server's own format: `data: "<JSON string>"` and a blank line, LF
# line endings. The pattern checks the strings' shape; json.loads checks escapes and UTF-8.
_STRING_RUN = re.compile(rb'(?:data: "[^"\\\x00-\x1f]*(?:\\[^\r\n][^"\\\x00-\x1f]*)*"\n\n)+')
# Runs of one-line events: `data: ` and a value without line ends, then a blank line, every line
# ended alike (LF, or CRLF). The fast path checks that each value is exactly one JSON value.
_LF_RUN = re.compile(rb"(?:data: [^\r\n]*\n\n)+")
_CRLF_RUN = re.compile(rb"(?:data: [^\r\n]*\r\n\r\n)+")
#: json's scanner: ``(value, end)`` for the JSON value at an index (what ``json.loads`` runs).
_scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads(text: str) -> Any:
    """``json.loads``, with a fast path for the common case: one plain JSON string."""
    if text[0] == '"':
        value, end = scanstring(text, 1, True)
        if end == len(text):
            return value
    return json.loads(text)
