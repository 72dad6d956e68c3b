"""Reading the ``--messages FILE.json`` argument of ``koala-mock demo`` and ``record``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mockserver.cassettes.cassette import json_kind
from mockserver.errors import MockServerError

__all__ = ["MessagesFileError", "load_messages"]


class MessagesFileError(MockServerError, ValueError):
    """A ``--messages`` file that cannot be used; the message names the file and the problem."""


def load_messages(path: Path) -> list[Any]:
    """A non-empty JSON list of chat messages (or ``{"messages": [...]}``) from ``path``.

    Each message is checked later, by the provider, which names the index of a bad one.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MessagesFileError(
            f"--messages {path}: cannot read it ({exc.strerror or exc})"
        ) from None
    except UnicodeDecodeError:
        raise MessagesFileError(f"--messages {path}: not UTF-8 text") from None
    try:
        messages = json.loads(text)
    except ValueError as exc:
        raise MessagesFileError(f"--messages {path}: not valid JSON ({exc})") from None
    if isinstance(messages, dict) and "messages" in messages:
        messages = messages["messages"]
    if not isinstance(messages, list) or not messages:
        got = "an empty list" if messages == [] else f"a JSON {json_kind(messages)}"
        raise MessagesFileError(
            f'--messages {path}: expected a non-empty JSON list like [{{"role": "user", '
            f'"content": "Hi"}}], got {got}'
        )
    return messages
