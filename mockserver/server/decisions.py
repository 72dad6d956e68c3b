"""The chat API's answer to a repeated request, decided once: its verdict, plan and source.

With nothing pending that could change it (no fault or seed header, no queued or default fault,
no stub, not fuzz mode, no credential), what answers a request is a function of its method,
path and contract shape (:meth:`mockserver.wire.contract.VerdictMemo.shape_of`: the body bytes
and every header the contract reads, ``Accept`` among them, which is all its verdict depends
on), the cassettes loaded and the config's mode, speed and latency. :class:`DecisionMemo` keeps
the verdict and the answer for such a request and gives them again only when all of these are
the same. The journal entry and the log line are still made per request; only the contract
memo's lookup, the cassette lookup and the planning are skipped.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from mockserver.wire.contract import Verdict
from mockserver.wire.plan import ResponsePlan, ServedBy

__all__ = ["Decision", "DecisionKey", "DecisionMemo"]


class Decision(NamedTuple):
    """An answer decided for a request; immutable, and its ``served_by`` never mutated (entries
    share it)."""

    #: The contract's verdict for the request, as the journal keeps it (the shared passed
    #: verdict when it has nothing to say).
    verdict: Verdict
    plan: ResponsePlan
    served_by: ServedBy
    #: The cassettes' version and the config values the decision read.
    state: tuple[Any, ...]


#: ``(method, path, contract shape)``.
DecisionKey = tuple[str, str, tuple[Any, ...]]


class DecisionMemo:
    """Decisions by request (:data:`DecisionKey`), at most ``capacity`` of them, the oldest
    forgotten first; those for bodies over ``max_body`` bytes are not kept (memory)."""

    def __init__(self, capacity: int = 256, max_body: int = 16 * 1024) -> None:
        self.capacity = capacity
        self.max_body = max_body
        self._decisions: dict[DecisionKey, Decision] = {}

    def get(self, key: DecisionKey, state: tuple[Any, ...]) -> Decision | None:
        """The decision made for ``key`` in an equal ``state``."""
        decision = self._decisions.get(key)
        if decision is None or decision.state != state:
            return None
        return decision

    def put(self, key: DecisionKey, decision: Decision, body_size: int) -> None:
        if body_size > self.max_body:
            return
        decisions = self._decisions
        if key not in decisions and len(decisions) >= self.capacity:
            del decisions[next(iter(decisions))]
        decisions[key] = decision

    def clear(self) -> None:
        self._decisions.clear()

    def __len__(self) -> int:
        return len(self._decisions)
