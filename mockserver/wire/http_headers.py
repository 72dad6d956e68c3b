"""Header names that describe one connection or one transfer, not the answer itself."""

from __future__ import annotations

__all__ = ["HOP_BY_HOP_HEADERS", "TRANSFER_HEADERS"]

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
