"""Secret scrubbing for recorded cassettes (on by default; ``--no-scrub`` turns it off).

The rules are :mod:`koala.testing`'s, the same ones its vcrpy hooks apply, so a cassette recorded by
``koala-mock record``, by the recording proxy or by vcrpy is scrubbed alike:

- ``Authorization`` / ``Proxy-Authorization``: the credential becomes ``SCRUBBED`` (scheme kept);
- ``Cookie`` and ``Set-Cookie``: every cookie value (``cf_clearance`` included) is ``SCRUBBED``;
- any header or query parameter whose name looks like a token, key, secret, session, auth,
  password or csrf value: its value becomes ``SCRUBBED``; user info in the URL is dropped;
- ``Visitor-ID``: a fixed placeholder of the same shape, so the request still passes the contract.

Bodies are kept as they are: the request body is what replay matches on, and the response body is
the recorded truth. Nothing matching is done on headers, so scrubbing never breaks replay.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import TextIO

from koala.testing import (
    SCRUBBED,
    VISITOR_ID_PLACEHOLDER,
    is_sensitive_name,
    scrub_headers,
    scrub_uri,
)
from mockserver.cassettes.cassette import Cassette, Interaction

__all__ = [
    "NO_SCRUB_WARNING",
    "SCRUBBED",
    "VISITOR_ID_PLACEHOLDER",
    "is_sensitive_name",
    "scrub_cassette",
    "scrub_headers",
    "scrub_interaction",
    "scrub_uri",
    "warn_no_scrub",
]

NO_SCRUB_WARNING = (
    "warning: scrubbing is OFF (--no-scrub): cookies, Authorization, API keys, session tokens and "
    "the Visitor-ID will be written to the cassette as they are. Do not commit or share it."
)


def scrub_interaction(interaction: Interaction) -> Interaction:
    """A copy of ``interaction`` with secrets replaced in the URI and in both sets of headers."""
    return dataclasses.replace(
        interaction,
        uri=scrub_uri(interaction.uri),
        request_headers=scrub_headers(interaction.request_headers),
        response_headers=scrub_headers(interaction.response_headers),
    )


def scrub_cassette(cassette: Cassette) -> Cassette:
    """A copy of ``cassette`` with every interaction scrubbed."""
    return dataclasses.replace(
        cassette, interactions=[scrub_interaction(i) for i in cassette.interactions]
    )


def warn_no_scrub(stream: TextIO | None = None) -> None:
    print(NO_SCRUB_WARNING, file=stream or sys.stderr)
