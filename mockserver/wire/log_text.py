"""Client-controlled text made safe for a one-line text log. Pure.

A request path may hold ``%0A`` (decoded to a newline), a header value a control character, a
fault parameter an ANSI escape: written raw, any of them can split a log line or forge a new one.
:func:`escape` writes control characters (C0, DEL, C1, the Unicode line and paragraph
separators), the bidirectional controls (U+202E and its kin reorder what a terminal shows, so a
line can read other than it is) and the backslash as ``\\xNN`` / ``\\uNNNN`` escapes; everything
else is kept.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

__all__ = ["escape", "timestamp"]

_UNSAFE = re.compile(
    "[\\x00-\\x1f\\x7f-\\x9f\\\\\\u2028\\u2029\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]"
)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with nothing that could end or fake a log line (fast when there is nothing)."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escaped, text)


def timestamp(seconds: float | None = None) -> str:
    """``seconds`` (default: now) in ISO 8601 UTC: ``2026-12-01T21:38:26.123Z``."""
    moment = datetime.fromtimestamp(time.time() if seconds is None else seconds, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
