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
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any, ClassVar

from .errors import EventTooLargeError, InvalidEncodingError, MalformedEventError, StreamError

__all__ = ["BOM", "DEFAULT_MAX_EVENT_SIZE", "DONE_MARKER", "EventStreamDecoder"]

BOM = b"\xef\xbb\xbf"
DONE_MARKER = "[DONE]"
_DONE_BYTES = DONE_MARKER.encode()
DEFAULT_MAX_EVENT_SIZE = 4 * 1024 * 1024


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

    #: Lines at least this long skip the fast path's patterns (see ``_read_simple_events``).
    long_line: ClassVar[int] = 65536

    # A plain class, not a dataclass: the provider and the mock server import it at start, and
    # a dataclass of these fields costs several million instructions to define.
    __slots__ = (
        "_data_lines",
        "_data_size",
        "_deferred_error",
        "_pending",
        "_pending_size",
        "_skip_lf",
        "_started",
        "_unspaced_data_lines",
        "done",
        "event_type",
        "events_dispatched",
        "last_event_id",
        "max_event_size",
        "retry",
    )

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self.max_event_size = max_event_size
        #: True once ``data: [DONE]`` was seen; later input is ignored.
        self.done = False
        #: The last ``event``, ``id`` and ``retry`` fields seen (WHATWG keeps them; Koala
        #: ignores them).
        self.event_type = ""
        self.last_event_id = ""
        self.retry: int | None = None
        #: How many events have been dispatched (the number of the event being read is this
        #: + 1).
        self.events_dispatched = 0
        #: The open line (after the last line end fed), in the pieces it came in: joined only
        #: once its end arrives, so a long line costs time linear in its length.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._skip_lf = False
        self._started = False
        #: The open event's data values (a long one as a view of its line: one copy less).
        self._data_lines: list[bytes | memoryview] = []
        #: Indices in ``_data_lines`` of lines written ``data:value`` (no space), for error
        #: offsets.
        self._unspaced_data_lines: set[int] = set()
        self._data_size = 0
        self._deferred_error: StreamError | None = None

    def feed(self, chunk: bytes) -> list[Any]:
        """Decode ``chunk`` (any slice of the body) and return the values it completed.

        When ``chunk`` completes good events and then a bad one, the good values are returned
        and the error is raised by the next call, so the values do not depend on the chunking.
        """
        self._raise_deferred_error()
        if self.done or not chunk:
            return []
        if not self._started:
            chunk = self._take_pending() + chunk
            if len(chunk) < len(BOM) and BOM.startswith(chunk):
                self._keep_pending(chunk)  # may still become a BOM
                return []
            self._started = True
            if chunk.startswith(BOM):
                chunk = chunk[len(BOM) :]
        if self._skip_lf:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        # The open line holds no line end, so the last line end fed so far is in this chunk.
        end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) + 1
        if end == 0:
            self._keep_pending(chunk)
            self._check_pending_size()
            return []
        block = self._take_pending(memoryview(chunk)[:end]) if self._pending else chunk[:end]
        self._keep_pending(chunk[end:])
        # A CR that ends the chunk: its LF may start the next chunk.
        self._skip_lf = end == len(chunk) and chunk[-1] == 13
        out: list[Any] = []
        try:
            if self._data_lines and block[:1] in (b"\n", b"\r"):
                # The blank line of an event whose data line came in the previous read.
                self._read_lines([b""], out)
                block = block[2 if block[:2] == b"\r\n" else 1 :]
            if not self.done:
                start = self._read_simple_events(block, out)
                lines = block[start:].splitlines()
                del block  # a long line: one copy of it less while its event is decoded
                self._read_lines(lines, out)
            if self._pending and not self.done:
                self._check_pending_size()
        except StreamError as error:
            if not out:
                raise
            self._deferred_error = error
        return out

    @property
    def at_event_boundary(self) -> bool:
        """True when the body fed so far may end here without cutting anything: ``[DONE]`` was
        seen, or no line and no event is open (the last line ended, and a blank line closed the
        last event's data). A body whose end is only the connection's close needs this to tell
        its end from a cut (docs/PROTOCOL.md, "The end of an event stream").

        >>> decoder = EventStreamDecoder()
        >>> decoder.feed(b'data: "a"\\n\\ndata: "b"\\n'), decoder.at_event_boundary
        (['a'], False)
        >>> decoder.feed(b"\\n"), decoder.at_event_boundary
        (['b'], True)
        """
        return self.done or not (self._pending or self._data_lines)

    def close(self) -> list[Any]:
        """End of stream: decode an unterminated last line and dispatch an open event."""
        self._raise_deferred_error()
        out: list[Any] = []
        if self.done:
            return out
        # Not started: what is pending is shorter than a BOM, so it cannot be one.
        lines = [self._take_pending()] if self._pending else []
        lines.append(b"")  # dispatch whatever event is still open
        self._read_lines(lines, out)
        return out

    def _raise_deferred_error(self) -> None:
        if self._deferred_error is not None:
            raise self._deferred_error

    def _keep_pending(self, piece: bytes) -> None:
        if piece:
            self._pending.append(piece)
            self._pending_size += len(piece)

    def _take_pending(self, tail: bytes | memoryview = b"") -> bytes:
        """The open line joined (with ``tail``, the rest of it), and no line open any more."""
        line = b"".join([*self._pending, tail])
        self._pending = []
        self._pending_size = 0
        return line

    def _check_pending_size(self) -> None:
        """Raise if the open line is already too large, counted as it will be once complete (so
        the verdict does not depend on where the body was cut): a data line by its value added
        to the event's data so far, any other line by its whole length."""
        head = b""
        for piece in self._pending:  # the line's first bytes, enough to see a "data: " prefix
            head += piece[:6]
            if len(head) >= 6:
                break
        size = self._pending_size
        if head.startswith(b"data:"):
            size += self._data_size - (6 if head.startswith(b"data: ") else 5)
        if size > self.max_event_size:
            line = self._take_pending()
            self._keep_pending(line)
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
            if self._line_is_long(block, position):
                taken = self._read_long_event(block, position, out)
            else:
                # The patterns cost far more per byte than the scans below: they read at most
                # one window, so a long line later in the block is left to _read_long_event.
                window = position + self.long_line
                taken = self._read_string_run(block, position, window, out)
                taken += self._read_value_run(block, position + taken, window, out)
            if not taken:
                return position
            position += taken

    def _line_is_long(self, block: bytes, position: int) -> bool:
        """True when the line at ``position`` has no line end in its first ``long_line`` bytes."""
        window = position + self.long_line
        return block.find(b"\n", position, window) < 0 and block.find(b"\r", position, window) < 0

    def _read_long_event(self, block: bytes, position: int, out: list[Any]) -> int:
        """One event ``data: <JSON>`` and a blank line (LF or CRLF) found by memchr-fast scans,
        with the same checks as :meth:`_read_value_run` (``[DONE]``, white space, two values...
        are left to the line-by-line path). Returns the bytes consumed, 0 for a doubtful event."""
        if not block.startswith(b"data: ", position):
            return 0
        lf = block.find(b"\n", position)
        line_end = block.find(b"\r", position, lf if lf >= 0 else len(block))
        if line_end < 0:
            line_end, separator = lf, b"\n\n"
        else:
            separator = b"\r\n\r\n"
        if line_end < 0 or not block.startswith(separator, line_end):
            return 0
        try:
            text = str(memoryview(block)[position + 6 : line_end], "utf-8")
            value, stop = _scan_once(text, 0)
        except (StopIteration, ValueError, RecursionError):  # bad UTF-8, no value, not JSON
            return 0
        if stop != len(text):  # more than one value (or white space) on the line
            return 0
        self.events_dispatched += 1
        out.append(value)
        return line_end + len(separator) - position

    def _read_string_run(self, block: bytes, position: int, window: int, out: list[Any]) -> int:
        """A run of ``data: "<JSON string>"`` events (LF), decoded as one JSON array."""
        run = _STRING_RUN.match(block, position, window)
        if run is None:
            return 0
        try:  # strict UTF-8, as the other paths decode (json.loads(bytes) passes surrogates)
            text = str(memoryview(block)[position + 6 : run.end() - 2], "utf-8")
        except UnicodeDecodeError:  # let the other paths name it
            return 0
        # The pattern keeps newlines out of the strings, so "\n\ndata: " only stands between events.
        array = f"[{text.replace(chr(10) * 2 + 'data: ', ',')}]"
        del text  # a long line: one copy of it less at the peak
        try:
            values = json.loads(array)
        except ValueError:  # a bad escape: let the other paths name it
            return 0
        self.events_dispatched += len(values)
        out.extend(values)
        return run.end() - position

    def _read_value_run(self, block: bytes, position: int, window: int, out: list[Any]) -> int:
        """A run of ``data: <JSON>`` events, each value read alone by json's C scanner."""
        run = _LF_RUN.match(block, position, window)
        separator = b"\n\n"
        if run is None:
            run = _CRLF_RUN.match(block, position, window)
            separator = b"\r\n\r\n"
            if run is None:
                return 0
        end = run.end()
        try:
            text = str(memoryview(block)[position + 6 : end - len(separator)], "utf-8")
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
                value: bytes | memoryview
                if line.startswith(b"data: "):
                    value = line[6:] if len(line) < self.long_line else memoryview(line)[6:]
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

    def _decode(self, raw: bytes | memoryview, line: bytes) -> str:
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEncodingError(
                f"invalid UTF-8 at byte {exc.start + len(line) - len(raw)}",
                self.events_dispatched + 1,
                line,
            ) from None

    def _decode_data_lines(self, lines: list[bytes | memoryview]) -> list[str]:
        try:
            return [str(raw, "utf-8") for raw in lines]
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
