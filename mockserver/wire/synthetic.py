"""The deterministic answer served when no cassette matches. Pure, no I/O.

The reply quotes the request back, so a test can see what the server understood:

>>> request = {"input": "Hi there", "inputHistory": ["a"], "outputHistory": [], "model": "m"}
>>> synthetic_text(request)
'You said "Hi there" (model m, 1 earlier input, 0 earlier outputs).'
>>> synthetic_tokens(request)[:4]
['You', ' said', ' "Hi', ' there"']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["QUOTE_LIMIT", "synthetic_text", "synthetic_tokens", "tokenize"]

#: How many characters of ``input`` the reply quotes.
QUOTE_LIMIT = 200
_TOKEN = re.compile(r"\s*\S+|\s+$")


def synthetic_text(payload: Mapping[str, Any]) -> str:
    """The reply text for a request payload that passed the contract."""
    text = str(payload.get("input", ""))
    if len(text) > QUOTE_LIMIT:
        text = text[:QUOTE_LIMIT] + "…"
    inputs = len(payload.get("inputHistory") or [])
    outputs = len(payload.get("outputHistory") or [])
    model = payload.get("model", "")
    return (
        f'You said "{text}" (model {model}, {inputs} earlier '
        f"input{'s' if inputs != 1 else ''}, {outputs} earlier "
        f"output{'s' if outputs != 1 else ''})."
    )


def tokenize(text: str) -> list[str]:
    """Koala-style tokens: each word with the white space before it (``"Hi", " there"``).

    ``"".join(tokenize(text)) == text`` for every text.
    """
    return _TOKEN.findall(text) or ([text] if text else [])


def synthetic_tokens(payload: Mapping[str, Any]) -> list[str]:
    """The events of the synthetic answer: one token each."""
    return tokenize(synthetic_text(payload))
