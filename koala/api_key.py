"""The keyed API's credential: an API key that never shows itself. Pure, no I/O.

The key is read from ``api_key=`` or the ``KOALA_API_KEY`` environment variable and goes out in
one place only, the ``Authorization: Bearer`` header. Its ``repr`` and ``str`` are masked, and
every error about a bad key describes the key (its length, the position of a bad character)
without quoting it, so neither a traceback, a log line nor an error message can leak it.
"""

from __future__ import annotations

import hmac
import os

from .errors import InvalidOptionError

__all__ = ["API_KEY_ENV_VAR", "MASK", "ApiKey", "check_api_key", "resolve_api_key"]

API_KEY_ENV_VAR = "KOALA_API_KEY"
MASK = "***"


class ApiKey:
    """An API key. ``str()`` and ``repr()`` show ``***``; :meth:`bearer` is the header value."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str) -> None:
        self._secret = check_api_key(secret)

    def bearer(self) -> str:
        """The ``Authorization`` header's value."""
        return f"Bearer {self._secret}"

    def matches(self, other: str) -> bool:
        """``other`` is this key (constant time). ``other`` may be anything a client sent: an
        undecodable header arrives with lone surrogates, which must not raise."""
        return hmac.compare_digest(self._secret.encode(), other.encode("utf-8", "surrogateescape"))

    def __repr__(self) -> str:
        return f"ApiKey({MASK})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and self.matches(other._secret)

    def __hash__(self) -> int:
        return hash(self._secret)

    def __reduce__(self) -> tuple[type[ApiKey], tuple[str]]:  # pickling keeps the key
        return (ApiKey, (self._secret,))


def check_api_key(value: object, source: str = "api_key") -> str:
    """``value`` when it can go into a Bearer header, else :class:`InvalidOptionError`.

    The error never quotes the value: it names the problem and where the key came from.
    """
    if not isinstance(value, str):
        raise InvalidOptionError(f"{source} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidOptionError(f"{source} is empty")
    for position, character in enumerate(value, 1):
        if not "!" <= character <= "~":
            raise InvalidOptionError(
                f"{source} may hold only visible ASCII characters (no spaces, no line breaks); "
                f"character {position} of {len(value)} is not"
            )
    return value


def resolve_api_key(api_key: str | ApiKey | None) -> ApiKey | None:
    """The key to send: ``api_key=``, else ``$KOALA_API_KEY``, else None (the browser shape)."""
    if isinstance(api_key, ApiKey):
        return api_key
    if api_key is not None:
        return ApiKey(check_api_key(api_key))
    from_env = os.environ.get(API_KEY_ENV_VAR)
    if not from_env:
        return None
    return ApiKey(check_api_key(from_env, f"${API_KEY_ENV_VAR}"))
