"""What the provider sends: the browser headers and the JSON payload. Pure, no I/O.

The payload reproduces the original provider's history mapping byte for byte (see PROTOCOL.md),
quirks included, so that a request built here matches a cassette recorded with the original.
Where the original crashed or corrupted data, this module raises :class:`InvalidMessagesError`
or normalises instead; each decision is documented on the function that makes it.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InvalidMessagesError
from .response import EVENT_STREAM, JSON

__all__ = [
    "API_ENDPOINT",
    "API_PATH",
    "DEFAULT_MODEL",
    "OBSERVED_MODELS",
    "SITE",
    "USER_AGENT",
    "VISITOR_ID_ALPHABET",
    "VISITOR_ID_LENGTH",
    "Message",
    "build_headers",
    "build_keyed_headers",
    "build_keyed_payload",
    "build_payload",
    "content_text",
    "encode_payload",
    "is_visitor_id",
    "new_visitor_id",
]

DEFAULT_MODEL = "gpt-4o-mini"
SITE = "https://koala.sh"
#: The chat API's path (the mock server also takes it without the final slash).
API_PATH = "/api/gpt/"
API_ENDPOINT = SITE + API_PATH
#: Models seen in public clients of this endpoint (PROTOCOL.md); the service publishes no list,
#: so this is what was observed, not what the service accepts. Any other name is sent as given.
OBSERVED_MODELS = ("gpt-4o-mini", "gpt-3.5-turbo", "gpt-4.1-mini", "gpt-4.1", "gpt-5.1")
USER_AGENT = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:122.0) Gecko/20100101 Firefox/122.0"
VISITOR_ID_ALPHABET = string.ascii_lowercase + string.digits
VISITOR_ID_LENGTH = 20

Message = Mapping[str, Any]


def new_visitor_id() -> str:
    """A fresh Visitor-ID: 20 random characters from ``a-z0-9``, as the original makes."""
    return "".join(secrets.choice(VISITOR_ID_ALPHABET) for _ in range(VISITOR_ID_LENGTH))


def is_visitor_id(value: str) -> bool:
    return len(value) == VISITOR_ID_LENGTH and all(c in VISITOR_ID_ALPHABET for c in value)


def build_headers(
    visitor_id: str | None = None, real_time_data: bool = False, json_reply: bool = False
) -> dict[str, str]:
    """The 13 headers the provider sets, in the original's wire order (the browser shape).

    aiohttp adds Host before them and Content-Length/Content-Type after them. ``json_reply``
    asks for the JSON reply instead of the event stream (``Accept: application/json``).
    """
    if visitor_id is None:
        visitor_id = new_visitor_id()
    return {
        "User-Agent": USER_AGENT,
        "Accept": JSON if json_reply else EVENT_STREAM,
        "Accept-Language": "de,en-US;q=0.7,en;q=0.3",
        "Accept-Encoding": "gzip, deflate, br",
        "Referer": f"{SITE}/chat",
        "Flag-Real-Time-Data": "true" if real_time_data else "false",
        "Visitor-ID": visitor_id,
        "Origin": SITE,
        "Alt-Used": "koala.sh",
        "Sec-Fetch-Dest": "empty",
        "Sec-Fetch-Mode": "cors",
        "Sec-Fetch-Site": "same-origin",
        "TE": "trailers",
    }


def build_keyed_headers(bearer: str, json_reply: bool = False) -> dict[str, str]:
    """The headers of the keyed shape: the credential and what answer is wanted, nothing else.

    ``bearer`` is the whole ``Authorization`` value (:meth:`koala.api_key.ApiKey.bearer`).
    aiohttp adds Host, User-Agent, Content-Length and Content-Type.
    """
    return {
        "Authorization": bearer,
        "Accept": JSON if json_reply else EVENT_STREAM,
    }


def build_keyed_payload(
    model: str | None, messages: Sequence[Message], real_time_data: bool = False
) -> dict[str, Any]:
    """The keyed shape's body: :func:`build_payload`'s fields, then ``realTimeData``.

    The keyed API takes the flag in the body (the browser shape sends it as a header).
    """
    return {**build_payload(model, messages), "realTimeData": real_time_data}


def content_text(content: Any, index: int) -> str:
    """A message's content as text.

    - ``str``: as is.
    - a list of parts (OpenAI style): the ``text`` of every ``{"type": "text"}`` part (or plain
      string part) joined with no separator; other parts (images, audio) are skipped, since the API
      takes text only. The original sent the list as JSON, or crashed with a system message.
    - ``None`` or anything else: :class:`InvalidMessagesError` (the original sent ``null``
      or crashed).
    """
    if isinstance(content, str):
        return content
    if content is None:
        raise InvalidMessagesError("'content' is None; expected a string or a list of parts", index)
    if isinstance(content, list):
        texts: list[str] = []
        for part_number, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping):
                if part.get("type", "text") != "text":
                    continue
                text = part.get("text")
                if not isinstance(text, str):
                    raise InvalidMessagesError(
                        f"content part {part_number} is a text part without a string 'text'", index
                    )
                texts.append(text)
            else:
                raise InvalidMessagesError(
                    f"content part {part_number} has type {type(part).__name__}; "
                    "expected a string or a mapping",
                    index,
                )
        return "".join(texts)
    raise InvalidMessagesError(
        f"'content' has type {type(content).__name__}; expected a string or a list of parts", index
    )


def _checked_messages(messages: Any) -> list[tuple[str, str]]:
    """(role, text) pairs, or :class:`InvalidMessagesError` naming the first bad message."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidMessagesError(f"expected a list of messages, got {type(messages).__name__}")
    if not messages:
        raise InvalidMessagesError("is empty; at least one message is needed")
    pairs = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidMessagesError(
                f"has type {type(message).__name__}; expected a mapping with 'role' and 'content'",
                index,
            )
        if "role" not in message:
            raise InvalidMessagesError("has no 'role'", index)
        role = message["role"]
        if not isinstance(role, str):
            raise InvalidMessagesError(
                f"'role' has type {type(role).__name__}; expected a string", index
            )
        if "content" not in message:
            raise InvalidMessagesError("has no 'content'", index)
        pairs.append((role, content_text(message["content"], index)))
    return pairs


def build_payload(model: str | None, messages: Sequence[Message]) -> dict[str, Any]:
    """The request body as a dict, mapped from the conversation as the original maps it.

    - ``input``: the text of the *last* message whatever its role, then, if there are system
      messages, a space and all system texts joined by spaces (so a trailing system message
      appears twice, as in the original).
    - ``inputHistory``: user texts before the last message.
    - ``outputHistory``: all assistant texts, the last one included.
    - ``model``: ``model``, or ``gpt-4o-mini`` when it is empty or None.
    Roles other than user, assistant and system are ignored. ``messages`` is never modified.
    """
    pairs = _checked_messages(messages)
    text = pairs[-1][1]
    system_texts = [t for role, t in pairs if role == "system"]
    if system_texts:
        text += " " + " ".join(system_texts)
    return {
        "input": text,
        "inputHistory": [t for role, t in pairs[:-1] if role == "user"],
        "outputHistory": [t for role, t in pairs if role == "assistant"],
        "model": model or DEFAULT_MODEL,
    }


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The body bytes as aiohttp's ``json=`` sends them (``json.dumps`` defaults)."""
    return json.dumps(payload).encode("utf-8")
