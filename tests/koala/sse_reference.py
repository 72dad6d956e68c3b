"""A reference model of the decoder, for differential tests: the documented rules of
:mod:`koala.sse`, applied to the whole body at once, line by line, with nothing incremental and no
fast path. Slow and obvious on purpose: it is the known answer the real decoder is held to.

Its result for a body: the values a client sees, then the error (class name and event number)
that ends the stream, or None.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

BOM = b"\xef\xbb\xbf"
_LINE = re.compile(rb"\r\n|\n|\r")


@dataclass
class Outcome:
    values: list[Any] = field(default_factory=list)
    error: tuple[str, int] | None = None  # (class name, event number)


class _Stop(Exception):
    def __init__(self, kind: str) -> None:
        self.kind = kind


def reference_decode(body: bytes, max_event_size: int) -> Outcome:
    outcome = Outcome()
    if body.startswith(BOM):
        body = body[len(BOM) :]
    lines = _LINE.split(body)
    if lines and lines[-1] == b"":
        lines.pop()  # the body ended with a line end
    lines.append(b"")  # the end of the stream dispatches an open event
    state = _State(outcome, max_event_size)
    try:
        for line in lines:
            if state.read(line):
                break
    except _Stop as stop:
        outcome.error = (
            stop.kind,
            state.dispatched + (0 if stop.kind == "MalformedEventError" else 1),
        )
    return outcome


@dataclass
class _State:
    outcome: Outcome
    max_event_size: int
    dispatched: int = 0
    data: list[bytes] = field(default_factory=list)

    def read(self, line: bytes) -> bool:
        """Read one line; True once the stream is done."""
        if not line:
            return bool(self.data) and self.dispatch()
        if len(line) > self.max_event_size and not line.startswith(b"data:"):
            raise _Stop("EventTooLargeError")
        if line.startswith(b":"):
            return False
        if line.startswith(b"data:"):
            value = line[6:] if line.startswith(b"data: ") else line[5:]
            if not line.startswith(b"data: ") and value.strip() == b"[DONE]":
                return False
            self.data.append(value)
            if sum(map(len, self.data)) > self.max_event_size:
                raise _Stop("EventTooLargeError")
            return False
        name, _, value = line.partition(b":")
        if name == b"data":
            self.data.append(b"")
            return False
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            raise _Stop("InvalidEncodingError") from None
        return False

    def dispatch(self) -> bool:
        try:
            texts = [raw.decode("utf-8") for raw in self.data]
        except UnicodeDecodeError:
            raise _Stop("InvalidEncodingError") from None
        self.data = []
        self.dispatched += 1
        values = []
        for text in texts:
            if not text.strip():
                continue
            if text.strip() == "[DONE]":
                self.outcome.values += values
                return True
            try:
                values.append(json.loads(text))
            except (ValueError, RecursionError):
                try:
                    self.outcome.values.append(json.loads("\n".join(texts)))
                except (ValueError, RecursionError):
                    raise _Stop("MalformedEventError") from None
                return False
        self.outcome.values += values
        return False
