"""The server-wide bound on bytes of answers being generated at once (``huge_event``, say).

A generated answer is made while it is sent (:mod:`mockserver.wire.generated`), so it costs one
chunk of memory, not its size; but any client may ask for a 64 MiB one, as often as it likes.
The budget caps the bytes of the generated answers in flight together: an answer that would
take it past :attr:`GenerationBudget.limit` is refused with a JSON 503 naming the bound, and
what an answer took is given back when its stream ends, however it ends.
"""

from __future__ import annotations

from aiohttp import web

from mockserver.server.http_errors import json_error
from mockserver.server.journal import JournalEntry

__all__ = ["RETRY_AFTER_SECONDS", "GenerationBudget"]

#: The Retry-After of a refusal: a generated answer takes seconds, not minutes, to send.
RETRY_AFTER_SECONDS = 1


class GenerationBudget:
    """Bytes of generated answers being sent, at most ``limit`` together.

    >>> budget = GenerationBudget(100)
    >>> budget.reserve(60), budget.reserve(60), budget.in_use
    (True, False, 60)
    >>> budget.release(60); budget.in_use
    0
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def reserve(self, size: int) -> bool:
        """Take ``size`` bytes of the budget; False (nothing taken) when they do not fit."""
        if self.in_use + size > self.limit:
            return False
        self.in_use += size
        return True

    def release(self, size: int) -> None:
        self.in_use = max(0, self.in_use - size)

    def refusal(self, entry: JournalEntry, size: int) -> web.Response:
        """The JSON 503 for an answer of ``size`` bytes that does not fit; the journal entry
        says the server's error answered (the fault it was for stays named)."""
        served = entry.served_by
        entry.served_by = {**served, "source": "error"} if served else {"source": "error"}
        bound = f"the server's bound on bytes generated at once, {self.limit:,} bytes"
        flag = "(MockConfig.max_generated_bytes, koala-mock serve --max-generated-bytes)"
        if size > self.limit:  # it never fits: a retry cannot help, so no Retry-After
            error = f"this answer would generate {size:,} bytes, more than {bound} {flag}"
            headers = None
        else:
            error = (
                f"this answer would generate {size:,} bytes while {self.in_use:,} are being "
                f"generated for other requests: past {bound} {flag}; retry when they are sent"
            )
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return json_error(503, error, headers, bound=self.limit, in_use=self.in_use, needed=size)

    def to_json(self) -> dict[str, int]:
        return {"limit": self.limit, "in_use": self.in_use}
