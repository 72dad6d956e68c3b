"""Typed errors of the Koala provider.

Every error is a :class:`KoalaError`, and its message names what went wrong: the message index
and field, the HTTP status and the start of the body, or the event number and the offending line.
"""

from __future__ import annotations

#: The error types (``koala`` exports them too); ``excerpt`` is a helper of this package.
__all__ = [
    "AuthenticationError",
    "BotDetectedError",
    "CloudflareError",
    "EventTooLargeError",
    "InvalidEncodingError",
    "InvalidMessagesError",
    "InvalidOptionError",
    "KoalaConnectionError",
    "KoalaError",
    "KoalaTimeoutError",
    "MalformedEventError",
    "MissingDependencyError",
    "ModelNotSupportedError",
    "RateLimitError",
    "ResponseStatusError",
    "StreamError",
    "UnexpectedContentTypeError",
]

EXCERPT_CHARS = 200


def excerpt(text: str | bytes, limit: int = EXCERPT_CHARS) -> str:
    """The first ``limit`` characters of ``text``, on one line, marked when cut."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[:limit] + "…"


class KoalaError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidMessagesError(KoalaError, ValueError):
    """The ``messages`` argument cannot be turned into a request (raised before any I/O)."""

    def __init__(self, problem: str, index: int | None = None) -> None:
        self.index = index
        self.problem = problem
        where = "messages" if index is None else f"messages[{index}]"
        super().__init__(f"{where}: {problem}")


class ModelNotSupportedError(KoalaError, ValueError):
    """The model cannot be sent: not a string (Koala), or not listed (a stricter provider)."""

    def __init__(self, model: object, known: list[str], problem: str | None = None) -> None:
        self.model = model
        if problem is None:
            problem = f"model {model!r} is not supported"
        super().__init__(f"{problem}; known models: {', '.join(known)}")


class InvalidOptionError(KoalaError, ValueError):
    """Keyword arguments that cannot be used together or have a bad value."""


class MissingDependencyError(KoalaError, ImportError):
    """An optional dependency is needed for what was asked (e.g. a SOCKS proxy)."""


class ResponseStatusError(KoalaError):
    """The API answered with a non-2xx status.

    ``message`` is the ``message`` (or ``error``) string of a JSON error body, else None; when
    present it is part of the error's text.
    """

    def __init__(
        self, status: int, body: str, reason: str | None = None, message: str | None = None
    ) -> None:
        self.status = status
        self.body_excerpt = excerpt(body)
        self.message = message
        if reason is None:
            detail = excerpt(message) if message is not None else self.body_excerpt
        elif message is not None:
            detail = f"{reason}: {excerpt(message)}"
        else:
            detail = reason
        super().__init__(f"Response {status}: {detail}")


class RateLimitError(ResponseStatusError):
    """429 or 402: too many requests (or payment required). ``retry_after`` is in seconds."""

    def __init__(
        self,
        status: int,
        body: str,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        reason = "Rate limit reached"
        if retry_after is not None:
            reason += f" (Retry-After: {retry_after:g} s)"
        super().__init__(status, body, reason, message)


class AuthenticationError(ResponseStatusError):
    """401: the keyed API refused the API key (missing, wrong or expired)."""


class CloudflareError(ResponseStatusError):
    """A Cloudflare challenge page (403 or 503) stood between the client and the API."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(status, body, "Cloudflare detected")


class BotDetectedError(ResponseStatusError):
    """The site refused the client as a bot (403 "Unable to load site")."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(status, body, "Bot are detected")


class UnexpectedContentTypeError(KoalaError):
    """A 2xx answer that is neither an event stream nor the JSON ``{"output": ...}`` reply.

    ``expected`` is what the client asked for: ``text/event-stream`` by default,
    ``application/json`` for ``json_reply=True``, the reply's shape for a JSON body that is whole
    but not that reply.
    """

    def __init__(
        self, content_type: str, body: str | bytes, expected: str = "text/event-stream"
    ) -> None:
        self.content_type = content_type
        self.expected = expected
        self.body_excerpt = excerpt(body)
        super().__init__(
            f"expected {expected}, got {content_type or 'no content type'!s}; "
            f"body starts: {self.body_excerpt!r}"
        )


class StreamError(KoalaError):
    """The event stream could not be decoded. Names the event number and the offending line."""

    def __init__(self, problem: str, event_number: int, line: str | bytes) -> None:
        self.problem = problem
        self.event_number = event_number
        self.line_excerpt = excerpt(line)
        super().__init__(f"event {event_number}: {problem}: {self.line_excerpt!r}")


class MalformedEventError(StreamError, ValueError):
    """An event's data is not JSON (and not the ``[DONE]`` marker)."""


class InvalidEncodingError(StreamError, ValueError):
    """A line of the stream is not valid UTF-8."""


class EventTooLargeError(StreamError):
    """One line or event is larger than the decoder's ``max_event_size``."""


class KoalaTimeoutError(KoalaError, TimeoutError):
    """The request or the stream took longer than the configured timeout."""


class KoalaConnectionError(KoalaError, ConnectionError):
    """The connection failed or broke before the answer was complete."""
