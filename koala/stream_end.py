"""Whether a close-delimited event stream ended or was cut off.

An answer with neither ``Content-Length`` nor chunked encoding ends when the server closes the
connection (:func:`koala.response.body_ends_at_close`), so its framing cannot show a cut. aiohttp
cannot either: for such a body (aiohttp 3.14) a TCP reset ends the payload exactly as a clean
close does, with no error; only the connection's protocol keeps the reset, in its ``closed``
future. So two checks stand in (docs/PROTOCOL.md, "The end of an event stream"):

- the connection closed cleanly: a reset is a cut wherever it falls;
- the stream ended on an event boundary (:attr:`koala.sse.EventStreamDecoder.at_event_boundary`):
  a clean close in the middle of a line or of an event is a cut too.
"""

from __future__ import annotations

import asyncio

from aiohttp import ClientResponse

from .sse import EventStreamDecoder

__all__ = ["CloseWatch"]


class CloseWatch:
    """Watches the connection of a close-delimited answer, from before its body is read."""

    def __init__(self, response: ClientResponse) -> None:
        connection = response.connection
        protocol = connection.protocol if connection is not None else None
        # None when the connection is already gone: then only the stream can tell.
        self._closed: asyncio.Future[None] | None = None
        if protocol is not None:
            self._closed = protocol.closed
        if self._closed is not None:
            # Read the outcome in any case, so an answer left unread logs no "never retrieved".
            self._closed.add_done_callback(_outcome)

    def cut(self, decoder: EventStreamDecoder) -> str | None:
        """Why the body, now at its end, was cut off; None when it ended properly."""
        reset = self._reset()
        if reset is not None:
            return f"the connection was reset ({reset})"
        if not decoder.at_event_boundary:
            return (
                "the connection closed in the middle of an event (a body that ends at the "
                "connection's close must end with a blank line after its last event)"
            )
        return None

    def _reset(self) -> BaseException | None:
        closed = self._closed
        if closed is None or not closed.done() or closed.cancelled():
            return None
        return closed.exception()


def _outcome(closed: asyncio.Future[None]) -> None:
    if not closed.cancelled():
        closed.exception()
