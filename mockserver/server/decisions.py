"""The chat API's answer to a repeated request, decided once: the plan and what served it.

With nothing pending that could change it (no fault or seed header, no queued or default fault,
no stub, not fuzz mode), what answers a checked request is a function of its method, path, body
bytes and ``Accept`` header, its contract verdict, the cassettes loaded and the config's mode,
speed and latency. :class:`DecisionMemo` keeps that answer for the request, and gives it again
only when all of these are the same: the verdict (which the contract still gives every request
afresh, from its own memo) must be the very object the answer was decided with, and the
cassettes' version and the config values equal. The journal entry and the log line are still
made per request; only the lookup and the planning are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mockserver.wire.contract import Verdict
from mockserver.wire.plan import ResponsePlan, ServedBy

__all__ = ["Decision", "DecisionMemo"]


@dataclass(frozen=True, slots=True)
class Decision:
    """An answer decided for a request; never mutated (entries share its ``served_by``)."""

    #: The contract's verdict the decision was made with.
    verdict: Verdict
    plan: ResponsePlan
    served_by: ServedBy
    #: The cassettes' version and the config values the decision read.
    state: tuple[Any, ...]


class DecisionMemo:
    """Decisions by request (``(method, path, Accept, body bytes)``), at most ``capacity`` of
    them, the oldest forgotten first; bodies over ``max_body`` bytes are not kept (memory)."""

    def __init__(self, capacity: int = 256, max_body: int = 16 * 1024) -> None:
        self.capacity = capacity
        self.max_body = max_body
        self._decisions: dict[tuple[str, str, str | None, bytes], Decision] = {}

    def get(
        self, key: tuple[str, str, str | None, bytes], verdict: Verdict, state: tuple[Any, ...]
    ) -> Decision | None:
        """The decision made for ``key`` with this very ``verdict`` and an equal ``state``."""
        decision = self._decisions.get(key)
        if decision is None or decision.verdict is not verdict or decision.state != state:
            return None
        return decision

    def put(self, key: tuple[str, str, str | None, bytes], decision: Decision) -> None:
        if len(key[3]) > self.max_body:
            return
        decisions = self._decisions
        if key not in decisions and len(decisions) >= self.capacity:
            del decisions[next(iter(decisions))]
        decisions[key] = decision

    def clear(self) -> None:
        self._decisions.clear()

    def __len__(self) -> int:
        return len(self._decisions)
