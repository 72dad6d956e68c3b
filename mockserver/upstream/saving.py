"""The one place a capture becomes a cassette file: scrubbed, with provenance, written atomically.

``record`` and the recording proxy both come here, so a cassette says the same things (where it
came from, when, by what) and is scrubbed the same way whoever recorded it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import re
from pathlib import Path
from typing import Any

import aiohttp

from mockserver.cassettes.cassette import (
    Cassette,
    CassetteExistsError,
    Interaction,
    parse_json,
    write_cassette,
)
from mockserver.cassettes.scrub import ScrubPolicy, scrub_interaction, scrub_url, unscrubbed
from mockserver.metadata import VERSION
from mockserver.upstream.client import Capture

__all__ = [
    "cassette_for",
    "provenance",
    "recorder",
    "save_numbered",
    "slug",
    "slug_for",
    "stored_interaction",
    "with_interaction",
    "write_in_thread",
]


def recorder(command: str) -> str:
    """``koala-mock record 0.1.0``: the command and the installed version."""
    return f"koala-mock {command} {VERSION}"


def provenance(
    upstream: str, *, command: str, client: str, policy: ScrubPolicy | None
) -> dict[str, Any]:
    """Where a recording came from. ``policy`` None: recorded with ``--no-scrub``."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return {
        "source": "recorded",
        "recorded_at": now.isoformat().replace("+00:00", "Z"),
        "upstream": scrub_url(upstream, policy) if policy is not None else upstream,
        "recorder": recorder(command),
        "client": client,
        "scrubbed": policy is not None,
        "aiohttp": aiohttp.__version__,
    }


def stored_interaction(capture: Capture, policy: ScrubPolicy | None) -> Interaction:
    """The capture as a cassette stores it: scrubbed by ``policy`` (None: ``--no-scrub``)."""
    interaction = capture.interaction()
    return scrub_interaction(interaction, policy) if policy is not None else unscrubbed(interaction)


def cassette_for(
    capture: Capture,
    *,
    name: str,
    path: Path | None,
    command: str,
    client: str,
    description: str,
    policy: ScrubPolicy | None,
) -> Cassette:
    return Cassette(
        name=name,
        path=path,
        interactions=[stored_interaction(capture, policy)],
        provenance=provenance(capture.uri, command=command, client=client, policy=policy),
        description=description,
    )


def with_interaction(cassette: Cassette, index: int | None, interaction: Interaction) -> Cassette:
    """``cassette`` with ``interaction`` replacing number ``index`` (None: appended)."""
    interactions = list(cassette.interactions)
    if index is None:
        interactions.append(interaction)
    else:
        interactions[index] = interaction
    return dataclasses.replace(cassette, interactions=interactions)


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe slug of ``text`` (``interaction`` when nothing is left)."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "interaction"


def slug_for(body: bytes) -> str:
    """The slug of a request body's ``input`` (the user's question)."""
    payload = parse_json(body)
    text = payload.get("input") if isinstance(payload, dict) else None
    return slug(text if isinstance(text, str) else "")


def save_numbered(directory: Path, base: str, cassette: Cassette) -> Path:
    """Write ``cassette`` as ``directory/base-NNN.yaml`` with the first free number; never
    overwrites (a file that appears meanwhile moves us on to the next number)."""
    number = 1
    while True:
        path = directory / f"{base}-{number:03d}.yaml"
        if not path.exists():
            try:
                write_cassette(path, cassette)
                return path
            except CassetteExistsError:
                pass
        number += 1


async def write_in_thread(path: Path, cassette: Cassette, *, force: bool) -> None:
    """:func:`write_cassette` in a file thread (keeps the loop responsive; the write is atomic
    whatever happens to the caller)."""
    await asyncio.get_running_loop().run_in_executor(
        None, lambda: write_cassette(path, cassette, force=force)
    )
