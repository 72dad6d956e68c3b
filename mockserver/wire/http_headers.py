"""Header names that describe one connection or one transfer, not the answer itself, and the
checks a header this server sends must pass."""

from __future__ import annotations

import re

__all__ = [
    "HOP_BY_HOP_HEADERS",
    "SERVER_CONTROLLED_HEADERS",
    "TRANSFER_HEADERS",
    "control_character",
    "is_field_name",
]

#: Hop-by-hop headers (RFC 9110, section 7.6.1, and the old ``Proxy-Connection``): they
#: describe one connection and are never forwarded, recorded or replayed.
HOP_BY_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: Headers that describe how one transfer encoded the body (a recording stores it decoded).
TRANSFER_HEADERS = frozenset({"content-length", "content-encoding"})
#: Headers a stub may not set: the server frames the answer itself (``Content-Length``,
#: ``Transfer-Encoding``) and runs the connection (every hop-by-hop header). A stub's own
#: value would contradict the body that is sent (``Transfer-Encoding: chunked`` next to a
#: ``Content-Length``) or the connection handling. ``Content-Encoding`` stays allowed: framing
#: holds, and a body that does not match its coding is a legitimate case to test a client on.
SERVER_CONTROLLED_HEADERS = HOP_BY_HOP_HEADERS | {"content-length"}

#: An HTTP field name (RFC 9110, section 5.1: a token).
_FIELD_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: What a header value (or a status line's reason) cannot hold: a C0 control but tab, or DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def control_character(value: str) -> str | None:
    """The first character of ``value`` that a header value cannot hold (a C0 control other
    than tab, or DEL), or None. The one check for header values this server sends or replays."""
    found = _CONTROL.search(value)
    return None if found is None else found.group()


def is_field_name(name: str) -> bool:
    return _FIELD_NAME.fullmatch(name) is not None
