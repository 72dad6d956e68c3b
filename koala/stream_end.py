"""Whether a close-delimited answer (an event stream or a JSON reply) ended or was cut off.

An answer with neither ``Content-Length`` nor chunked encoding ends when the server closes the
connection (:func:`koala.response.body_ends_at_close`), so its framing cannot show a cut. aiohttp
cannot either: for such a body (aiohttp 3.14) a TCP reset ends the payload exactly as a clean
close does, with no error; only the connection's protocol keeps the reset, in its ``closed``
future. So two checks stand in (docs/PROTOCOL.md, "The end of an event stream"):

- the connection closed cleanly: a reset is a cut wherever it falls;
- the body ended where an answer can end: an event stream on an event boundary
  (:attr:`koala.sse.EventStreamDecoder.at_event_boundary`), a JSON reply after its last bracket
  (:func:`koala.response.json_text_unfinished`). A clean close anywhere else is a cut too.
"""

from __future__ import annotations

import asyncio

from aiohttp import ClientResponse

from .response import json_text_unfinished
from .sse import EventStreamDecoder

__all__ = ["CloseWatch"]


class CloseWatch:
    """Watches the connection of a close-delimited answer, from before its body is read."""

    def __init__(self, response: ClientResponse) -> None:
        connection = response.connection
        protocol = connection.protocol if connection is not None else None
        # None when the connection is already gone: then only the body can tell.
        self._closed: asyncio.Future[None] | None = (
            protocol.closed if protocol is not None else None
        )
        if self._closed is not None:
            # Read the outcome in any case, so an answer left unread logs no "never retrieved".
            self._closed.add_done_callback(_outcome)

    def cut(self, decoder: EventStreamDecoder) -> str | None:
        """Why the event stream, now at its end, was cut off; None when it ended properly."""
        reset = self._reset()
        if reset is not None:
            return reset
        if not decoder.at_event_boundary:
            return (
                "the connection closed in the middle of an event (a body that ends at the "
                "connection's close must end with a blank line after its last event)"
            )
        return None

    def json_cut(self, body: bytes) -> str | None:
        """Why the JSON reply ``body``, which did not parse, was cut off; None when it was not
        (it is whole, and malformed)."""
        reset = self._reset()
        if reset is not None:
            return reset
        if json_text_unfinished(body):
            return (
                "the connection closed before the JSON text ended (a reply that ends at the "
                "connection's close must close every string, object and array it opens)"
            )
        return None

    def _reset(self) -> str | None:
        closed = self._closed
        if closed is None or not closed.done() or closed.cancelled():
            return None
        error = closed.exception()
        return None if error is None else f"the connection was reset ({error})"


def _outcome(closed: asyncio.Future[None]) -> None:
    if not closed.cancelled():
        closed.exception()
