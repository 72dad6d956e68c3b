"""vcrpy's record modes, for ``koala-mock record`` and the recording proxy. Pure.

- ``once``: replay what the cassette holds; record only into a cassette that did not exist when
  the run began (a new request for an existing one is refused);
- ``new_episodes``: replay what the cassette holds, record what is new;
- ``none``: replay only, never call the upstream (a new request is refused);
- ``all``: always call the upstream and re-record, replacing what the cassette held for that
  request.

For the proxy the "cassette" is its record directory (one file per request); for ``record`` it is
the ``--out`` file. Either way, one request never gets two recordings under the replay matching
rules: a request the cassette holds is replayed, or (``all``) its recording is replaced.
"""

from __future__ import annotations

import enum

__all__ = ["RECORD_MODES", "Action", "RecordMode", "decide", "refusal"]


class RecordMode(str, enum.Enum):
    ONCE = "once"
    NEW_EPISODES = "new_episodes"
    NONE = "none"
    ALL = "all"

    def __str__(self) -> str:
        return self.value


RECORD_MODES = tuple(mode.value for mode in RecordMode)


class Action(enum.Enum):
    REPLAY = "replay"
    RECORD = "record"
    REFUSE = "refuse"


def decide(mode: RecordMode, *, held: bool, cassette_existed: bool) -> Action:
    """What to do with a request: ``held`` when the cassette already holds a recording of it,
    ``cassette_existed`` when the cassette existed (held anything) when the run began.

    >>> decide(RecordMode.ONCE, held=False, cassette_existed=True)
    <Action.REFUSE: 'refuse'>
    """
    if mode is RecordMode.ALL:
        return Action.RECORD
    if held:
        return Action.REPLAY
    if mode is RecordMode.NONE or (mode is RecordMode.ONCE and cassette_existed):
        return Action.REFUSE
    return Action.RECORD


def refusal(mode: RecordMode) -> str:
    """Why a request was not recorded, and which mode would record it."""
    if mode is RecordMode.NONE:
        return "--record-mode none never calls the upstream (new_episodes would record it)"
    return (
        "--record-mode once records only into a cassette that did not exist yet "
        "(new_episodes adds new requests, all re-records)"
    )
